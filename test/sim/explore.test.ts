/**
 * The explorer: the systematic search with its sleep sets and DPOR reaches
 * every final state the full search does, items and workers give the result of one
 * search, a failure is found, shrunk and replayed, random schedules follow
 * their seed.
 */
import { readFileSync } from "node:fs";
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Mutex, mutexLock, mutexUnlock } from "../../src/base/mutex.ts";
import { Sched, type Path } from "../../src/base/path.ts";
import { BlockTask, runBlock } from "../../src/sim/explore/block.ts";
import { DfsPolicy, searchItem } from "../../src/sim/explore/dfs.ts";
import { Dpor } from "../../src/sim/explore/dpor.ts";
import { splitItems } from "../../src/sim/explore/split.ts";
import { explore, planItems, runItem, type ExploreOptions, type WorkItem } from "../../src/sim/explore/explore.ts";
import { claim, claimOrder, settle, STOP, WorkerPool, workerPool } from "../../src/sim/explore/pool.ts";
import { knownSchedule, ScriptPolicy } from "../../src/sim/explore/schedule.ts";
import { replay } from "../../src/sim/explore/shrink.ts";
import { runScenario, type PlayResult } from "../../src/sim/runner.ts";
import { takeSnapshot } from "../../src/sim/snapshot.ts";
import { loadScenarioFile } from "../../src/sim/scenario/load.ts";
import { scenario, state } from "../helpers.ts";
import { ADD_VS_REGISTER } from "./concurrently.test.ts";

/** Three tasks: two devices added while their SMMU registers, with a driver for both. */
const THREE = `
name: two device_add racing iommu_register
boot: {strategy: {probe_serialisation: global-lock}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0, registered: false}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]], added: false}
  - {name: b, bus: platform, fwnode: /soc/b, iommus: [[smmu0, 2]], added: false}
drivers:
  - {name: da, bus: platform, match: [a, b]}
events:
  - concurrently:
      - [{device_add: a}]
      - [{iommu_register: smmu0}]
      - [{device_add: b}]
`;

/** Three small tasks on one group: claims by two owners, and a default-domain type change (a file the bench searches too). */
const TINY = readFileSync("test/fixtures/explore/three-on-one-group.yaml", "utf8");

/** device_add racing the registration without the probe lock: the two probes of a interleave (I35 half-initialised). */
const RACE_NO_LOCK = `${ADD_VS_REGISTER.replace("global-lock", "none")}  - expect: {devices: {a: {iommu: smmu0, probe: bound}}}
`;

const opts = (o: Partial<ExploreOptions> = {}): ExploreOptions => ({ bound: 2, workers: 1, run: {}, shrink: true, ...o });

/** The final states of every complete schedule of a search (the state without the event log's order). */
function finals(yaml: string, bound: number, reduce: boolean): { states: Set<string>; schedules: number; boundCuts: number } {
  const states = new Set<string>();
  const r = searchItem(scenario(yaml), {}, bound, [], {
    onRun: (p: PlayResult) => {
      states.add(JSON.stringify(state(takeSnapshot(p.machine, p.boot))));
    },
    reduce,
    stopAtFailure: false,
  });
  return { states, schedules: r.schedules, boundCuts: r.boundCuts };
}

describe("the systematic search", () => {
  it("exhaustive, with sleep sets reaches every final state the full search reaches, in far fewer schedules", () => {
    const full = finals(TINY, 20, false);
    const reduced = finals(TINY, 20, true);
    expect(full.boundCuts).toBe(0);
    expect(reduced.boundCuts).toBe(0);
    expect(reduced.states).toEqual(full.states);
    // Either owner may win the group.
    expect(full.states.size).toBeGreaterThanOrEqual(2);
    expect(reduced.schedules * 10).toBeLessThan(full.schedules);
  });

  it("starts with the default schedule, and a higher bound only adds schedules", () => {
    const s = scenario(TINY);
    const seen: string[] = [];
    searchItem(s, {}, 1, [], { onRun: (p) => seen.push(p.schedule), stopAtFailure: false });
    expect(seen[0]).toBe("-");
    expect(new Set(seen).size).toBe(seen.length);
    const counts = [0, 1, 2].map((b) => searchItem(s, {}, b + 1, [], { stopAtFailure: false }).schedules);
    expect(counts[1]).toBeGreaterThanOrEqual(counts[0]!);
    expect(counts[2]).toBeGreaterThanOrEqual(counts[1]!);
    expect(counts[0]).toBeLessThan(counts[2]!);
  });

  it("split into items, an exhaustive search reaches the final states of one search; the first item starts with the default schedule", () => {
    const s = loadScenarioFile("scenarios/races/probe-race-global-lock.yaml");
    const whole = new Set<string>();
    const one = searchItem(s, {}, 1000, [], { onRun: (p) => whole.add(JSON.stringify(state(takeSnapshot(p.machine, p.boot)))) });
    expect(one.boundCuts).toBe(0);
    const items = splitItems(s, {}, 1000, 16);
    expect(items.length).toBeGreaterThanOrEqual(16);
    const parts = new Set<string>();
    const schedules: string[] = [];
    for (const it of items)
      searchItem(s, {}, 1000, it, {
        onRun: (p) => {
          schedules.push(p.schedule);
          parts.add(JSON.stringify(state(takeSnapshot(p.machine, p.boot))));
        },
      });
    expect(schedules[0]).toBe("-");
    // Items never search a schedule twice (their prefixes differ).
    expect(new Set(schedules).size).toBe(schedules.length);
    expect(parts).toEqual(whole);
    expect(whole.size).toBeGreaterThan(1);
  }, 30_000);

  it("with DPOR reaches every final state and violation the sleep sets alone reach, in fewer schedules", () => {
    const s = loadScenarioFile("scenarios/races/unregister-during-probe-current.yaml");
    const ends = (dpor: boolean) => {
      const out = new Set<string>();
      const r = searchItem(s, {}, 1000, [], {
        onRun: (p) => {
          out.add(JSON.stringify(state(takeSnapshot(p.machine, p.boot))) + JSON.stringify([...p.violations].sort()));
        },
        stopAtFailure: false,
        dpor,
      });
      expect(r.boundCuts).toBe(0);
      return { out, schedules: r.schedules };
    };
    const sleep = ends(false);
    const dpor = ends(true);
    expect(dpor.out).toEqual(sleep.out);
    expect(sleep.out.size).toBeGreaterThan(1);
    expect(dpor.schedules).toBeLessThan(sleep.schedules);
  }, 30_000);

  // Every race scenario, within 2 preemptions: what DPOR prunes as equivalent never hides an outcome.
  it.each(readdirSync("scenarios/races").filter((f) => f.endsWith(".yaml")))(
    "%s, bound 2: DPOR reaches every final state and violation the sleep sets alone reach",
    (f) => {
      const s = loadScenarioFile(`scenarios/races/${f}`);
      const ends = (dpor: boolean) => {
        const out = new Set<string>();
        searchItem(s, {}, 2, [], {
          onRun: (p) => {
            out.add(JSON.stringify(state(takeSnapshot(p.machine, p.boot))) + JSON.stringify([...p.violations].sort()));
          },
          stopAtFailure: false,
          dpor,
        });
        return out;
      };
      const sleep = ends(false);
      const dpor = ends(true);
      expect([...sleep].filter((e) => !dpor.has(e))).toEqual([]);
      expect(sleep.size).toBeGreaterThan(0);
    },
    60_000,
  );
});

describe("DPOR's per-node arrays", () => {
  it("keep a clock row for every node, however far they grow at once", () => {
    const d = new Dpor(new DfsPolicy(2));
    const row = d.clk.length / d.fop.length;
    expect(row).toBeGreaterThan(1);
    for (const n of [300, 301, 2000, 9000]) {
      d.ensure(n);
      expect(d.fop.length).toBeGreaterThan(n);
      expect(d.clk.length).toBeGreaterThanOrEqual(d.fop.length * row);
    }
  });
});

describe("a failing schedule", () => {
  it("is found, shrunk, and its replay fails alike", async () => {
    const s = scenario(RACE_NO_LOCK);
    const r = await explore(s, opts());
    expect(r.found).not.toBeNull();
    const f = r.found!;
    // Without the probe lock, device_add's probe and the registration walk's both build a's dev_iommu.
    expect(f.kind).toBe("half-initialised");
    expect(f.failure.message).toMatch(/^I35 half-initialised: a: /);
    // Shrinking never makes it longer.
    expect(f.schedule.length).toBeLessThanOrEqual(f.foundSchedule.length);
    const again = runScenario(s, { policy: new ScriptPolicy(knownSchedule(f.schedule)) });
    expect(again.failures[0]).toEqual(f.failure);
    expect(again.schedule).toBe(f.schedule);
    expect(replay(s, {}, f.schedule)?.failure).toEqual(f.failure);
    // The default schedule passes.
    expect(runScenario(s).failures).toEqual([]);
  });

  it("is the same whatever the number of items and workers", async () => {
    const s = scenario(RACE_NO_LOCK);
    const one = await explore(s, opts({ workers: 1 }));
    const two = await explore(s, opts({ workers: 2 }), workerPool(s, opts({ workers: 2 })));
    const strip = (r: typeof one) => ({ ...r, elapsedMs: 0, workers: 0 });
    expect(strip(two)).toEqual(strip(one));
    const none = scenario(THREE);
    const a = await explore(none, opts({ workers: 1, bound: 1 }));
    const b = await explore(none, opts({ workers: 2, bound: 1 }), workerPool(none, opts({ workers: 2, bound: 1 })));
    expect(a.found).toBeNull();
    expect(strip(b)).toEqual(strip(a));
    // The items' schedules, summed (the search is its items, whatever the workers).
    const items = planItems(none, opts({ bound: 1 }));
    expect(a.schedules).toBe(items.reduce((n, it, i) => n + runItem(none, {}, 1, 0, it, i === 0).schedules, 0));
  }, 30_000);
});

describe("the threads' shared counters (pool.ts)", () => {
  const found = { schedule: "A", failure: { step: "events[0]", kind: "invariant", message: "m" }, index: 1 } as const;
  const result = (f: typeof found | null) => ({ schedules: 1, steps: 1, boundCuts: 0, sleepBlocked: 0, found: f });

  it("the split's estimates rank first the items that hold most of the fwspec race's search", () => {
    const s = loadScenarioFile("scenarios/races/fwspec-probe-race-global-lock.yaml");
    const items = splitItems(s, {}, 1000, 64);
    const sizes = items.map((it) => searchItem(s, {}, 1000, it, { checkBoot: false }).schedules);
    const total = sizes.reduce((a, b) => a + b, 0);
    const top3 = claimOrder(items.map((item) => ({ kind: "dfs" as const, item }))).slice(1, 4);
    expect(top3.reduce((a, i) => a + sizes[i]!, 0) / total).toBeGreaterThan(0.8);
  }, 30_000);

  it("give each item once, in their order, and none after the first failing item", () => {
    const c = new Int32Array(new SharedArrayBuffer(8));
    c[STOP] = 6;
    const order = [0, 4, 1, 5, 2, 3];
    expect([claim(c, order), claim(c, order), claim(c, order)]).toEqual([0, 4, 1]);
    settle(c, 1, result(null));
    expect(c[STOP]).toBe(6);
    settle(c, 4, result(found));
    expect(c[STOP]).toBe(4);
    // A later failure does not raise it; an earlier one lowers it.
    settle(c, 5, result(found));
    expect(c[STOP]).toBe(4);
    // 5 comes after the failing item: passed over.
    expect(claim(c, order)).toBe(2);
    settle(c, 2, result(found));
    expect(c[STOP]).toBe(2);
    expect(claim(c, order)).toBe(-1);
    expect(claim(c, order)).toBe(-1);
  });

  it("take the first item first, then the others largest first by their estimate, in search order among equals", () => {
    const dfs = (size?: number) => ({ kind: "dfs", item: { prefix: [], eff: [], size } }) as const;
    expect(claimOrder([dfs(1), dfs(5), dfs(2), dfs(5), dfs()])).toEqual([0, 1, 3, 2, 4]);
    expect(claimOrder([{ kind: "random", from: 0, to: 5 }, { kind: "random", from: 5, to: 9 }])).toEqual([0, 1]);
    expect(claimOrder([])).toEqual([]);
  });

  it("run every item of a search exactly once across this thread and two workers", async () => {
    const s = scenario(THREE);
    const o = opts({ workers: 3, random: { n: 300, seed: 7 } });
    const items = planItems(s, o);
    const pool = new WorkerPool(3);
    const seen: number[] = [];
    try {
      await pool.run(s, o, items, (i) => seen.push(i));
      // The pool serves a second search as well (the benchmark keeps one warm).
      const again = await explore(s, o, (its, on) => pool.run(s, o, its, on));
      expect(again.schedules).toBe(300);
    } finally {
      await pool.close();
    }
    expect(items.length).toBeGreaterThan(3);
    expect([...seen].sort((a, b) => a - b)).toEqual(items.map((_, i) => i));
  }, 30_000);
});

describe("a worker pool after an error", () => {
  it("rejects the search, takes no more searches, and the process goes on", async () => {
    const s = scenario(THREE);
    const o = opts({ workers: 2 });
    // Items no search makes: running one throws, in this thread and in the worker.
    const bad = Array.from({ length: 6 }, () => ({ kind: "dfs", item: { prefix: [0], eff: null } }) as unknown as WorkItem);
    const pool = new WorkerPool(2);
    try {
      await expect(pool.run(s, o, bad, () => {})).rejects.toThrow();
      await expect(pool.run(s, o, planItems(s, o), () => {})).rejects.toThrow(/unusable after an earlier error/);
    } finally {
      await pool.close();
    }
    // The model still runs here.
    expect((await explore(s, opts({ workers: 1, bound: 1 }))).found).toBeNull();
  }, 30_000);
});

describe("a worker pool whose worker died between searches", () => {
  it("refuses the next search instead of waiting for the dead worker", async () => {
    const s = scenario(THREE);
    const o = opts({ workers: 2 });
    const pool = new WorkerPool(2);
    try {
      await pool.run(s, o, planItems(s, o), () => {});
      // The pool's worker, stopped from outside (as a crash would).
      await (pool as unknown as { workers: { terminate(): Promise<number> }[] }).workers[0]!.terminate();
      await expect(pool.run(s, o, planItems(s, o), () => {})).rejects.toThrow(/an explorer worker exited/);
    } finally {
      await pool.close();
    }
  }, 30_000);
});

describe("random schedules", () => {
  it("follow their seed, and find a failing schedule where the systematic search does", async () => {
    const s = loadScenarioFile("scenarios/races/probe-race-none.yaml");
    const x = await explore(s, opts({ random: { n: 200, seed: 7 } }));
    const y = await explore(s, opts({ random: { n: 200, seed: 7 }, workers: 3 }));
    expect({ ...y, elapsedMs: 0, workers: 0 }).toEqual({ ...x, elapsedMs: 0, workers: 0 });
    expect(x.found).not.toBeNull();
    expect(replay(s, {}, x.found!.schedule)?.failure).toEqual(x.found!.failure);
    const none = await explore(scenario(THREE), opts({ random: { n: 30, seed: 1 } }));
    expect(none.found).toBeNull();
    expect(none.schedules).toBe(30);
  });
});

describe("a block", () => {
  /** A task taking two locks in an order. */
  function* takeBoth(s: Sched, first: Mutex, second: Mutex): Path {
    yield* mutexLock(s, first);
    yield* mutexLock(s, second);
    yield* mutexUnlock(s, second);
    yield* mutexUnlock(s, first);
  }

  it("where every task waits for a lock another holds is a deadlock, named", () => {
    const s = new Sched();
    const [m1, m2] = [new Mutex("lock1"), new Mutex("lock2")];
    const tasks = [new BlockTask(0, s.newTask("a"), takeBoth(s, m1, m2)), new BlockTask(1, s.newTask("b"), takeBoth(s, m2, m1))];
    // a takes lock1 (2 steps: the point, then the take), b takes lock2, then each waits.
    const end = runBlock(s, 0, tasks, new ScriptPolicy(knownSchedule("a2b2")), { before: () => {}, after: () => {} });
    expect(end).toEqual({ kind: "deadlock", message: "every task that has not ended waits for a lock: a waits for lock2, held by b; b waits for lock1, held by a" });
  });
});
