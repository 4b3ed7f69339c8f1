/**
 * Random valid machines for the fuzzer: arm64 device-tree machines with
 * SMMUv3, arm-smmu and virtio-iommu instances serving platform devices and
 * PCI functions behind host bridges, and x86 machines with VT-d or AMD-Vi
 * units and their device scopes; either may carry the iommufd selftest
 * mock. Random ACS, multifunction devices, DMA aliases, reserved regions,
 * drivers (some managing DMA themselves, some whose probe fails or defers
 * on its own), late instances and devices, devices-first boot, command
 * lines, strategies and injected faults (fail_attach, fail_probe). Every
 * machine passes the scenario checks.
 */
import { ACS_NAMES } from "../../src/base/pci/pci-dev.ts";
import { checkScenario } from "../../src/sim/scenario/check.ts";
import { scenarioSchema, type Scenario } from "../../src/sim/scenario/schema.ts";
import type { Rng } from "./rng.ts";

type Obj = Record<string, unknown>;

export interface MachineShape {
  /** The scenario without events. */
  scenario: Scenario;
  /** Device names by bus, for the event generator. */
  pciNames: string[];
}

const DRIVER_PROBE_ERRNOS = ["EPROBE_DEFER", "EPROBE_DEFER", "ENODEV", "ENXIO", "EINVAL", "ENOMEM", "EBUSY", "EIO"];
const FAIL_ATTACH_ERRNOS = ["EINVAL", "EBUSY", "ENOMEM", "ENODEV", "ENOSPC"];
const FAIL_PROBE_ERRNOS = ["ENOMEM", "ENODEV", "EINVAL", "EBUSY"];

/** fault injection: the IOMMU driver's probe_device fails the first few times for the device. */
function failProbe(r: Rng): Obj {
  return { errno: r.pick(FAIL_PROBE_ERRNOS), times: r.int(1, 2) };
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

function pciName(seg: number, bus: number, dev: number, fn: number): string {
  return `${seg.toString(16).padStart(4, "0")}:${hex2(bus)}:${hex2(dev)}.${fn}`;
}

/** Builds PCI functions into `devices`: a tree of root ports, switches and endpoints on one segment. */
class PciBuilder {
  nextBus: number;
  readonly names: string[] = [];
  readonly bridges: string[] = [];
  constructor(
    private readonly r: Rng,
    private readonly devices: Obj[],
    private readonly seg: number,
  ) {
    this.nextBus = 1;
  }

  private acs(): string[] | undefined {
    const r = this.r;
    if (r.chance(0.4)) return undefined;
    if (r.chance(0.5)) return ["SV", "RR", "CR", "UF"];
    return r.subset(ACS_NAMES, 0.5);
  }

  private add(d: Obj): void {
    this.devices.push(d);
    this.names.push(d.name as string);
  }

  /** Extra properties an endpoint may carry. */
  private endpointProps(bus: number, slot: number): Obj {
    const r = this.r;
    const o: Obj = {};
    if (r.chance(0.1)) o["dma-alias"] = [r.chance(0.5) ? `${hex2(r.int(0, 31))}.${r.int(0, 7)}` : pciName(this.seg, bus, (slot + 1) & 31, 0)];
    if (r.chance(0.08)) o.untrusted = true;
    if (r.chance(0.25)) o["pasid-bits"] = r.int(1, 8);
    if (r.chance(0.1)) o["dma-mask"] = r.pick([24, 32, 36, 40, 48, 64]);
    if (r.chance(0.06)) o.def_domain_type = r.pick(["identity", "DMA"]);
    if (r.chance(0.05)) o.fail_attach = r.pick(FAIL_ATTACH_ERRNOS);
    if (r.chance(0.04)) o.fail_probe = failProbe(r);
    if (r.chance(0.06)) o["reserved-regions"] = [resvRegion(r)];
    if (r.chance(0.08)) o.added = false;
    return o;
  }

  /** Endpoints (maybe multifunction) on `bus` below `parent`. */
  endpoints(bus: number, parent: string | undefined, slots: number): void {
    const r = this.r;
    for (let s = 0; s < slots; s++) {
      const slot = r.int(0, 31);
      if (this.names.includes(pciName(this.seg, bus, slot, 0))) continue;
      const mf = r.chance(0.3);
      const fns = mf ? r.int(2, 4) : 1;
      for (let f = 0; f < fns; f++) {
        const d: Obj = { name: pciName(this.seg, bus, slot, f), bus: "pci", type: "endpoint", ...this.endpointProps(bus, slot) };
        if (parent !== undefined) d.parent = parent;
        if (mf) d.multifunction = true;
        if (mf && r.chance(0.3)) d.acs = this.acs() ?? ["SV", "RR", "CR", "UF"];
        this.add(d);
      }
    }
  }

  /** A root port with something below it. */
  rootPort(host: string | undefined, slot: number): void {
    const r = this.r;
    const rp = pciName(this.seg, 0, slot, 0);
    const d: Obj = { name: rp, bus: "pci", type: "root-port" };
    if (host !== undefined) d.parent = host;
    const acs = this.acs();
    if (acs !== undefined) d.acs = acs;
    this.add(d);
    this.bridges.push(rp);
    const below = this.nextBus++;
    const kind = r.weighted({ endpoints: 5, switch: 2, pciBridge: 1, empty: 1 });
    if (kind === "endpoints") this.endpoints(below, rp, r.int(1, 2));
    else if (kind === "switch") {
      const up = pciName(this.seg, below, 0, 0);
      this.add({ name: up, bus: "pci", type: "switch-up", parent: rp });
      this.bridges.push(up);
      const inner = this.nextBus++;
      const ports = r.int(1, 3);
      for (let p = 0; p < ports; p++) {
        const dn = pciName(this.seg, inner, p, 0);
        const dd: Obj = { name: dn, bus: "pci", type: "switch-down", parent: up };
        const a = this.acs();
        if (a !== undefined) dd.acs = a;
        this.add(dd);
        this.bridges.push(dn);
        this.endpoints(this.nextBus++, dn, r.int(0, 2));
      }
    } else if (kind === "pciBridge") {
      const br = pciName(this.seg, below, 0, 0);
      const bd: Obj = { name: br, bus: "pci", type: r.pick(["pcie-pci-bridge", "pci-bridge"]), parent: rp };
      if (r.chance(0.3)) bd["pcie-bridge-alias"] = true;
      if (r.chance(0.2)) bd["bridge-xlate-root"] = true;
      this.add(bd);
      this.bridges.push(br);
      this.endpoints(this.nextBus++, br, r.int(1, 2));
    }
  }

  /** A segment: root ports and maybe root-complex integrated endpoints. */
  segment(host: string | undefined): void {
    const r = this.r;
    const ports = r.int(0, 3);
    const used = new Set<number>();
    for (let i = 0; i < ports; i++) {
      const slot = r.int(1, 28);
      if (used.has(slot)) continue;
      used.add(slot);
      this.rootPort(host, slot);
    }
    if (ports === 0 || r.chance(0.3)) this.endpoints(0, host, r.int(1, 2));
  }
}

function resvRegion(r: Rng): Obj {
  return {
    start: r.pick([0x8000_0000, 0x1000_0000, 0xfee0_0000, 0x10_0000]),
    length: r.pick([0x1000, 0x10_0000, 0x20_0000]),
    type: r.pick(["direct", "direct-relaxable", "reserved"]),
  };
}

function pageSizes(r: Rng): string[] | undefined {
  if (!r.chance(0.12)) return undefined;
  return r.pick([["4K", "2M", "1G"], ["4K"], ["4K", "2M"], ["64K", "512M"], ["16K", "32M"], ["4K", "64K", "2M"]]);
}

/** Platform (or amba) devices described by DT `iommus`. */
function platformDevices(r: Rng, devices: Obj[], fwInstances: Obj[], n: number): void {
  for (let j = 0; j < n; j++) {
    const bus = r.chance(0.15) ? "amba" : "platform";
    const d: Obj = { name: `dev${j}`, bus, fwnode: `/soc/dev@${j}` };
    if (fwInstances.length > 0 && r.chance(0.85)) {
      const entries: unknown[] = [];
      const count = r.chance(0.15) ? 2 : 1;
      for (let e = 0; e < count; e++) {
        const inst = r.pick(fwInstances);
        const cells = (inst["#iommu-cells"] as number | undefined) ?? 1;
        const sid = r.chance(0.1) ? r.int(0, 0xffff) : r.int(0, 24);
        const entry: unknown[] = [inst.name, sid];
        for (let c = 1; c < cells; c++) entry.push(r.chance(0.7) ? 0 : r.int(0, 7));
        entries.push(entry);
      }
      d.iommus = entries;
    }
    if (r.chance(0.08)) d["reserved-regions"] = [resvRegion(r)];
    if (r.chance(0.06)) d.def_domain_type = r.pick(["identity", "DMA"]);
    if (r.chance(0.05)) d.fail_attach = r.pick(FAIL_ATTACH_ERRNOS);
    if (r.chance(0.04)) d.fail_probe = failProbe(r);
    if (r.chance(0.15)) d["dma-mask"] = r.pick([24, 32, 40, 48, 64]);
    if (r.chance(0.1)) d["pasid-bits"] = r.int(1, 8);
    if (r.chance(0.1)) d.added = false;
    devices.push(d);
  }
}

function mockParts(r: Rng, iommus: Obj[], devices: Obj[]): void {
  const m: Obj = { name: "mock0", driver: "mock" };
  if (r.chance(0.3)) m.fwnode = null;
  if (r.chance(0.15)) m.registered = false;
  iommus.push(m);
  const n = r.int(1, 3);
  for (let j = 0; j < n; j++) {
    const d: Obj = { name: `mock-dev${j}`, bus: "iommufd_mock" };
    if (r.chance(0.2)) d.add_with = "device_add";
    if (r.chance(0.1)) d.fail_probe = failProbe(r);
    if (r.chance(0.15)) d.added = false;
    devices.push(d);
  }
}

function arm64(r: Rng, iommus: Obj[], devices: Obj[], pciNames: string[]): void {
  const n = r.int(1, 3);
  for (let i = 0; i < n; i++) {
    const driver = r.weighted({ "arm-smmu-v3": 5, "arm-smmu": 3, "virtio-iommu": 2 });
    const inst: Obj = { name: `iommu${i}`, driver, fwnode: `/soc/iommu@${i}` };
    if (r.chance(0.3)) inst.registered = false;
    if (driver === "arm-smmu-v3" && r.chance(0.3)) inst["sid-bits"] = r.int(3, 16);
    if (driver === "arm-smmu") {
      if (r.chance(0.4)) inst["stream-map-entries"] = r.int(1, 6);
      if (r.chance(0.3)) inst["#iommu-cells"] = 2;
      if (r.chance(0.15)) inst["stream-match-mask"] = r.pick([1, 3, 7]);
      if (r.chance(0.2)) inst["sid-bits"] = r.int(4, 15);
    }
    if (driver !== "arm-smmu" && r.chance(0.35)) inst["pasid-bits"] = r.int(0, 8);
    const ps = pageSizes(r);
    if (ps !== undefined) inst["page-sizes"] = ps;
    if (r.chance(0.12)) inst.ias = r.pick([32, 36, 40, 44, 48]);
    if (r.chance(0.04)) inst.status = "disabled";
    iommus.push(inst);
  }
  platformDevices(r, devices, iommus, r.int(0, 5));
  const hosts = r.int(0, 2);
  for (let h = 0; h < hosts; h++) {
    const name = `pcie${h}`;
    const host: Obj = { segment: h };
    if (r.chance(0.9)) {
      const a = r.pick(iommus);
      const b = r.pick(iommus);
      host["iommu-map"] = r.chance(0.75)
        ? [[0, a.name, r.pick([0, 0x10000]), 0x10000]]
        : [[0, a.name, 0, 0x100], [0x200, b.name, 0x200, 0xfe00]];
    }
    if (r.chance(0.08)) host["iommu-map-mask"] = r.pick([0xff00, 0xfff8]);
    devices.push({ name, bus: "platform", fwnode: `/soc/pcie@${h}`, "pci-host": host });
    const b = new PciBuilder(r, devices, h);
    b.segment(name);
    pciNames.push(...b.names);
  }
}

function x86(r: Rng, iommus: Obj[], devices: Obj[], pciNames: string[]): void {
  const driver = r.chance(0.6) ? "intel-iommu" : "amd-iommu";
  const segs = r.chance(0.2) ? 2 : 1;
  const perSeg: string[][] = [];
  for (let s = 0; s < segs; s++) {
    const b = new PciBuilder(r, devices, s);
    b.segment(undefined);
    perSeg.push([...b.bridges, ...b.names.filter((x) => !b.bridges.includes(x))]);
    pciNames.push(...b.names);
  }
  let u = 0;
  for (let s = 0; s < segs; s++) {
    const names = perSeg[s]!;
    const explicit = r.int(0, 2);
    for (let i = 0; i < explicit && names.length > 0; i++) {
      const inst: Obj = { name: `dmar${u++}`, driver, scope: r.subset(names, 0.3).slice(0, 3) };
      if ((inst.scope as string[]).length === 0) inst.scope = [r.pick(names)];
      if (s !== 0) inst.segment = s;
      if (r.chance(0.2)) inst.registered = false;
      if (r.chance(0.3)) inst["pasid-bits"] = r.int(0, 8);
      iommus.push(inst);
    }
    if (r.chance(0.85) || explicit === 0) {
      const inst: Obj = { name: `dmar${u++}`, driver, scope: "all" };
      if (s !== 0) inst.segment = s;
      if (r.chance(0.2)) inst.registered = false;
      if (r.chance(0.3)) inst["pasid-bits"] = r.int(0, 8);
      iommus.push(inst);
    }
  }
}

function drivers(r: Rng, devices: Obj[]): Obj[] {
  const out: Obj[] = [];
  const byBus = new Map<string, string[]>();
  for (const d of devices) {
    const bus = d.bus as string;
    if (!byBus.has(bus)) byBus.set(bus, []);
    byBus.get(bus)!.push(d.name as string);
  }
  let i = 0;
  for (const [bus, names] of byBus) {
    const n = r.int(1, 3);
    for (let k = 0; k < n; k++) {
      const drv: Obj = { name: `drv${i++}`, bus, match: r.chance(0.1) ? "*" : r.subset(names, 0.5) };
      if ((drv.match as string[] | "*").length === 0) drv.match = [r.pick(names)];
      if (r.chance(0.25)) drv.driver_managed_dma = true;
      if (r.chance(0.15)) drv.registered = false;
      if (r.chance(0.2)) {
        const pr: Record<string, string> = {};
        for (const nm of r.subset(names, 0.3)) pr[nm] = r.pick(DRIVER_PROBE_ERRNOS);
        drv.probe_result = pr;
      }
      out.push(drv);
    }
  }
  return out;
}

/** A random valid machine (no events yet). */
export function genMachine(r: Rng): MachineShape {
  const iommus: Obj[] = [];
  const devices: Obj[] = [];
  const pciNames: string[] = [];
  const arch = r.chance(0.65) ? "arm64" : "x86";
  if (arch === "arm64") arm64(r, iommus, devices, pciNames);
  else x86(r, iommus, devices, pciNames);
  if (r.chance(0.3)) mockParts(r, iommus, devices);
  if (devices.length === 0) devices.push({ name: "dev0", bus: "platform", fwnode: "/soc/dev@0" });
  const boot: Obj = {};
  const cmdline = r.pick(["", "", "", "iommu.strict=0", "iommu.strict=1", "iommu.passthrough=1", "iommu.passthrough=0", arch === "x86" ? "iommu=pt" : "iommu.strict=0 iommu.passthrough=0"]);
  if (cmdline !== "") boot.cmdline = cmdline;
  if (r.chance(0.2)) boot.order = "devices-first";
  const strategy: Obj = {};
  if (r.chance(0.4)) strategy.ops_resolution = r.pick(["ask-each", "bus-set-iommu", "bus-ops"]);
  if (r.chance(0.25)) strategy.fwspec_ops = "fwspec-carries-ops";
  if (r.chance(0.15)) strategy.domain_alloc = "bus-null-device";
  if (r.chance(0.2)) strategy.dma_ownership = "notifier";
  if (r.chance(0.3)) strategy.fwspec_owner = r.pick(["driver-probe-time", "bus-code"]);
  if (r.chance(0.3)) strategy.probe_serialisation = r.pick(["none", "probe-lock", "global-lock"]);
  if (Object.keys(strategy).length > 0) boot.strategy = strategy;
  const raw: Obj = { name: "fuzz", iommus, devices, drivers: drivers(r, devices), events: [] };
  if (Object.keys(boot).length > 0) raw.boot = boot;
  const parsed = scenarioSchema.safeParse(raw);
  if (!parsed.success) throw new GeneratorError(`generated machine fails the schema: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, raw);
  const problems = checkScenario(parsed.data);
  if (problems.length > 0) throw new GeneratorError(`generated machine fails the checks: ${problems.map((p) => `${p.path.join(".")}: ${p.message}`).join("; ")}`, raw);
  return { scenario: parsed.data, pciNames };
}

/** The generator made a machine the scenario checks refuse: a bug of the fuzzer, not of the model. */
export class GeneratorError extends Error {
  constructor(
    message: string,
    readonly raw: unknown,
  ) {
    super(message);
    this.name = "GeneratorError";
  }
}
