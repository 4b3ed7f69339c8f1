/**
 * The concurrency explorer (docs/explore.md): the time to exhaust the fwspec
 * race scenario under global-lock (DPOR, one thread), scheduler steps per
 * second on one core (each schedule booting its machine afresh), the
 * reduction of DPOR and of the sleep sets alone against the naive
 * interleaving count, and schedules per second with one core and with both:
 * in this process on warm threads (one core: every thread pinned to CPU 0
 * with taskset), and as whole `iommu-sim explore` processes. The machine is
 * shared: the load average is printed beside the figures that wall time
 * measures.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { searchItem } from "../src/sim/explore/dfs.ts";
import { explore, planItems, runItem, type ExploreOptions } from "../src/sim/explore/explore.ts";
import { claimOrder, WorkerPool } from "../src/sim/explore/pool.ts";
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

/** The checkout, and the command line bundled in it (rebuilt from these sources before the whole-process runs). */
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = "bin/iommu-sim.js";

/** The CPUs this process may run on when it starts (restored after each one-core run), and how many. */
const ALL_CPUS = /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? `0-${cpus().length - 1}`;
const CORES = availableParallelism();

/** Pins every thread of this process to `cpus` (taskset -a -p); false where taskset is missing or refused. */
function pin(cpus: string): boolean {
  return spawnSync("taskset", ["-a", "-p", "-c", cpus, String(process.pid)], { stdio: "ignore" }).status === 0;
}

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
 * What the split allows two threads, whatever the load: the items' CPU times (run here, in order) handed in the
 * threads' order (claimOrder) to the first free of two, plus the planning, against one thread. Messages between threads are not counted.
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
  for (const i of claimOrder(items)) free[free[0]! <= free[1]! ? 0 : 1]! += ms[i]!;
  const total = ms.reduce((a, b) => a + b, 0);
  return { items: items.length, ratio: (plan + total) / (plan + Math.max(...free)), largest: Math.max(...ms), total };
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const load = () => `load average ${loadavg()[0]!.toFixed(2)} on ${CORES} cores`;

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
    log(`  the split's balance (the fwspec race, ${bound === UNBOUNDED ? "exhaustive" : `bound ${bound}`}; items' CPU times handed in the threads' order (the first, then the largest estimated) to the first free of 2, planning included): ${b.items} items, the largest ${fmt(b.largest)} ms of ${fmt(b.total)} ms: ${b.ratio.toFixed(2)}x`);
  }

  // Schedules per second with one core and with both (the issue's goal), steady state: the exhaustive fwspec race on warm
  // threads, alternated. "One core": every thread of this process (V8's compiler and GC threads too) pinned to CPU 0 with
  // taskset -a; one thread left free also gets the other core's time for its compiler and GC threads.
  const full: ExploreOptions = { bound: UNBOUNDED, workers: 1, run: {}, shrink: false };
  const pool = new WorkerPool(2);
  let pinnable = false;
  try {
    const once = async (threads: 1 | 2) => {
      const o = { ...full, workers: threads };
      const w = performance.now();
      const r = await explore(race, o, threads === 1 ? undefined : (items, onResult) => pool.run(race, o, items, onResult));
      return (r.schedules / (performance.now() - w)) * 1000;
    };
    await once(1);
    await once(2);
    pinnable = pin("0");
    const loadAt = load();
    const xs: [number, number, number][] = [];
    for (let i = 0; i < 3; i++) {
      pin("0");
      const oneCore = await once(1);
      pin(ALL_CPUS);
      xs.push([oneCore, await once(1), await once(2)]);
    }
    pin(ALL_CPUS);
    const [oneCore, oneFree, two] = [0, 1, 2].map((k) => median(xs.map((x) => x[k]!)));
    const r = xs.map((x) => x[2] / x[0]);
    log(
      `  schedules/s, steady state (the fwspec race exhausted on warm threads, alternated; ${loadAt}): ` +
        (pinnable ? `one thread on one core (taskset -a -c 0) ${fmt(oneCore!)}; ` : `(taskset failed: no one-core figure) `) +
        `one thread free to use both cores for its compiler and GC ${fmt(oneFree!)}; two threads ${fmt(two!)}: ` +
        (pinnable ? `${(two! / oneCore!).toFixed(2)}x one core (per round ${r.map((x) => x.toFixed(2)).join(", ")}; goal >= 1.7x), ` : "") +
        `${(two! / oneFree!).toFixed(2)}x the free single thread`,
    );
  } finally {
    pin(ALL_CPUS);
    await pool.close();
  }

  // Whole processes, as a user runs them: each a fresh `iommu-sim explore` whose threads warm up on their own (each
  // V8 isolate optimises the model for itself), a short search and a long one.
  const build = spawnSync(process.execPath, ["scripts/build.js", "--cli"], { cwd: ROOT, stdio: "inherit" });
  if (build.status !== 0) throw new Error("explore: node scripts/build.js --cli failed");
  for (const [how, runs] of [[["--bound", String(UNBOUNDED)], 2], [["--random", "120000"], 1]] as const) {
    const wall = (workers: number, oneCore: boolean) => {
      const args = [BIN, "explore", FWSPEC_RACE, ...how, "--workers", String(workers), "--json"];
      const t0 = performance.now();
      const r = oneCore ? spawnSync("taskset", ["-c", "0", process.execPath, ...args], { cwd: ROOT }) : spawnSync(process.execPath, args, { cwd: ROOT });
      if (r.status !== 0) throw new Error(`iommu-sim explore ${how.join(" ")} exited ${r.status}: ${String(r.stderr).slice(0, 300)}`);
      return performance.now() - t0;
    };
    const ts: [number, number, number][] = [];
    for (let i = 0; i < runs; i++) ts.push([pinnable ? wall(1, true) : NaN, wall(1, false), wall(2, false)]);
    const [a, b, c] = [0, 1, 2].map((k) => Math.min(...ts.map((x) => x[k]!)) / 1000);
    log(
      `  whole processes, iommu-sim explore ${FWSPEC_RACE} ${how.join(" ")} (${runs === 1 ? "one run" : `best of ${runs}`}; ${load()}): ` +
        (pinnable ? `--workers 1 on one core ${a!.toFixed(2)} s, ` : "") +
        `--workers 1 ${b!.toFixed(2)} s, --workers 2 ${c!.toFixed(2)} s: ${pinnable ? `${(a! / c!).toFixed(2)}x one core, ` : ""}${(b! / c!).toFixed(2)}x the free single thread`,
    );
  }
}
