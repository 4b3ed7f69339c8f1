/**
 * Worker threads for `explore`: this thread and the pool's workers take the
 * items of a search (explore.ts) one at a time, in the order claimOrder
 * gives (the largest estimated first), each claiming the next through a
 * shared counter, so no thread waits for another to be handed work. Once an item fails, items after it are no
 * longer taken and the threads running one stop at their next schedule (a
 * shared flag), while items before it run to their end, so the result is
 * the one a single thread gives.
 *
 * The workers start when the pool is made: a pool made before the search
 * is planned loads the model while this thread plans.
 *
 * The worker's module sits beside this one: worker.ts run through tsx from
 * the sources, worker.js in the built library, explore-worker.cjs beside the
 * bundled command line (scripts/build.js). A pool can serve several searches
 * (the benchmark keeps one warm).
 */
import { createRequire } from "node:module";
import { setImmediate as tick } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { Scenario } from "../scenario/schema.ts";
import type { ItemResult } from "./dfs.ts";
import { runItem, type ExploreOptions, type ItemRunner, type WorkItem } from "./explore.ts";

/** Int32 slots of a search's shared counters. */
export const NEXT = 0;
/** The index of the first failing item so far (items after it are not taken, and stop). */
export const STOP = 1;

/** What a worker is given for a search. */
export interface WorkerJob {
  scenario: Scenario;
  run: ExploreOptions["run"];
  bound: number;
  seed: number;
  items: readonly WorkItem[];
  /** The items' indices in the order the threads take them (claimOrder). */
  order: readonly number[];
  /** Int32 [NEXT, STOP]. */
  shared: SharedArrayBuffer;
}

/** A message to a worker: a search to take items of (the pool ends its workers with terminate()). */
export type WorkerMessage = { job: WorkerJob };

/** A message from a worker: an item's result, or that it can take no more. */
export type WorkerReply = { index: number; result: ItemResult } | { idle: true };

/**
 * The order the threads take a search's items in: the first (the default schedule's subtree, where a failure
 * is most often found first), then the others largest first by their estimated size (DfsItem.size), so that
 * the large subtrees start early and the small ones fill the end; in search order among equals.
 */
export function claimOrder(items: readonly WorkItem[]): number[] {
  const size = (i: number) => {
    const it = items[i]!;
    return it.kind === "dfs" ? (it.item.size ?? 0) : 0;
  };
  const rest = items.map((_, i) => i).slice(1);
  rest.sort((a, b) => size(b) - size(a) || a - b);
  return items.length === 0 ? [] : [0, ...rest];
}

/** Claims the next item of a search in `order`: its index, or -1 when none is left to take (none, or all after the first failing one). */
export function claim(counters: Int32Array, order: readonly number[]): number {
  for (;;) {
    const k = Atomics.add(counters, NEXT, 1);
    if (k >= order.length) return -1;
    const index = order[k]!;
    if (index <= Atomics.load(counters, STOP)) return index;
  }
}

/** Records an item's result in the counters: a failing item lowers STOP. */
export function settle(counters: Int32Array, index: number, r: ItemResult): void {
  if (r.found === null) return;
  for (let cur = Atomics.load(counters, STOP); index < cur; cur = Atomics.load(counters, STOP)) {
    if (Atomics.compareExchange(counters, STOP, cur, index) === cur) return;
  }
}

/** Runs item `index` of a job in this thread, stopping early once an earlier item has failed. */
export function runClaimed(job: Omit<WorkerJob, "shared">, counters: Int32Array, index: number): ItemResult {
  return runItem(job.scenario, job.run, job.bound, job.seed, job.items[index]!, index === 0, () => Atomics.load(counters, STOP) < index);
}

/** A worker running the worker module beside this one (from the sources through tsx, which the worker registers first). */
function startWorker(): Worker {
  const here = import.meta.url;
  if (here.endsWith(".cjs")) return new Worker(new URL("./explore-worker.cjs", here));
  if (!here.endsWith(".ts")) return new Worker(new URL("./worker.js", here));
  // tsx/esm/api as an ES module (require.resolve finds its CommonJS twin).
  const tsx = pathToFileURL(createRequire(here).resolve("tsx/esm/api").replace(/\.cjs$/, ".mjs")).href;
  const main = new URL("./worker.ts", here).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(main)}); });`;
  return new Worker(boot, { eval: true });
}

export class WorkerPool {
  private readonly workers: Worker[] = [];
  /**
   * Set when a search failed with an error (its threads may still be running its items) or a worker died, in a
   * search or between two (a search would wait for it forever): the pool takes no more searches.
   */
  private broken: Error | null = null;
  private closing = false;

  /** `threads` search at once: this thread and `threads - 1` workers, started now. */
  constructor(readonly threads: number) {
    for (let k = 1; k < threads; k++) {
      const w = startWorker();
      w.unref();
      // Always listened to: an error with no listener would take the process down.
      w.on("error", (e) => (this.broken ??= e));
      w.once("exit", (code) => {
        if (!this.closing) this.broken ??= new Error(`an explorer worker exited (code ${code})`);
      });
      this.workers.push(w);
    }
  }

  /** Runs a search's items on this thread and the pool's workers. */
  run(s: Scenario, o: ExploreOptions, items: readonly WorkItem[], onResult: (i: number, r: ItemResult) => void): Promise<void> {
    if (this.broken !== null) return Promise.reject(new Error(`the explorer's worker pool is unusable after an earlier error: ${this.broken.message}`));
    return new Promise<void>((resolve, reject) => {
      const shared = new SharedArrayBuffer(8);
      const counters = new Int32Array(shared);
      counters[NEXT] = 0;
      counters[STOP] = items.length;
      const job: WorkerJob = { scenario: s, run: o.run, bound: o.bound, seed: o.random?.seed ?? 0, items, order: claimOrder(items), shared };
      const ws = this.workers.slice(0, Math.max(0, Math.min(this.workers.length, items.length - 1)));
      let running = ws.length + 1;
      let settled = false;
      const onMessage = (m: WorkerReply) => {
        if ("idle" in m) idle();
        else onResult(m.index, m.result);
      };
      const onError = (e: unknown) => finish(e);
      const onExit = (code: number) => finish(new Error(`an explorer worker exited (code ${code}) in the middle of a search`));
      const finish = (e?: unknown) => {
        if (settled) return;
        settled = true;
        for (const w of ws) w.off("message", onMessage).off("error", onError).off("exit", onExit);
        if (e === undefined) {
          resolve();
          return;
        }
        // Every thread stops at its next schedule and takes no more items; none of this search's messages may reach the next.
        Atomics.store(counters, STOP, -1);
        this.broken = e instanceof Error ? e : new Error(String(e));
        reject(this.broken);
      };
      const idle = () => {
        if (--running === 0) finish();
      };
      for (const w of ws) {
        w.on("message", onMessage).on("error", onError).on("exit", onExit);
        w.postMessage({ job } satisfies WorkerMessage);
      }
      // This thread takes items too, letting the workers' results in between.
      void (async () => {
        for (let index = claim(counters, job.order); index >= 0 && !settled; index = claim(counters, job.order)) {
          try {
            const r = runClaimed(job, counters, index);
            settle(counters, index, r);
            onResult(index, r);
          } catch (e) {
            finish(e);
            return;
          }
          await tick();
        }
        idle();
      })();
    });
  }

  close(): Promise<void> {
    this.closing = true;
    return Promise.all(this.workers.map((w) => w.terminate())).then(() => undefined);
  }
}

/**
 * A pool of `o.workers` threads (this one among them) for one search,
 * started now so that the workers load while the search is planned, and
 * closed after it.
 */
export function workerPool(s: Scenario, o: ExploreOptions): ItemRunner {
  const pool = new WorkerPool(Math.max(1, o.workers));
  return async (items, onResult) => {
    try {
      await pool.run(s, o, items, onResult);
    } finally {
      await pool.close();
    }
  };
}
