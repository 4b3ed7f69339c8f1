/**
 * The usual arm64 machine whose SMMU driver is a module: 64 SMMUv3
 * instances that register only after every device was added and every
 * device driver registered, so every device defers first. Half the devices
 * are platform devices with a DT `iommus` entry; half are PCI functions
 * behind 64 DT host bridges (one per instance, with `iommu-map`), under root
 * ports, each leading to a switch whose downstream ports each hold an
 * 8-function endpoint. Every device has a driver: `pci-host-generic` and a
 * platform driver, `pcieport` for the ports, and an endpoint driver.
 */
import type { Scenario } from "../src/sim/scenario/schema.ts";

export const LATE_SMMUS = 64;
/** Downstream ports per switch, each with one 8-function endpoint. */
const DOWNSTREAM_PORTS = 8;
const FUNCTIONS = 8;
/** Platform StreamIDs start above every PCI RID the host bridges' iommu-map produce (segment << 16 | RID). */
const PLATFORM_SID_BASE = 0x1000000;
const ACS = ["SV", "RR", "CR", "UF"] as const;

const h = (n: number, w: number) => n.toString(16).padStart(w, "0");

export interface LateSmmuMachine {
  scenario: Scenario;
  /** Devices that must end bound with an IOMMU (all but the host bridges, which have no `iommus`). */
  withIommu: number;
}

/** About `devices` devices (the PCI half is rounded to whole root-port hierarchies of 74 functions). */
export function lateSmmuMachine(devices: number): LateSmmuMachine {
  const iommus = Array.from({ length: LATE_SMMUS }, (_, i) => ({
    name: `smmu${i}`,
    driver: "arm-smmu-v3" as const,
    fwnode: `/soc/iommu@${h(0x2b400000 + i * 0x100000, 8)}`,
    registered: false,
  }));
  const devs: Scenario["devices"] = [];
  const platform = Math.floor(devices / 2);
  for (let i = 0; i < platform; i++) {
    devs.push({ name: `dev${i}`, bus: "platform", fwnode: `/soc/dev@${h(i, 6)}`, iommus: [[`smmu${i % LATE_SMMUS}`, PLATFORM_SID_BASE + i]] });
  }
  const hosts: string[] = [];
  for (let s = 0; s < LATE_SMMUS; s++) {
    const name = `pcie@${h(0x40000000 + s * 0x1000000, 8)}`;
    hosts.push(name);
    devs.push({
      name,
      bus: "platform",
      fwnode: `/soc/${name}`,
      "pci-host": { segment: s, "iommu-map": [[0, `smmu${s}`, s << 16, 0x10000]] },
    });
  }
  const ports: string[] = [];
  // One root-port hierarchy: root port, switch upstream port, DOWNSTREAM_PORTS downstream ports, one endpoint each.
  const perRootPort = 2 + DOWNSTREAM_PORTS * (1 + FUNCTIONS);
  const rootPorts = Math.max(1, Math.round((devices - platform) / perRootPort));
  for (let r = 0; r < rootPorts; r++) {
    const seg = r % LATE_SMMUS;
    const slot = Math.floor(r / LATE_SMMUS);
    // Buses below root port `slot`: its secondary bus, the switch's internal bus, one per downstream port.
    const base = 1 + slot * (2 + DOWNSTREAM_PORTS);
    const name = (bus: number, dev: number, fn: number) => `${h(seg, 4)}:${h(bus, 2)}:${h(dev, 2)}.${fn}`;
    const rp = name(0, slot, 0);
    devs.push({ name: rp, bus: "pci", parent: hosts[seg]!, type: "root-port", acs: [...ACS] });
    const up = name(base, 0, 0);
    devs.push({ name: up, bus: "pci", parent: rp, type: "switch-up" });
    ports.push(rp, up);
    for (let p = 0; p < DOWNSTREAM_PORTS; p++) {
      const dp = name(base + 1, p, 0);
      // Half the downstream ports lack ACS; half the endpoints isolate their functions with ACS.
      devs.push({ name: dp, bus: "pci", parent: up, type: "switch-down", ...(p % 2 === 1 ? {} : { acs: [...ACS] }) });
      ports.push(dp);
      const fnAcs = p % 4 < 2 ? { acs: [...ACS] } : {};
      for (let f = 0; f < FUNCTIONS; f++) devs.push({ name: name(base + 2 + p, 0, f), bus: "pci", parent: dp, multifunction: true, ...fnAcs });
    }
  }
  const drivers: Scenario["drivers"] = [
    { name: "pci-host-generic", bus: "platform", match: hosts },
    { name: "pcieport", bus: "pci", match: ports },
    { name: "nvme", bus: "pci", match: "*" },
    { name: "soc-dev", bus: "platform", match: "*" },
  ];
  const events: Scenario["events"] = iommus.map((m) => ({ iommu_register: m.name }));
  const scenario: Scenario = { name: `late SMMUs, ${devs.length} devices with drivers`, iommus, devices: devs, drivers, events };
  return { scenario, withIommu: devs.length - LATE_SMMUS };
}
