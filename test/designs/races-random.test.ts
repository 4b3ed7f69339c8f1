/**
 * Random schedules of the probe races (the explorer searches them all;
 * this samples them as a regression): under v6.7's global lock and later
 * no schedule records a violation or makes the model throw; under v6.1 and
 * v6.6 some use a freed fwspec or dev_iommu, or read one half-built.
 */
import { describe, expect, it } from "vitest";
import { eventPath } from "../../src/sim/runner.ts";
import type { EventSpec } from "../../src/sim/scenario/schema.ts";
import { Scheduler, type SchedTask } from "../../src/sim/scheduler.ts";
import { boot } from "../helpers.ts";

/** xorshift32: a fixed sequence per seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const RACES: { name: string; scen: (kernel: string) => string; tasks: [string, EventSpec][] }[] = [
  {
    name: "device_add || iommu_register || driver_bind (the fwspec probe race)",
    scen: (kernel) => `
name: fwspec race
boot: {kernel: ${kernel}}
iommus: [{name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0, registered: false}]
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]], added: false}
  - {name: b, bus: platform, fwnode: /soc/b, iommus: [[smmu0, 2]]}
drivers: [{name: da, bus: platform, match: [a, b]}]
`,
    tasks: [
      ["add", { device_add: "a" }],
      ["register", { iommu_register: "smmu0" }],
      ["bind", { driver_bind: { device: "a", driver: "da" } }],
    ],
  },
  {
    name: "iommu_register || driver_register (the registration race)",
    scen: (kernel) => `
name: registration race
boot: {kernel: ${kernel}}
iommus: [{name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0, registered: false}]
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]]}
  - {name: b, bus: platform, fwnode: /soc/b, iommus: [[smmu0, 2]]}
drivers: [{name: da, bus: platform, match: [a, b], registered: false}]
`,
    tasks: [
      ["register", { iommu_register: "smmu0" }],
      ["drvreg", { driver_register: "da" }],
    ],
  },
];

/** Runs `seeds` random schedules; returns the violation kinds seen (by rule) and the schedules that threw. */
function sample(scen: string, tasks: [string, EventSpec][], seeds: number) {
  const kinds = new Set<string>();
  const threw: string[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const m = boot(scen);
    const sched = new Scheduler(m.dc.sched);
    const r = rng(seed);
    const ts: SchedTask[] = tasks.map(([n, e]) => sched.spawn(n, () => eventPath(m, e).path));
    try {
      for (;;) {
        const live = ts.filter((t) => !t.done && !(t.last?.op === "blocked" && t.last.lock!.holder !== null));
        if (live.length === 0) break;
        sched.step(live[Math.floor(r() * live.length)]!);
      }
      if (ts.some((t) => !t.done)) threw.push(`seed ${seed}: deadlock`);
    } catch (e) {
      threw.push(`seed ${seed}: ${(e as Error).message}`);
    }
    for (const v of m.ctx.diag.violations) kinds.add(v.slice(0, v.indexOf(":")));
  }
  return { kinds: [...kinds].sort(), threw };
}

describe("random schedules of the probe races", () => {
  for (const race of RACES) {
    it(`${race.name}: clean from v6.7 on`, () => {
      for (const kernel of ["v6.7", "v6.15", "v6.16"]) {
        expect(sample(race.scen(kernel), race.tasks, 60), kernel).toEqual({ kinds: [], threw: [] });
      }
    });

    it(`${race.name}: v6.1 and v6.6 use freed or half-built state`, () => {
      for (const kernel of ["v6.1", "v6.6"]) {
        const s = sample(race.scen(kernel), race.tasks, 200);
        expect(s.threw, kernel).toEqual([]);
        expect(s.kinds, kernel).toEqual(["I34 use-after-free", "I35 half-initialised"]);
      }
    });
  }
});
