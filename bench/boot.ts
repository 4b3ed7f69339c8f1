/**
 * Boot benchmark: a generated machine of N devices (half platform, half
 * PCI) behind 64 SMMUv3 instances, booted in two orders — instances first
 * (devices probe as they are added), and devices first with the instances
 * registering afterwards (the registration replay path).
 */
import { runPath } from "../src/base/path.ts";
import { iommuRegister } from "../src/sim/actions.ts";
import { Machine } from "../src/sim/machine.ts";
import { bootPath } from "../src/sim/runner.ts";
import type { Scenario } from "../src/sim/scenario/schema.ts";
import { checkInvariants } from "../src/sim/invariants.ts";
import { benchBootLate } from "./boot-late.ts";
import { best, median } from "./stats.ts";

const INSTANCES = 64;

export function generatedMachine(devices: number, instancesFirst: boolean): Scenario {
  const iommus = Array.from({ length: INSTANCES }, (_, i) => ({
    name: `smmu${i}`,
    driver: "arm-smmu-v3" as const,
    fwnode: `/soc/smmu@${i}`,
    registered: instancesFirst,
  }));
  const devs: Scenario["devices"] = [];
  const platform = Math.floor(devices / 2);
  for (let i = 0; i < platform; i++) {
    devs.push({ name: `dev${i}`, bus: "platform", fwnode: `/soc/dev@${i}`, iommus: [[`smmu${i % INSTANCES}`, i]] });
  }
  // PCI: one DT host bridge per instance (segment), RCiEPs on root buses 0..255 of it.
  const pci = devices - platform;
  const perSeg = Math.ceil(pci / INSTANCES);
  for (let s = 0; s < INSTANCES; s++) {
    devs.push({
      name: `pcie${s}`,
      bus: "platform",
      fwnode: `/soc/pcie@${s}`,
      "pci-host": { segment: s, "iommu-map": [[0, `smmu${s}`, 0x100000, 0x10000]] },
    });
  }
  let n = 0;
  for (let s = 0; s < INSTANCES && n < pci; s++) {
    for (let k = 0; k < perSeg && n < pci; k++, n++) {
      const bus = k >> 5;
      const slot = k & 31;
      const name = `${s.toString(16).padStart(4, "0")}:${bus.toString(16).padStart(2, "0")}:${slot.toString(16).padStart(2, "0")}.0`;
      devs.push({ name, bus: "pci", parent: `pcie${s}` });
    }
  }
  return { name: `generated ${devices}`, iommus, devices: devs, drivers: [], events: [] };
}

interface BootTiming {
  build: number;
  boot: number;
}

function bootOnce(devices: number, instancesFirst: boolean, check: boolean): BootTiming {
  const s = generatedMachine(devices, instancesFirst);
  const t0 = performance.now();
  const m = new Machine(s, { trace: false });
  const t1 = performance.now();
  runPath(bootPath(m, []));
  if (!instancesFirst) for (const rec of m.instances.values()) runPath(iommuRegister(m, rec));
  const t2 = performance.now();
  if (check) {
    const probed = [...m.devices.values()].filter((r) => r.dev.iommuGroup !== null).length;
    const expected = devices + 0; // every generated device (bridges included) has an IOMMU except the host bridges
    if (probed !== expected) throw new Error(`only ${probed} of ${expected} devices were probed`);
    const v = checkInvariants(m);
    if (v.length > 0) throw new Error(`invariant broken after boot: ${v[0]!.rule}: ${v[0]!.message}`);
  }
  return { build: t1 - t0, boot: t2 - t1 };
}

export async function benchBoot(log: (line: string) => void): Promise<void> {
  log(`boot: ${INSTANCES} SMMUv3 instances, half platform / half PCI devices, trace off (median of 5 runs; the boot time leaves out building the machine, printed apart)`);
  bootOnce(20_000, true, true);
  bootOnce(20_000, false, true);
  for (const instancesFirst of [true, false]) {
    const label = instancesFirst ? "instances first" : "devices first, instances register after (replay)";
    log(`  ${label}`);
    const times: number[] = [];
    const bests: number[] = [];
    for (const n of [25_000, 50_000, 100_000]) {
      bootOnce(n, instancesFirst, true);
      const runs = [0, 1, 2, 3, 4].map(() => bootOnce(n, instancesFirst, false));
      const boot = median(runs.map((r) => r.boot));
      const fastest = best(runs.map((r) => r.boot));
      const build = median(runs.map((r) => r.build));
      times.push(boot);
      bests.push(fastest);
      log(
        `    ${String(n).padStart(7)} devices: boot ${boot.toFixed(0).padStart(5)} ms (best ${fastest.toFixed(0).padStart(4)})  (${Math.round(n / (boot / 1000)).toLocaleString("en-US")} devices/s; building the machine, not counted: ${build.toFixed(0)} ms)`,
      );
    }
    const ratios = (t: number[]) => `50k/25k ${(t[1]! / t[0]!).toFixed(2)}x, 100k/50k ${(t[2]! / t[1]!).toFixed(2)}x`;
    log(`    scaling: medians ${ratios(times)}; best runs ${ratios(bests)}  (goal: <= 2.2x; 100k in < 1000 ms)`);
  }
  log("");
  await benchBootLate(log);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchBoot((l) => console.log(l));
}
