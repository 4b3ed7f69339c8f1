/**
 * The concurrency explorer (docs/explore.md): scheduler steps per second on
 * one core (a systematic search, each schedule booting its machine afresh),
 * schedules per second with one and with two worker threads (the same
 * search on warm pools, measured in the same run), the reduction of the
 * sleep sets against the naive interleaving count, and the time to exhaust
 * the fwspec race scenario under global-lock.
 */
import { searchItem } from "../src/sim/explore/dfs.ts";
import { explore, type ExploreOptions } from "../src/sim/explore/explore.ts";
import { WorkerPool } from "../src/sim/explore/pool.ts";
import { runScenario } from "../src/sim/runner.ts";
import { loadScenarioFile } from "../src/sim/scenario/load.ts";
import type { Scenario } from "../src/sim/scenario/schema.ts";
import { cpuMs, median } from "./stats.ts";

/** The fwspec race, under the global probe lock. */
const FWSPEC_RACE = "scenarios/races/fwspec-probe-race-global-lock.yaml";


/** Three small tasks on one group (exhaustible with and without the reduction); the tests search it too. */
const TINY = "test/fixtures/explore/three-on-one-group.yaml";

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

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

export async function benchExplore(log: (line: string) => void): Promise<void> {
  const race = loadScenarioFile(FWSPEC_RACE);
  log(`explore: ${FWSPEC_RACE}`);

  // Steps per second on one core: a bound-4 search, warmed up, then timed in CPU time (the machine is shared).
  const runs: { ms: number; steps: number; schedules: number }[] = [];
  for (let i = 0; i < 4; i++) {
    const t0 = cpuMs();
    const r = searchItem(race, {}, 4, []);
    if (i > 0) runs.push({ ms: cpuMs() - t0, steps: r.steps, schedules: r.schedules });
  }
  const rates = runs.map((r) => (r.steps / r.ms) * 1000);
  log(`  scheduler steps/s, one core (bound 4, ${fmt(runs[0]!.schedules)} schedules, ${fmt(runs[0]!.steps)} steps, each schedule booting afresh; CPU time): median ${fmt(median(rates))}, best ${fmt(Math.max(...rates))} (goal >= 300,000)`);

  // Schedules per second, one and two workers, warm pools, the same search.
  const opts: ExploreOptions = { bound: 4, workers: 1, run: {}, shrink: false };
  const perPool = async (n: number): Promise<number> => {
    const pool = new WorkerPool(n);
    try {
      const o = { ...opts, workers: n };
      await explore(race, o, (items, onResult) => pool.run(race, o, items, onResult));
      const xs: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const r = await explore(race, o, (items, onResult) => pool.run(race, o, items, onResult));
        xs.push((r.schedules / (performance.now() - t0)) * 1000);
      }
      return median(xs);
    } finally {
      await pool.close();
    }
  };
  const one = await perPool(1);
  const two = await perPool(2);
  log(`  schedules/s (bound 4, worker threads, warm pools, wall time): 1 worker ${fmt(one)}, 2 workers ${fmt(two)}: ${(two / one).toFixed(2)}x (goal >= 1.7x)`);

  // The reduction: exhaustive searches with and without sleep sets, and the naive count.
  const tiny = loadScenarioFile(TINY);
  const red = searchItem(tiny, {}, 1000, [], undefined, undefined, true, false);
  const full = searchItem(tiny, {}, 1000, [], undefined, undefined, false, false);
  const naiveTiny = naiveInterleavings(taskSteps(tiny));
  log(`  reduction (three claims on one group, exhaustive): ${fmt(red.schedules)} schedules with sleep sets, ${fmt(full.schedules)} without (${(full.schedules / red.schedules).toFixed(0)}x); naive interleavings of the tasks' steps ${fmt(naiveTiny)} (${(naiveTiny / red.schedules).toFixed(0)}x)`);

  // The fwspec race under global-lock: its bound-2 and bound-3 searches (three tasks: exhausting it takes far longer),
  // and the exhaustive search of the two-task race (scenarios/races/probe-race-global-lock.yaml).
  for (const bound of [2, 3]) {
    const t0 = performance.now();
    const r = searchItem(race, {}, bound, []);
    log(`  the race, bound ${bound}: ${fmt(r.schedules)} schedules, ${fmt(r.steps)} steps in ${((performance.now() - t0) / 1000).toFixed(2)} s, one thread (the bound cut ${fmt(r.boundCuts)} branches)`);
  }
  const twoTasks = loadScenarioFile("scenarios/races/probe-race-global-lock.yaml");
  const t0 = performance.now();
  const ex = searchItem(twoTasks, {}, 1000, []);
  const naiveTwo = naiveInterleavings(taskSteps(twoTasks));
  log(
    `  exhausting probe-race-global-lock.yaml (two tasks; no bound cut: ${ex.boundCuts === 0 ? "yes" : "no"}): ${fmt(ex.schedules)} schedules, ${fmt(ex.steps)} steps in ${((performance.now() - t0) / 1000).toFixed(2)} s, one thread; naive interleavings ${naiveTwo.toExponential(2)} (${(naiveTwo / ex.schedules).toExponential(1)}x)`,
  );

  // The figure: exhausting the fwspec race itself (three tasks), given at most CAP_S seconds.
  const t1 = performance.now();
  const whole = searchItem(race, {}, 1000, [], () => performance.now() - t1 > CAP_S * 1000);
  const secs = (performance.now() - t1) / 1000;
  const done = secs <= CAP_S && whole.boundCuts === 0;
  log(
    done
      ? `  exhausting ${FWSPEC_RACE}: ${fmt(whole.schedules)} schedules in ${secs.toFixed(2)} s, one thread (goal < 5 s)`
      : `  exhausting ${FWSPEC_RACE}: not done after ${CAP_S} s (${fmt(whole.schedules)} schedules, ${fmt(whole.steps)} steps, one thread; goal < 5 s)`,
  );
}

/** How long the bench lets the exhaustive search of the fwspec race run. */
const CAP_S = 20;
