/**
 * The concurrency explorer (docs/explore.md): the time to exhaust the fwspec
 * race scenario under global-lock (DPOR, one thread and two workers),
 * scheduler steps per second on one core (each schedule booting its machine
 * afresh), schedules per second with one and with two worker threads (the
 * same search on warm pools, alternated in the same run), and the reduction
 * of DPOR and of the sleep sets alone against the naive interleaving count.
 * The machine is shared: the load average is printed beside the figures
 * that wall time measures.
 */
import { availableParallelism, loadavg } from "node:os";
import { searchItem } from "../src/sim/explore/dfs.ts";
import { explore, planItems, runItem, type ExploreOptions } from "../src/sim/explore/explore.ts";
import { WorkerPool } from "../src/sim/explore/pool.ts";
import { runScenario } from "../src/sim/runner.ts";
import { loadScenarioFile } from "../src/sim/scenario/load.ts";
import type { Scenario } from "../src/sim/scenario/schema.ts";
import { cpuMs, median } from "./stats.ts";

/** The issue's fwspec race, under the global probe lock. */
const FWSPEC_RACE = "scenarios/races/fwspec-probe-race-global-lock.yaml";

/** Two tasks: device_add racing the registration under the global lock. */
const TWO_TASKS = "scenarios/races/probe-race-global-lock.yaml";

/** Three small tasks on one group (exhaustible with and without the reduction); the tests search it too. */
const TINY = "test/fixtures/explore/three-on-one-group.yaml";

/** The bound meaning "no bound" (a search the bound cut nothing in is exhaustive). */
const UNBOUNDED = 1000;

/** How long the search with sleep sets alone may run on the fwspec race (it does not end in minutes). */
const SLEEP_CAP_S = 10;

/** The interleavings of tasks of these step counts, ignoring locks: the multinomial (n1 + n2 + ...)! / (n1! n2! ...). */
function naiveInterleavings(counts: readonly number[]): number {
  let total = 0;
  let r = 1;
  for (const c of counts) {
    for (let i = 1; i <= c; i++) {
      total++;
      r = (r * total) / i;
    }
  }
  return Math.round(r);
}

/** Each task's steps on the default schedule. */
function taskSteps(s: Scenario): number[] {
  const b = runScenario(s, { trace: false }).blocks[0]!;
  const counts: number[] = [];
  for (let i = 0; i < b.length; i++) counts[b.chosen[i]!] = (counts[b.chosen[i]!] ?? 0) + 1;
  return counts.map((c) => c ?? 0);
}

/**
 * What the split allows two workers, whatever the load: the items' CPU times (run here, in order) handed to the
 * first free of two workers, plus the planning, against one worker. Messages between threads are not counted.
 */
function balance(s: Scenario, bound: number): { items: number; ratio: number; largest: number; total: number } {
  const c0 = cpuMs();
  const items = planItems(s, { bound, workers: 1, run: {} });
  const plan = cpuMs() - c0;
  const ms = items.map((it, i) => {
    const a = cpuMs();
    runItem(s, {}, bound, 0, it, i === 0);
    return cpuMs() - a;
  });
  const free = [0, 0];
  for (const m of ms) free[free[0]! <= free[1]! ? 0 : 1]! += m;
  const total = ms.reduce((a, b) => a + b, 0);
  return { items: items.length, ratio: (plan + total) / (plan + Math.max(...free)), largest: Math.max(...ms), total };
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const load = () => `load average ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores`;

export async function benchExplore(log: (line: string) => void): Promise<void> {
  const race = loadScenarioFile(FWSPEC_RACE);
  log(`explore: ${FWSPEC_RACE} (${load()})`);

  // The issue's figure: exhausting the fwspec race (three tasks), one thread, DPOR; the best of 3 in wall time, and CPU time.
  const ex: { wall: number; cpu: number; schedules: number; steps: number; cuts: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const w0 = performance.now();
    const c0 = cpuMs();
    const r = searchItem(race, {}, UNBOUNDED, []);
    ex.push({ wall: performance.now() - w0, cpu: cpuMs() - c0, schedules: r.schedules, steps: r.steps, cuts: r.boundCuts });
  }
  const e0 = ex[0]!;
  log(
    `  exhausting the fwspec race (three tasks, DPOR, one thread; the bound cut ${e0.cuts === 0 ? "nothing" : fmt(e0.cuts) + " branches"}): ${fmt(e0.schedules)} schedules, ${fmt(e0.steps)} steps; ` +
      `wall median ${(median(ex.map((x) => x.wall)) / 1000).toFixed(2)} s, best ${(Math.min(...ex.map((x) => x.wall)) / 1000).toFixed(2)} s; CPU median ${(median(ex.map((x) => x.cpu)) / 1000).toFixed(2)} s (goal < 5 s)`,
  );

  // Steps per second on one core: the exhaustive search above, in CPU time (the machine is shared).
  const rates = ex.map((x) => (x.steps / x.cpu) * 1000);
  const sps = ex.map((x) => (x.schedules / x.cpu) * 1000);
  log(`  one core (that search, CPU time): scheduler steps/s median ${fmt(median(rates))}, best ${fmt(Math.max(...rates))} (goal >= 300,000); schedules/s median ${fmt(median(sps))}`);

  // The reduction: the same search with sleep sets alone (capped), and the naive count.
  const t0 = performance.now();
  const sleep = searchItem(race, {}, UNBOUNDED, [], { stop: () => performance.now() - t0 > SLEEP_CAP_S * 1000, stopAtFailure: false, dpor: false });
  const sleepDone = performance.now() - t0 <= SLEEP_CAP_S * 1000;
  const naive = naiveInterleavings(taskSteps(race));
  log(
    `  reduction, the fwspec race: DPOR ${fmt(e0.schedules)} schedules; sleep sets alone ${sleepDone ? fmt(sleep.schedules) + " schedules" : `not done after ${SLEEP_CAP_S} s (${fmt(sleep.schedules)} schedules, ${fmt(sleep.sleepBlocked)} runs pruned)`}; ` +
      `naive interleavings of the tasks' steps ${naive.toExponential(2)} (${(naive / e0.schedules).toExponential(1)}x DPOR's count)`,
  );
  const tiny = loadScenarioFile(TINY);
  const tinyD = searchItem(tiny, {}, UNBOUNDED, [], { stopAtFailure: false });
  const tinyS = searchItem(tiny, {}, UNBOUNDED, [], { stopAtFailure: false, dpor: false });
  const tinyF = searchItem(tiny, {}, UNBOUNDED, [], { reduce: false, stopAtFailure: false });
  log(
    `  reduction, three claims on one group (exhaustive): DPOR ${fmt(tinyD.schedules)} schedules (${fmt(tinyD.steps)} steps), sleep sets alone ${fmt(tinyS.schedules)} (${fmt(tinyS.steps)} steps), none ${fmt(tinyF.schedules)}; naive ${fmt(naiveInterleavings(taskSteps(tiny)))}`,
  );
  const two = loadScenarioFile(TWO_TASKS);
  const w2 = performance.now();
  const twoD = searchItem(two, {}, UNBOUNDED, []);
  const twoMs = performance.now() - w2;
  const naiveTwo = naiveInterleavings(taskSteps(two));
  log(`  exhausting ${TWO_TASKS} (two tasks; the bound cut ${twoD.boundCuts === 0 ? "nothing" : "something"}): ${fmt(twoD.schedules)} schedules, ${fmt(twoD.steps)} steps in ${(twoMs / 1000).toFixed(2)} s, one thread; naive ${naiveTwo.toExponential(2)}`);

  for (const bound of [4, UNBOUNDED]) {
    const b = balance(race, bound);
    log(`  the split's balance (the fwspec race, ${bound === UNBOUNDED ? "exhaustive" : `bound ${bound}`}; items' CPU times handed in order to the first free of 2 workers, planning included): ${b.items} items, the largest ${fmt(b.largest)} ms of ${fmt(b.total)} ms: ${b.ratio.toFixed(2)}x`);
  }

  // Schedules per second, one and two workers, warm pools, the same search (items handed out on demand), alternated.
  const opts: ExploreOptions = { bound: 4, workers: 1, run: {}, shrink: false };
  const pools = [new WorkerPool(1), new WorkerPool(2)];
  try {
    const once = async (k: 0 | 1, s: Scenario, o: ExploreOptions) => {
      const oo = { ...o, workers: k + 1 };
      const w = performance.now();
      const r = await explore(s, oo, (items, onResult) => pools[k]!.run(s, oo, items, onResult));
      return { ms: performance.now() - w, r };
    };
    await once(0, race, opts);
    await once(1, race, opts);
    const loadAt = load();
    const xs: [number, number][] = [];
    for (let i = 0; i < 3; i++) {
      const a = await once(0, race, opts);
      const b = await once(1, race, opts);
      xs.push([(a.r.schedules / a.ms) * 1000, (b.r.schedules / b.ms) * 1000]);
    }
    const one = median(xs.map((x) => x[0]));
    const twoW = median(xs.map((x) => x[1]));
    const ratios = xs.map((x) => x[1] / x[0]);
    log(`  schedules/s (the fwspec race, bound 4, wall time, warm pools, alternated; ${loadAt}): 1 worker ${fmt(one)}, 2 workers ${fmt(twoW)}: ${(twoW / one).toFixed(2)}x (per pair ${ratios.map((r) => r.toFixed(2)).join(", ")}; goal >= 1.7x)`);
    // The machine's own ceiling for this work: two whole searches at once, each on its own one-worker pool, nothing
    // shared but the process; what they do together per second over what one does alone. The split can reach at most this.
    const solo = new WorkerPool(1);
    try {
      const run1 = async (pool: WorkerPool) => {
        const oo = { ...opts, workers: 1 };
        const r = await explore(race, oo, (items, onResult) => pool.run(race, oo, items, onResult));
        return r.schedules;
      };
      await run1(solo);
      const cs: number[] = [];
      for (let i = 0; i < 3; i++) {
        let w = performance.now();
        const alone = await run1(pools[0]!);
        const aloneRate = (alone / (performance.now() - w)) * 1000;
        w = performance.now();
        const both = await Promise.all([run1(pools[0]!), run1(solo)]);
        const bothRate = ((both[0]! + both[1]!) / (performance.now() - w)) * 1000;
        cs.push(bothRate / aloneRate);
      }
      log(
        `  the machine's ceiling for two at once (two independent bound-4 searches, each on its own worker, against one alone; ${load()}): ` +
          `${median(cs).toFixed(2)}x (runs ${cs.map((c) => c.toFixed(2)).join(", ")}): no split of one search across 2 workers can beat it`,
      );
    } finally {
      await solo.close();
    }
    // Exhausting it with the two workers.
    const full = { ...opts, bound: UNBOUNDED };
    const a = await once(0, race, full);
    const b = await once(1, race, full);
    log(`  exhausting the fwspec race through explore (items): 1 worker ${(a.ms / 1000).toFixed(2)} s, 2 workers ${(b.ms / 1000).toFixed(2)} s (${fmt(b.r.schedules)} schedules; ${load()})`);
  } finally {
    await Promise.all(pools.map((p) => p.close()));
  }
}
