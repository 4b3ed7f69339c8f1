/**
 * Page-table micro-benchmark: Arm LPAE stage 1, 4K granule, ias = oas = 48,
 * IOVA base 4 GiB, PA base 256 GiB, prot RW, no-op TLB callbacks: the
 * configuration of the user-space harness that measured the kernel's
 * io-pgtable-arm.c on this machine (pgtable-and-perf reference, section 9),
 * so the figures can be read side by side. See docs/pgtable.md for why the
 * model is slower.
 *
 * Each figure is the median of five timed runs after a warm-up run, with the
 * best run beside it. Beside each: the C figure measured on this machine, and
 * the goal (within 2x of it). "GCs" counts garbage collections during the
 * timed runs (setup excluded): the hot paths allocate no JS objects per
 * operation; what remains is table memory (a fresh table's pool grows by
 * doubling its typed array) and V8 boxing doubles passed to calls it does
 * not inline.
 *
 *   node --import tsx bench/pgtable.ts
 */
import { PerformanceObserver, performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { isErr } from "../src/lib/errno.ts";
import { newIommuIotlbGather } from "../src/pgtable/gather.ts";
import { allocArmLpaePgtable, type ArmLpaeIoPgtable } from "../src/pgtable/lpae.ts";
import { SZ_1G, SZ_2M, SZ_4K, bitmapOf } from "../src/pgtable/sizes.ts";
import { IOMMU_READ, IOMMU_WRITE, type IommuFlushOps } from "../src/pgtable/types.ts";

const IOVA = 4 * SZ_1G;
const PA = 256 * SZ_1G;
const PROT = IOMMU_READ | IOMMU_WRITE;
const PAGES_4K = SZ_1G / SZ_4K;
const BLOCKS_2M = SZ_1G / SZ_2M;
const LOOKUPS = 1_000_000;
const RUNS = 5;
const WARMUP_RUNS = 2;
/** A timed run covers at least this many operations. */
const MIN_OPS_PER_RUN = 32768;

/** Callbacks that do nothing, as in the C harness; tlb_add_page is present so strict unmap calls it. */
const TLB: IommuFlushOps = {
  tlbFlushAll() {},
  tlbFlushWalk() {},
  tlbAddPage() {},
};

function fresh(): ArmLpaeIoPgtable {
  const ops = allocArmLpaePgtable("ARM_64_LPAE_S1", { pgsizeBitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias: 48, oas: 48, tlb: TLB });
  if (isErr(ops)) throw new Error(ops.toString());
  return ops;
}

/** The `size_t *mapped` out-parameter, reused by every call (the core zeroes it per call too). */
const mapped = { bytes: 0 };

function check(ret: unknown): void {
  if (ret !== 0) throw new Error(`map failed: ${String(ret)}`);
}

/* The operations, each over 1 GiB. */

function map4kSingle(ops: ArmLpaeIoPgtable): void {
  for (let i = 0; i < PAGES_4K; i++) {
    mapped.bytes = 0;
    check(ops.mapPages(IOVA + i * SZ_4K, PA + i * SZ_4K, SZ_4K, 1, PROT, mapped));
  }
}

/** The core's loop: each call maps what is left, and the table stops it at the end of a leaf table. */
function map4kBatched(ops: ArmLpaeIoPgtable): void {
  let done = 0;
  while (done < SZ_1G) {
    mapped.bytes = 0;
    check(ops.mapPages(IOVA + done, PA + done, SZ_4K, (SZ_1G - done) / SZ_4K, PROT, mapped));
    done += mapped.bytes;
  }
}

function map2mSingle(ops: ArmLpaeIoPgtable): void {
  for (let i = 0; i < BLOCKS_2M; i++) {
    mapped.bytes = 0;
    check(ops.mapPages(IOVA + i * SZ_2M, PA + i * SZ_2M, SZ_2M, 1, PROT, mapped));
  }
}

function map2mBatched(ops: ArmLpaeIoPgtable): void {
  mapped.bytes = 0;
  check(ops.mapPages(IOVA, PA, SZ_2M, BLOCKS_2M, PROT, mapped));
}

const strict = newIommuIotlbGather(false);

function unmap4kSingle(ops: ArmLpaeIoPgtable): void {
  for (let i = 0; i < PAGES_4K; i++) if (ops.unmapPages(IOVA + i * SZ_4K, SZ_4K, 1, strict) !== SZ_4K) throw new Error("unmap failed");
}

function unmap4kBatched(ops: ArmLpaeIoPgtable): void {
  let done = 0;
  while (done < SZ_1G) {
    const n = ops.unmapPages(IOVA + done, SZ_4K, (SZ_1G - done) / SZ_4K, strict);
    if (n === 0) throw new Error("unmap failed");
    done += n;
  }
}

function unmap2mSingle(ops: ArmLpaeIoPgtable): void {
  for (let i = 0; i < BLOCKS_2M; i++) if (ops.unmapPages(IOVA + i * SZ_2M, SZ_2M, 1, strict) !== SZ_2M) throw new Error("unmap failed");
}

function unmap2mBatched(ops: ArmLpaeIoPgtable): void {
  if (ops.unmapPages(IOVA, SZ_2M, BLOCKS_2M, strict) !== SZ_1G) throw new Error("unmap failed");
}

let sink = 0;

function lookups(ops: ArmLpaeIoPgtable, iovas: Float64Array): void {
  let acc = 0;
  for (let i = 0; i < iovas.length; i++) acc += ops.iovaToPhys(iovas[i]!);
  sink += acc;
}

interface Case {
  label: string;
  /** Operations per run, the divisor of the run time. */
  perRun: number;
  unit: string;
  /** C io-pgtable-arm on this machine (ns), and the goal. */
  c: string;
  goal: number;
  /** Builds the untimed starting state of one run. */
  setup: () => ArmLpaeIoPgtable;
  run: (ops: ArmLpaeIoPgtable) => void;
}

export async function benchPgtable(log: (line: string) => void): Promise<void> {
  const gc = await GcCounter.start();
  try {
    log("io-pgtable-arm model: ARM_64_LPAE_S1, 4K granule, ias = oas = 48, IOVA 4 GiB, PA 256 GiB, 1 GiB per run");
    log(`  ${"operation".padEnd(58)} ${"median".padStart(8)} ${"best".padStart(7)}   ${"C".padStart(5)}  ${"goal".padStart(5)}  GCs`);

    const mapped4k = (): ArmLpaeIoPgtable => {
      const ops = fresh();
      map4kBatched(ops);
      return ops;
    };
    const mapped2m = (): ArmLpaeIoPgtable => {
      const ops = fresh();
      map2mBatched(ops);
      return ops;
    };
    const emptyTables = (): ArmLpaeIoPgtable => {
      const ops = mapped4k();
      unmap4kBatched(ops);
      return ops;
    };

    const cases: Case[] = [
      { label: "map 4K, one map_pages(pgcount 1) per page, fresh table", perRun: PAGES_4K, unit: "page", c: "15", goal: 30, setup: fresh, run: map4kSingle },
      { label: "map 4K, one call per page, into existing empty tables", perRun: PAGES_4K, unit: "page", c: "10", goal: 20, setup: emptyTables, run: map4kSingle },
      { label: "map 4K with pgcount (core loop, <= 1 table per call)", perRun: PAGES_4K, unit: "page", c: "6", goal: 12, setup: fresh, run: map4kBatched },
      { label: "map 2M blocks, one call per block", perRun: BLOCKS_2M, unit: "block", c: "10", goal: 20, setup: fresh, run: map2mSingle },
      { label: "map 2M blocks, one call for all 512", perRun: BLOCKS_2M, unit: "block", c: "1.4", goal: 3, setup: fresh, run: map2mBatched },
      { label: "unmap 4K, one call per page, strict gather (tlb_add_page)", perRun: PAGES_4K, unit: "page", c: "10", goal: 20, setup: mapped4k, run: unmap4kSingle },
      { label: "unmap 4K batched (core loop)", perRun: PAGES_4K, unit: "page", c: "<2", goal: 4, setup: mapped4k, run: unmap4kBatched },
      { label: "unmap 2M blocks, one call per block", perRun: BLOCKS_2M, unit: "block", c: "9.5", goal: 19, setup: mapped2m, run: unmap2mSingle },
      { label: "unmap 2M blocks, one call for all 512", perRun: BLOCKS_2M, unit: "block", c: "1.9", goal: 4, setup: mapped2m, run: unmap2mBatched },
    ];
    for (const c of cases) {
      const ns = await timeRuns(gc, c.perRun, c.setup, c.run);
      log(row(`${c.label} (ns/${c.unit})`, ns.times, c.c, c.goal, ns.gcs));
    }

    const iovas = new Float64Array(LOOKUPS);
    let seed = 0x2545f491;
    for (let i = 0; i < LOOKUPS; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      iovas[i] = IOVA + (seed % (SZ_1G / 8)) * 8;
    }
    const t4k = mapped4k();
    const l4k = await timeRuns(gc, LOOKUPS, () => t4k, (ops) => lookups(ops, iovas));
    log(row("iova_to_phys, 1M random iovas, 4K-mapped GiB (ns/lookup)", l4k.times, "19", 40, l4k.gcs));
    const t2m = mapped2m();
    const l2m = await timeRuns(gc, LOOKUPS, () => t2m, (ops) => lookups(ops, iovas));
    log(row("iova_to_phys, 1M random iovas, 2M-mapped GiB (ns/lookup)", l2m.times, "12.6", 25, l2m.gcs));
    if (sink === 0) log("  (no lookup translated anything?)");

    const base = fresh().tableBytes();
    log(`  page-table bytes per mapped GiB: 4K pages ${t4k.tableBytes() - base} (${t4k.tablePages() - 1} tables + the pgd), 2M blocks ${t2m.tableBytes() - base} (${t2m.tablePages() - 1} tables + the pgd); pgd ${base}`);
  } finally {
    gc.stop();
  }
}

/**
 * Untimed warm-up runs, then RUNS timed runs. A run repeats `run` on `reps`
 * states built by setup() (untimed), so that short cases (512 blocks) still
 * time enough operations for the JIT and the clock.
 */
async function timeRuns(
  gc: GcCounter,
  perRun: number,
  setup: () => ArmLpaeIoPgtable,
  run: (ops: ArmLpaeIoPgtable) => void,
): Promise<{ times: number[]; gcs: number }> {
  const reps = Math.max(1, Math.round(MIN_OPS_PER_RUN / perRun));
  for (let r = 0; r < reps * WARMUP_RUNS; r++) run(setup());
  const times: number[] = [];
  let gcs = 0;
  for (let r = 0; r < RUNS; r++) {
    const states: ArmLpaeIoPgtable[] = [];
    for (let k = 0; k < reps; k++) states.push(setup());
    const before = await gc.count();
    let ms = 0;
    for (const ops of states) {
      const t0 = performance.now();
      run(ops);
      ms += performance.now() - t0;
    }
    times.push((ms * 1e6) / (perRun * reps));
    gcs += (await gc.count()) - before;
  }
  return { times, gcs };
}

function row(label: string, ns: number[], c: string, goal: number, gcs: number): string {
  const med = median(ns);
  const mark = med <= goal ? "ok" : "OVER";
  return `  ${label.padEnd(58)} ${med.toFixed(1).padStart(8)} ${Math.min(...ns).toFixed(1).padStart(7)}   ${c.padStart(5)}  ${String(goal).padStart(5)}  ${String(gcs).padStart(3)}  ${mark}`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Counts garbage collections reported by perf_hooks (delivered asynchronously). */
class GcCounter {
  private seen = 0;
  private constructor(private readonly obs: PerformanceObserver) {}

  static async start(): Promise<GcCounter> {
    let counter: GcCounter | null = null;
    const obs = new PerformanceObserver((list) => {
      if (counter !== null) counter.seen += list.getEntries().length;
    });
    counter = new GcCounter(obs);
    obs.observe({ entryTypes: ["gc"] });
    await settle();
    return counter;
  }

  async count(): Promise<number> {
    await settle();
    return this.seen;
  }

  stop(): void {
    this.obs.disconnect();
  }
}

function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await benchPgtable((l) => console.log(l));
}
