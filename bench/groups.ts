/**
 * Group building benchmark: 100,000 PCI functions under 1,000 PCIe switches
 * with mixed ACS (some downstream ports without it, multifunction devices
 * with and without ACS), VT-d with one DRHD per PCI segment. Measures the
 * boot (probe, pci_device_group, default domains) and reports groups/s.
 */
import { runPath } from "../src/base/path.ts";
import { Machine } from "../src/sim/machine.ts";
import { bootPath } from "../src/sim/runner.ts";
import type { Scenario } from "../src/sim/scenario/schema.ts";
import { checkInvariants } from "../src/sim/invariants.ts";
import { median } from "./stats.ts";

const SWITCHES_PER_SEGMENT = 15;
const PORTS = 14;
const FUNCS = 6;
const ACS = ["SV", "RR", "CR", "UF"] as const;

const h = (n: number, w: number) => n.toString(16).padStart(w, "0");

/** `switches` switches of 100 functions each: root port, upstream port, 14 downstream ports, 14 x 6 endpoint functions. */
export function switchMachine(switches: number): Scenario {
  const devices: Scenario["devices"] = [];
  const segments = Math.ceil(switches / SWITCHES_PER_SEGMENT);
  for (let sw = 0; sw < switches; sw++) {
    const seg = Math.floor(sw / SWITCHES_PER_SEGMENT);
    const base = (sw % SWITCHES_PER_SEGMENT) * 16 + 1; // 16 buses per switch, bus 0 is the root bus
    const name = (bus: number, dev: number, fn: number) => `${h(seg, 4)}:${h(bus, 2)}:${h(dev, 2)}.${fn}`;
    const rp = name(0, sw % SWITCHES_PER_SEGMENT, 0);
    devices.push({ name: rp, bus: "pci", type: "root-port", acs: [...ACS] });
    const up = name(base, 0, 0);
    devices.push({ name: up, bus: "pci", type: "switch-up", parent: rp });
    for (let p = 0; p < PORTS; p++) {
      const dp = name(base + 1, p, 0);
      // Every fourth downstream port lacks ACS: everything below it shares its group.
      devices.push({ name: dp, bus: "pci", type: "switch-down", parent: up, ...(p % 4 === 3 ? {} : { acs: [...ACS] }) });
      // Odd ports hold a multifunction device without ACS (one group), even ports one with ACS (a group per function).
      const fnAcs = p % 2 === 0 ? { acs: [...ACS] } : {};
      for (let f = 0; f < FUNCS; f++) {
        devices.push({ name: name(base + 2 + p, 0, f), bus: "pci", parent: dp, multifunction: true, ...fnAcs });
      }
    }
  }
  const iommus = Array.from({ length: segments }, (_, s) => ({ name: `dmar${s}`, driver: "intel-iommu" as const, scope: "all" as const, segment: s }));
  return { name: `${switches} switches`, iommus, devices, drivers: [], events: [] };
}

function bootOnce(switches: number, check: boolean): { ms: number; groups: number; functions: number } {
  const m = new Machine(switchMachine(switches), { trace: false });
  const t0 = performance.now();
  runPath(bootPath(m, []));
  const ms = performance.now() - t0;
  if (check) {
    const v = checkInvariants(m);
    if (v.length > 0) throw new Error(`invariant broken: ${v[0]!.rule}: ${v[0]!.message}`);
  }
  return { ms, groups: m.k.groups.size, functions: m.devices.size };
}


export async function benchGroups(log: (line: string) => void): Promise<void> {
  log("groups: PCI functions under PCIe switches with mixed ACS, VT-d, trace off (median of 3 runs)");
  // Every switch is built alike, so a machine's groups are exactly its switches times one switch's.
  const perSwitch = bootOnce(100, true).groups / 100;
  const times: number[] = [];
  for (const sw of [250, 500, 1000]) {
    const first = bootOnce(sw, true);
    if (first.groups !== perSwitch * sw || first.functions !== 100 * sw) {
      throw new Error(`${sw} switches gave ${first.groups} groups over ${first.functions} functions, not ${perSwitch * sw} over ${100 * sw}`);
    }
    const ms = median([first.ms, bootOnce(sw, false).ms, bootOnce(sw, false).ms]);
    times.push(ms);
    log(
      `  ${String(first.functions).padStart(7)} functions, ${String(sw).padStart(4)} switches: ${String(first.groups).padStart(6)} groups in ${ms.toFixed(0).padStart(5)} ms  (${Math.round(first.groups / (ms / 1000)).toLocaleString("en-US")} groups/s, ${Math.round(first.functions / (ms / 1000)).toLocaleString("en-US")} functions/s)`,
    );
  }
  log(`  scaling: 2x/1x ${(times[1]! / times[0]!).toFixed(2)}x, 4x/2x ${(times[2]! / times[1]!).toFixed(2)}x  (goal: 100k functions < 1000 ms, linear)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchGroups((l) => console.log(l));
}
