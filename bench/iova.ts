/**
 * IOVA allocator micro-benchmark: alloc+free pairs through the range cache
 * (the dma_map_page / dma_unmap_page hot path), the same pairs through the
 * tree alone at several occupancies, and tree allocations alone.
 *
 * Each figure is the median of five timed runs after a warm-up, with the best
 * run beside it (on a shared machine the best run is the steadier figure).
 * "GCs" counts garbage collections seen during the timed runs: the hot paths
 * allocate no JS objects, so it reads 0 there. With a 64-bit limit the pfns
 * exceed V8's small-integer range and come back as heap numbers, which
 * shows up as GCs on that line.
 *
 *   node --import tsx bench/iova.ts
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { initIovaDomain, type IovaDomain, type IovaNode } from "../src/dma/iova.ts";
import { isErr, type KError } from "../src/lib/errno.ts";
import { GcCounter, best, median } from "./stats.ts";

/** dma_mask 2^32 - 1 with 4 KiB granules. */
const LIMIT_32 = 0xf_ffff;
/** dma_mask 2^48 - 1: pfns above 2^31 are heap numbers in V8. */
const LIMIT_64 = 2 ** 36 - 1;
const RUNS = 5;

export async function benchIova(log: (line: string) => void): Promise<void> {
  const gc = await GcCounter.start();
  try {
    log("IOVA allocator (4 KiB granule, limit 4 GiB, 1 CPU)");

    const hot = newDomain(1);
    hot.freeIovaFast(hot.allocIovaFast(1, LIMIT_32, true), 1);
    await report(log, gc, "allocIovaFast+freeIovaFast, 1 granule, cache hot", 2_000_000, (n) => {
      for (let i = 0; i < n; i++) hot.freeIovaFast(hot.allocIovaFast(1, LIMIT_32, true), 1);
    });

    const hot64 = newDomain(1);
    hot64.freeIovaFast(hot64.allocIovaFast(1, LIMIT_64, true), 1);
    await report(log, gc, "allocIovaFast+freeIovaFast, 1 granule, cache hot, 64-bit limit", 2_000_000, (n) => {
      for (let i = 0; i < n; i++) hot64.freeIovaFast(hot64.allocIovaFast(1, LIMIT_64, true), 1);
    });

    const ring = newDomain(1);
    const inFlight = new Float64Array(64);
    await report(log, gc, "allocIovaFast+freeIovaFast, 1 granule, 64 in flight", 2_000_000, (n) => {
      for (let i = 0; i < n; i += 64) {
        for (let j = 0; j < 64; j++) inFlight[j] = ring.allocIovaFast(1, LIMIT_32, true);
        for (let j = 0; j < 64; j++) ring.freeIovaFast(inFlight[j]!, 1);
      }
    });

    for (const occupancy of [1_000, 64_000, 512_000]) {
      const d = newDomain(1);
      for (let i = 0; i < occupancy; i++) must(d.allocIova(1, LIMIT_32, true));
      await report(log, gc, `allocIova+freeIova (tree only), ${occupancy} ranges live`, 1_000_000, (n) => {
        for (let i = 0; i < n; i++) d.freeIova(d.pfnLo(must(d.allocIova(1, LIMIT_32, true))));
      });
    }

    const fills: number[] = [];
    let live = 0;
    for (let run = 0; run < RUNS; run++) {
      const d = newDomain(1);
      const t0 = performance.now();
      for (let i = 0; i < 64_000; i++) must(d.allocIova(1, LIMIT_32, true));
      fills.push(((performance.now() - t0) * 1e6) / 64_000);
      live = d.treeNodesLive;
    }
    log(line("allocIova alone, filling 0 -> 64000 ranges", fills, `${live} live`));
  } finally {
    gc.stop();
  }
}

function newDomain(nrCpus: number): IovaDomain {
  const d = initIovaDomain(4096, 1, { nrCpus });
  if (isErr(d)) throw new Error(String(d));
  return d;
}

/** The node, or a throw: a plain typeof test, so the check costs nothing next to the allocator. */
function must(x: IovaNode | KError): IovaNode {
  if (typeof x !== "number") throw new Error(String(x));
  return x;
}

/** Times `pairs(n)` (n alloc+free pairs) over RUNS runs after a warm-up. */
async function report(
  log: (line: string) => void,
  gc: GcCounter,
  label: string,
  n: number,
  pairs: (n: number) => void,
): Promise<void> {
  pairs(n / 4);
  const before = await gc.count();
  const ns: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const t0 = performance.now();
    pairs(n);
    ns.push(((performance.now() - t0) * 1e6) / n);
  }
  const gcs = (await gc.count()) - before;
  log(line(label, ns, `${(1e3 / median(ns)).toFixed(2)} M pairs/s, GCs ${gcs}`));
}

function line(label: string, ns: number[], extra: string): string {
  const fastest = best(ns).toFixed(1);
  return `  ${label.padEnd(64)} ${median(ns).toFixed(1).padStart(7)} ns (best ${fastest.padStart(6)})  ${extra}`;
}


if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await benchIova((l) => console.log(l));
}
