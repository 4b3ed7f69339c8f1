/**
 * Worker threads for `explore`: every item of the search (explore.ts) goes
 * to the next idle worker, in search order; once an item fails, items after
 * it are no longer handed out and the workers running one stop at their next
 * schedule (a shared flag), while items before it run to their end, so the
 * result is the one a single thread gives.
 *
 * The worker's module sits beside this one: worker.ts run through tsx from
 * the sources, worker.js in the built library, explore-worker.cjs beside the
 * bundled command line (scripts/build.js). A pool can serve several searches
 * (the benchmark keeps one warm).
 */
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { Scenario } from "../scenario/schema.ts";
import type { ItemResult } from "./dfs.ts";
import type { ExploreOptions, ItemRunner, WorkItem } from "./explore.ts";

/** What a worker is given for a search. */
export interface WorkerJob {
  scenario: Scenario;
  run: ExploreOptions["run"];
  bound: number;
  seed: number;
  /** Int32 [0]: the index of the first failing item so far (items after it stop). */
  stop: SharedArrayBuffer;
}

/** A message to a worker: a new search, an item of it, or the end. */
export type WorkerMessage = { job: WorkerJob } | { index: number; item: WorkItem } | null;

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

  constructor(readonly size: number) {
    for (let k = 0; k < size; k++) {
      const w = startWorker();
      w.unref();
      this.workers.push(w);
    }
  }

  /** Runs a search's items on the pool. */
  run(s: Scenario, o: ExploreOptions, items: readonly WorkItem[], onResult: (i: number, r: ItemResult) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const stopBuf = new SharedArrayBuffer(4);
      const stop = new Int32Array(stopBuf);
      stop[0] = items.length;
      const job: WorkerJob = { scenario: s, run: o.run, bound: o.bound, seed: o.random?.seed ?? 0, stop: stopBuf };
      const ws = this.workers.slice(0, Math.max(1, Math.min(this.workers.length, items.length)));
      let next = 0;
      let busy = 0;
      let settled = false;
      const cleanup = () => {
        for (const w of ws) {
          w.removeAllListeners("message");
          w.removeAllListeners("error");
        }
      };
      const give = (w: Worker) => {
        if (next < items.length && next <= Atomics.load(stop, 0)) {
          const index = next++;
          busy++;
          w.postMessage({ index, item: items[index]! } satisfies WorkerMessage);
        }
        if (busy === 0 && !settled) {
          settled = true;
          cleanup();
          resolve();
        }
      };
      for (const w of ws) {
        w.on("message", (m: { index: number; result: ItemResult }) => {
          busy--;
          if (m.result.found !== null && m.index < Atomics.load(stop, 0)) Atomics.store(stop, 0, m.index);
          onResult(m.index, m.result);
          give(w);
        });
        w.on("error", (e) => {
          if (settled) return;
          settled = true;
          cleanup();
          reject(e);
        });
        w.postMessage({ job } satisfies WorkerMessage);
      }
      for (const w of ws) give(w);
    });
  }

  close(): Promise<void> {
    return Promise.all(this.workers.map((w) => w.terminate())).then(() => undefined);
  }
}

/** A pool of `o.workers` threads for one search, closed after it. */
export function workerPool(s: Scenario, o: ExploreOptions): ItemRunner {
  return async (items, onResult) => {
    const pool = new WorkerPool(Math.max(1, Math.min(o.workers, items.length)));
    try {
      await pool.run(s, o, items, onResult);
    } finally {
      await pool.close();
    }
  };
}
