/**
 * A worker thread of `explore` (pool.ts): takes a search, then runs the
 * items it is handed, one at a time, posting each result; null ends it.
 */
import { parentPort } from "node:worker_threads";
import { runItem } from "./explore.ts";
import type { WorkerJob, WorkerMessage } from "./pool.ts";

const port = parentPort!;
let job: WorkerJob | null = null;
let stop: Int32Array<ArrayBufferLike> = new Int32Array(1);

port.on("message", (m: WorkerMessage) => {
  if (m === null) {
    port.close();
    return;
  }
  if ("job" in m) {
    job = m.job;
    stop = new Int32Array(job.stop);
    return;
  }
  const j = job!;
  const index = m.index;
  const result = runItem(j.scenario, j.run, j.bound, j.seed, m.item, index === 0, () => Atomics.load(stop, 0) < index);
  port.postMessage({ index, result });
});
