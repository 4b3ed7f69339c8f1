/**
 * `iommu-sim explore`: the search over a scenario's schedules (dfs.ts or
 * random.ts), split into items that one thread or a pool of worker threads
 * (pool.ts) runs, the first failing schedule in search order shrunk
 * (shrink.ts). The result does not depend on the number of workers: items
 * partition the search in order, the failure reported is the first in that
 * order, and the counts are those of the search up to it.
 */
import type { Failure, RunOptions } from "../runner.ts";
import type { Scenario } from "../scenario/schema.ts";
import { searchItem, type DfsItem, type ItemResult } from "./dfs.ts";
import { splitItems } from "./split.ts";
import { searchRandom } from "./random.ts";
import { failureKind, shrink, type FailureKind } from "./shrink.ts";

/** The items a search is split into (whatever the number of workers, so the result does not depend on it). */
export const ITEMS = 64;

/** The preemption bound when neither --bound nor the scenario's explore.bound says. */
export const DEFAULT_BOUND = 2;

export interface ExploreOptions {
  /** Preemptions per schedule (DFS). */
  bound: number;
  /** Random schedules instead of the systematic search. */
  random?: { n: number; seed: number };
  /** Worker threads (1: this thread). */
  workers: number;
  /** The model's options (page-table memory). */
  run: RunOptions;
  /** Called now and then while searching. */
  onProgress?: (p: Progress) => void;
  /** Shrink a failing schedule (default true). */
  shrink?: boolean;
}

export interface Progress {
  schedules: number;
  steps: number;
  elapsedMs: number;
  /** Items done over items (0 to 1). */
  done: number;
}

/** An item of work: a DFS prefix, or a range of random schedules. */
export type WorkItem = { readonly kind: "dfs"; readonly item: DfsItem } | { readonly kind: "random"; readonly from: number; readonly to: number };

export interface ExploreResult {
  mode: "dfs" | "random";
  bound: number;
  /** Complete schedules run, up to and including the failing one. */
  schedules: number;
  /** Scheduler steps taken by them. */
  steps: number;
  /** DFS: branches the bound cut (0: every schedule up to equivalence was run). */
  boundCuts: number;
  /** DFS: runs given up as equivalent to one explored (every runnable task asleep). */
  sleepBlocked: number;
  workers: number;
  elapsedMs: number;
  found: null | {
    schedule: string;
    failure: Failure;
    kind: FailureKind;
    /** The schedule the search found, before shrinking. */
    foundSchedule: string;
    shrinkReplays: number;
  };
}

/** Runs one item (in this thread or a worker); `first`: the search's first item. */
export function runItem(s: Scenario, opts: RunOptions, bound: number, seed: number, item: WorkItem, first: boolean, stop?: () => boolean): ItemResult {
  if (item.kind === "random") return searchRandom(s, opts, seed, item.from, item.to, stop);
  // The first item holds the first schedule, the default one: it checks the boot, the same in every schedule.
  return searchItem(s, opts, bound, item.item, { stop, checkBoot: first });
}

/** The items a search is split into, in search order. */
export function planItems(s: Scenario, o: ExploreOptions): WorkItem[] {
  if (o.random !== undefined) {
    const n = o.random.n;
    const parts = Math.min(n, ITEMS);
    const out: WorkItem[] = [];
    for (let i = 0; i < parts; i++) {
      const from = Math.floor((i * n) / parts);
      const to = Math.floor(((i + 1) * n) / parts);
      if (to > from) out.push({ kind: "random", from, to });
    }
    return out;
  }
  return splitItems(s, o.run, o.bound, ITEMS).map((item) => ({ kind: "dfs", item }));
}

/** Runs a search's items somewhere, handing each result to `onResult` (any order); items after a failing one may be stopped or not run. */
export type ItemRunner = (items: readonly WorkItem[], onResult: (i: number, r: ItemResult) => void) => Promise<void>;

/** Items in this thread, in order. */
export const inThread =
  (s: Scenario, o: ExploreOptions): ItemRunner =>
  async (items, onResult) => {
    for (let i = 0; i < items.length; i++) {
      const r = runItem(s, o.run, o.bound, o.random?.seed ?? 0, items[i]!, i === 0);
      onResult(i, r);
      if (r.found !== null) return;
      // Let a progress timer fire.
      if (o.onProgress !== undefined) await new Promise((res) => setImmediate(res));
    }
  };

/** The search: items run by `runner`, results folded in search order. */
export async function explore(s: Scenario, o: ExploreOptions, runner: ItemRunner = inThread(s, o)): Promise<ExploreResult> {
  const t0 = performance.now();
  const items = planItems(s, o);
  const results: (ItemResult | undefined)[] = new Array(items.length);
  let doneCount = 0;
  let live = { schedules: 0, steps: 0 };
  let timer: ReturnType<typeof setInterval> | null = null;
  if (o.onProgress !== undefined) {
    const cb = o.onProgress;
    timer = setInterval(() => cb({ ...live, elapsedMs: performance.now() - t0, done: doneCount / items.length }), 250);
  }
  try {
    await runner(items, (i, r) => {
      results[i] = r;
      doneCount++;
      live = { schedules: live.schedules + r.schedules, steps: live.steps + r.steps };
    });
  } finally {
    if (timer !== null) clearInterval(timer);
  }
  // Fold in order up to the first failing item.
  let schedules = 0;
  let steps = 0;
  let boundCuts = 0;
  let sleepBlocked = 0;
  let first: ItemResult | null = null;
  for (const r of results) {
    if (r === undefined) break;
    schedules += r.found === null ? r.schedules : r.found.index;
    steps += r.steps;
    boundCuts += r.boundCuts;
    sleepBlocked += r.sleepBlocked;
    if (r.found !== null) {
      first = r;
      break;
    }
  }
  const base = { mode: o.random === undefined ? ("dfs" as const) : ("random" as const), bound: o.bound, schedules, steps, boundCuts, sleepBlocked, workers: o.workers };
  if (first === null || first.found === null) return { ...base, elapsedMs: performance.now() - t0, found: null };
  const f = first.found;
  const sh = o.shrink === false ? { schedule: f.schedule, failure: f.failure, replays: 0 } : shrink(s, o.run, f.schedule, f.failure);
  return {
    ...base,
    elapsedMs: performance.now() - t0,
    found: { schedule: sh.schedule, failure: sh.failure, kind: failureKind(sh.failure), foundSchedule: f.schedule, shrinkReplays: sh.replays },
  };
}
