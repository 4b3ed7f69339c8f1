/**
 * A worker thread of `explore` (pool.ts): given a search, takes its items
 * one at a time through the shared counter, posting each result, until
 * none is left; then it waits for the next search.
 */
import { parentPort } from "node:worker_threads";
import { claim, runClaimed, settle, type WorkerMessage, type WorkerReply } from "./pool.ts";

const port = parentPort!;

port.on("message", ({ job }: WorkerMessage) => {
  const counters = new Int32Array(job.shared);
  for (let index = claim(counters, job.order); index >= 0; index = claim(counters, job.order)) {
    const result = runClaimed(job, counters, index);
    settle(counters, index, result);
    port.postMessage({ index, result } satisfies WorkerReply);
  }
  port.postMessage({ idle: true } satisfies WorkerReply);
});
