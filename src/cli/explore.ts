/**
 * `iommu-sim explore FILE`: search the schedules of the scenario's
 * concurrently blocks for one that fails (docs/explore.md), and the
 * `explore:` key `iommu-sim check` asserts. Exit 0 nothing found, 1 a
 * failing schedule found (check: the scenario's explore expectation failed),
 * 2 bad input.
 */
import { availableParallelism } from "node:os";
import { DEFAULT_BOUND, explore, type ExploreOptions, type ExploreResult } from "../sim/explore/explore.ts";
import { workerPool } from "../sim/explore/pool.ts";
import { knownSchedule, ScriptPolicy } from "../sim/explore/schedule.ts";
import { sameFailure } from "../sim/explore/shrink.ts";
import { runScenario } from "../sim/runner.ts";
import { RACE_KINDS, withDesign, type ExploreSpec, type Scenario } from "../sim/scenario/schema.ts";
import { ScenarioError } from "../sim/scenario/load.ts";
import { renderTrace } from "../sim/trace-view.ts";
import { blockCount, fileName, json, lateProblem, load, runOptionsOf, SCHEMA_VERSION, type StrategyFlags } from "./commands.ts";
import { EXIT_FAILED, EXIT_INVALID, EXIT_OK } from "./exit.ts";
import type { Io } from "./io.ts";

export interface ExploreFlags extends StrategyFlags {
  bound?: string;
  random?: string;
  seed?: string;
  workers?: string;
  json?: boolean;
}

/** A flag's whole number in [min, max], or the error line. */
function wholeFlag(flag: string, v: string, min: number, max: number): number | string {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    return `${flag}: expected a whole number from ${min} to ${max}, found '${v.slice(0, 40)}'`;
  }
  return n;
}

/** The search the flags ask for (the scenario's explore.bound where --bound is not given), or an error line. */
function searchOf(o: ExploreFlags, s: Scenario): { bound: number; random?: { n: number; seed: number }; workers: number } | string {
  if (o.random !== undefined && o.bound !== undefined) return "--bound and --random exclude each other: the bound is for the systematic search";
  if (o.seed !== undefined && o.random === undefined) return "--seed goes with --random N";
  const bound = o.bound === undefined ? (s.explore?.bound ?? DEFAULT_BOUND) : wholeFlag("--bound", o.bound, 1, 1000);
  if (typeof bound === "string") return bound;
  const workers = o.workers === undefined ? availableParallelism() : wholeFlag("--workers", o.workers, 1, 256);
  if (typeof workers === "string") return workers;
  if (o.random === undefined) return { bound, workers };
  const n = wholeFlag("--random", o.random, 1, 1e9);
  if (typeof n === "string") return n;
  const seed = o.seed === undefined ? 1 : wholeFlag("--seed", o.seed, 0, 0xffffffff);
  if (typeof seed === "string") return seed;
  return { bound, workers, random: { n, seed } };
}

/** A shell word, quoted when it needs to be. */
function sh(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`;
}

/** The command that replays a schedule, with the design flags the search ran under. */
export function replayCommand(file: string, schedule: string, o: StrategyFlags): string {
  const flags = [...(o.kernel === undefined ? [] : ["--kernel", o.kernel]), ...(o.strategy ?? []).flatMap((x) => ["--strategy", x])];
  if (o.pgtableMemory !== undefined) flags.push("--pgtable-memory", o.pgtableMemory);
  return ["iommu-sim", "run", sh(file), "--schedule", sh(schedule), ...flags.map(sh), "--trace"].join(" ");
}

/** Runs the search, with a progress line on a terminal. */
async function search(s: Scenario, opts: ExploreOptions, io: Io): Promise<ExploreResult> {
  const progress = io.progress;
  if (progress !== undefined) {
    opts.onProgress = (p) => {
      const rate = p.elapsedMs > 0 ? Math.round((p.steps / p.elapsedMs) * 1000) : 0;
      const left = p.done > 0 ? ((p.elapsedMs / p.done) * (1 - p.done)) / 1000 : NaN;
      progress(`explore: ${p.schedules} schedules, ${rate} steps/s, ${Number.isFinite(left) ? `~${left.toFixed(0)} s left` : "time left unknown"}`);
    };
  }
  try {
    return await explore(s, opts, opts.workers > 1 ? workerPool(s, opts) : undefined);
  } finally {
    if (progress !== undefined) progress(null);
  }
}

function plural(n: number, w: string): string {
  return `${n} ${w}${n === 1 ? "" : "s"}`;
}

/** What the search covered, in words. */
function coverage(r: ExploreResult): string {
  const secs = `${(r.elapsedMs / 1000).toFixed(1)} s`;
  if (r.mode === "random") return `${plural(r.schedules, "random schedule")} (${plural(r.steps, "step")}, ${secs})`;
  const cut = r.found !== null ? "" : r.boundCuts === 0 ? ", exhaustive: the bound cut nothing" : `, the bound cut ${r.boundCuts} branch${r.boundCuts === 1 ? "" : "es"}`;
  return `${plural(r.schedules, "schedule")} (${plural(r.steps, "step")}, bound ${r.bound}${cut}; ${plural(r.sleepBlocked, "run")} pruned by sleep sets; ${plural(r.workers, "worker")}, ${secs})`;
}

export async function exploreCommand(file: string, o: ExploreFlags, io: Io): Promise<number> {
  const opts = runOptionsOf(o);
  if (typeof opts === "string") {
    io.err(opts);
    return EXIT_INVALID;
  }
  const loaded = await load(file, io);
  if (loaded instanceof ScenarioError) {
    io.err(loaded.message);
    return EXIT_INVALID;
  }
  const name = fileName(file);
  if (blockCount(loaded) === 0) {
    io.err(lateProblem(file, loaded, ["events"], "nothing to explore: the scenario has no concurrently event"));
    return EXIT_INVALID;
  }
  const q = searchOf(o, loaded);
  if (typeof q === "string") {
    io.err(q);
    return EXIT_INVALID;
  }
  const s = withDesign(loaded, opts.design);
  const r = await search(s, { ...q, run: opts.model }, io);
  const f = r.found;
  const replay = f === null ? null : replayCommand(name, f.schedule, o);
  if (o.json) {
    io.out(
      json(
        {
          schema_version: SCHEMA_VERSION,
          command: "explore",
          file: name,
          mode: r.mode,
          // Whether the bound cut the search is known only of a search that ran to its end.
          ...(r.mode === "dfs" ? { bound: r.bound, bound_cuts: f === null ? r.boundCuts : null, exhaustive: f === null ? r.boundCuts === 0 : null, sleep_blocked: r.sleepBlocked } : { seed: q.random!.seed }),
          schedules: r.schedules,
          steps: r.steps,
          violation: f === null ? null : { schedule: f.schedule, kind: f.kind, message: f.failure.message, step: f.failure.step, found_schedule: f.foundSchedule },
          replay,
        },
        io,
      ),
    );
    return f === null ? EXIT_OK : EXIT_FAILED;
  }
  if (f === null) {
    io.out(`${name}: no failing schedule in ${coverage(r)}`);
    return EXIT_OK;
  }
  const traced = runScenario(s, { ...opts.model, trace: true, policy: new ScriptPolicy(knownSchedule(f.schedule)) });
  io.out(renderTrace(traced.machine.ctx.trace.records));
  io.out("");
  io.out(`${name}: found a failing schedule (${f.kind}) after ${coverage(r)}`);
  io.out(`schedule: ${f.schedule}${f.foundSchedule !== f.schedule ? ` (shrunk from ${f.foundSchedule})` : ""}`);
  io.out(`broken: ${f.failure.step} ${f.failure.kind}: ${f.failure.message}`);
  io.out(`replay: ${replay!}`);
  return EXIT_FAILED;
}

/** The outcome of a scenario's `explore:` expectation, for `check`. */
export interface ExploreCheck {
  pass: boolean;
  line: string;
  result: ExploreResult;
  replayed: boolean | null;
}

/** What `check` does with `explore:`: search, compare with the expectation, and replay what it found. */
export async function checkExplore(s: Scenario, spec: ExploreSpec, file: string, o: StrategyFlags & { workers?: string }, model: ExploreOptions["run"], io: Io): Promise<ExploreCheck | string> {
  const workers = o.workers === undefined ? availableParallelism() : wholeFlag("--workers", o.workers, 1, 256);
  if (typeof workers === "string") return workers;
  const r = await search(s, { bound: spec.bound ?? DEFAULT_BOUND, workers, run: model }, io);
  const f = r.found;
  const want = spec.expect;
  const what = want === "violation" ? (spec.kind === undefined ? "a violation" : `a ${spec.kind} violation`) : want === "expectation" ? "a failed expectation" : want === "deadlock" ? "a deadlock" : "no failure";
  if (want === "none") {
    if (f === null) return { pass: true, line: `explore: PASS: no failing schedule in ${coverage(r)}`, result: r, replayed: null };
    return { pass: false, line: `explore: FAIL: expected no failing schedule, found ${f.kind} with schedule ${f.schedule}: ${f.failure.step} ${f.failure.message}`, result: r, replayed: null };
  }
  if (f === null) return { pass: false, line: `explore: FAIL: expected ${what}, found no failing schedule in ${coverage(r)}`, result: r, replayed: null };
  const kindOk =
    want === "violation" ? (spec.kind === undefined ? f.kind === "invariant" || (RACE_KINDS as readonly string[]).includes(f.kind) : f.kind === spec.kind) : want === "deadlock" ? f.kind === "deadlock" : f.kind === "expectation";
  if (!kindOk) return { pass: false, line: `explore: FAIL: expected ${what}, the first failing schedule ${f.schedule} gives ${f.kind}: ${f.failure.step} ${f.failure.message}`, result: r, replayed: null };
  const again = runScenario(s, { ...model, trace: false, policy: new ScriptPolicy(knownSchedule(f.schedule)) });
  const same = again.failures.length > 0 && sameFailure(again.failures[0]!, f.failure) && again.failures[0]!.message === f.failure.message && again.schedule === f.schedule;
  if (!same) return { pass: false, line: `explore: FAIL: schedule ${f.schedule} failed in the search (${f.failure.message}) but its replay ${again.failures.length === 0 ? "passes" : `fails otherwise: ${again.failures[0]!.message}`}`, result: r, replayed: false };
  return { pass: true, line: `explore: PASS: found ${what} as expected (schedule ${f.schedule}, after ${plural(r.schedules, "schedule")}), and its replay reproduces it: ${f.failure.message} (replay: ${replayCommand(fileName(file), f.schedule, o)})`, result: r, replayed: true };
}
