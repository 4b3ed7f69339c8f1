/**
 * Page-table micro-benchmark.
 *
 * Arm LPAE stage 1, 4K granule, ias = oas = 48, IOVA base 4 GiB, PA base
 * 256 GiB, prot RW, no-op TLB callbacks: the configuration of a user-space
 * build of the kernel's io-pgtable-arm.c that runs the same loops, so the
 * figures can be compared. The VT-d second stage (same addresses, 48-bit,
 * 4K|2M|1G) and the iommufd mock (2 KiB pages, IOVAs in its aperture from
 * 16 MiB) get the operations the IOMMU core drives most: one 4K page
 * mapped, a range mapped with pgcount, one 4K page unmapped, a range
 * unmapped, a lookup. No C figure exists for those two; their goals are
 * the Arm ones.
 *
 * With IOMMU_SIM_C_PGTABLE naming that C build (docs/performance.md says
 * how it is made; it is not part of the repository), each Arm row runs
 * ROUNDS rounds of the C program's runs of the same loop and then the
 * model's, and prints the medians of the round medians and their ratio
 * against RATIO_GOAL. Without it, each row prints the model's median and
 * best run beside the C figure measured once on this machine.
 *
 * Every case runs once, untimed, before anything is timed, so that V8 has
 * seen every path (as it would in a simulator doing all of them) and the
 * deoptimisations that brings happen outside the timings. Then each case
 * runs untimed for WARMUP_MS (V8 keeps re-optimising the code a case uses
 * for a while: without this a short case's first dozen runs were 1.5x
 * slower than the rest), then RUNS timed runs. Times are CPU time of the
 * process (the machine is shared: wall-clock time would count the time
 * spent waiting for a CPU); the C program times itself the same way. Also
 * printed: the number of garbage collections during the timed runs (the
 * hot paths allocate nothing per operation; a GC there means boxed doubles
 * or table memory growing) and the minor page faults taken inside the
 * timed code (first touches of new memory, which this virtual machine
 * makes expensive). Each run builds its tables untimed and frees them
 * afterwards, so the memory of a "fresh table" is recycled from the
 * previous run, as a kernel page allocator would hand back pages, rather
 * than new pages the process faults in on first touch.
 *
 *   node --import tsx bench/pgtable.ts
 *   IOMMU_SIM_C_PGTABLE=/path/to/pgtable-bench npm run bench -- pgtable
 */
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { isErr, type KError } from "../src/lib/errno.ts";
import { iommuIotlbGatherInit, newIommuIotlbGather } from "../src/pgtable/gather.ts";
import { allocArmLpaePgtable, type ArmLpaeIoPgtable } from "../src/pgtable/lpae.ts";
import { MOCK_APERTURE_START, MOCK_IO_PAGE_SIZE, allocMockPgtable, type MockIoPgtable } from "../src/pgtable/mock.ts";
import { SZ_1G, SZ_2M, SZ_4K, bitmapOf } from "../src/pgtable/sizes.ts";
import { IOMMU_READ, IOMMU_WRITE, type IommuFlushOps } from "../src/pgtable/types.ts";
import { allocVtdssPgtable, type VtdssIoPgtable } from "../src/pgtable/vtdss.ts";
import { GcCounter, best, cpuMs, median } from "./stats.ts";

const IOVA = 4 * SZ_1G;
const PA = 256 * SZ_1G;
const MOCK_IOVA = MOCK_APERTURE_START;
const PROT = IOMMU_READ | IOMMU_WRITE;
const PAGES_4K = SZ_1G / SZ_4K;
const BLOCKS_2M = SZ_1G / SZ_2M;
const MOCK_PAGES = SZ_1G / MOCK_IO_PAGE_SIZE;
const LOOKUPS = 1_000_000;
const RUNS = 9;
/** Untimed runs of a case before its timed ones: at least this long (V8 re-optimises for a while after a case starts)... */
const WARMUP_MS = 150;
/** ...and at least this many. */
const WARMUP_RUNS = 3;
/** A timed run covers at least this many operations (several tables for the short cases). */
const MIN_OPS_PER_RUN = 32768;

/** Callbacks that do nothing, as in the C harness; tlb_add_page is present so strict unmap calls it. */
const TLB: IommuFlushOps = {
  tlbFlushAll() {},
  tlbFlushWalk() {},
  tlbAddPage() {},
};

function must<T>(x: T | KError): T {
  if (isErr(x)) throw new Error(x.toString());
  return x;
}

function arm(): ArmLpaeIoPgtable {
  return must(allocArmLpaePgtable("ARM_64_LPAE_S1", { pgsizeBitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias: 48, oas: 48, tlb: TLB }));
}

function vtdss(): VtdssIoPgtable {
  return must(allocVtdssPgtable({ pgsizeBitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias: 48, oas: 48, tlb: TLB }));
}

function mock(): MockIoPgtable {
  return must(allocMockPgtable({ pgsizeBitmap: MOCK_IO_PAGE_SIZE, ias: 64, oas: 64, tlb: TLB }));
}

/** The `size_t *mapped` out-parameter, reused by every call (the core zeroes it per call too). */
const mapped = { bytes: 0 };
/** A strict gather: io-pgtable-arm calls tlb_add_page per unmapped entry; generic_pt adds the range. */
const strict = newIommuIotlbGather(false);

function check(ret: unknown): void {
  if (ret !== 0) throw new Error(`map failed: ${String(ret)}`);
}

function unmapped(n: number, want: number): void {
  if (n !== want) throw new Error(`unmap returned ${n}, not ${want}`);
}

/*
 * The operations, each over 1 GiB. Every format has its own functions so
 * that each call site sees one class, as a driver's would.
 */

function armMap4kSingle(ops: ArmLpaeIoPgtable): void {
  for (let i = 0; i < PAGES_4K; i++) {
    mapped.bytes = 0;
    check(ops.mapPages(IOVA + i * SZ_4K, PA + i * SZ_4K, SZ_4K, 1, PROT, mapped));
  }
}

/** The core's loop: each call maps what is left, and the table stops it at the end of a leaf table. */
function armMap4kBatched(ops: ArmLpaeIoPgtable): void {
  let done = 0;
  while (done < SZ_1G) {
    mapped.bytes = 0;
    check(ops.mapPages(IOVA + done, PA + done, SZ_4K, (SZ_1G - done) / SZ_4K, PROT, mapped));
    done += mapped.bytes;
  }
}

function armMap2mSingle(ops: ArmLpaeIoPgtable): void {
  for (let i = 0; i < BLOCKS_2M; i++) {
    mapped.bytes = 0;
    check(ops.mapPages(IOVA + i * SZ_2M, PA + i * SZ_2M, SZ_2M, 1, PROT, mapped));
  }
}

function armMap2mBatched(ops: ArmLpaeIoPgtable): void {
  mapped.bytes = 0;
  check(ops.mapPages(IOVA, PA, SZ_2M, BLOCKS_2M, PROT, mapped));
}

function armUnmap4kSingle(ops: ArmLpaeIoPgtable): void {
  for (let i = 0; i < PAGES_4K; i++) unmapped(ops.unmapPages(IOVA + i * SZ_4K, SZ_4K, 1, strict), SZ_4K);
}

function armUnmap4kBatched(ops: ArmLpaeIoPgtable): void {
  let done = 0;
  while (done < SZ_1G) {
    const n = ops.unmapPages(IOVA + done, SZ_4K, (SZ_1G - done) / SZ_4K, strict);
    if (n === 0) throw new Error("unmap failed");
    done += n;
  }
}

function armUnmap2mSingle(ops: ArmLpaeIoPgtable): void {
  for (let i = 0; i < BLOCKS_2M; i++) unmapped(ops.unmapPages(IOVA + i * SZ_2M, SZ_2M, 1, strict), SZ_2M);
}

function armUnmap2mBatched(ops: ArmLpaeIoPgtable): void {
  unmapped(ops.unmapPages(IOVA, SZ_2M, BLOCKS_2M, strict), SZ_1G);
}

function armMapped4k(): ArmLpaeIoPgtable {
  const ops = arm();
  armMap4kBatched(ops);
  return ops;
}

function armMapped2m(): ArmLpaeIoPgtable {
  const ops = arm();
  armMap2mBatched(ops);
  return ops;
}

function armEmptyTables(): ArmLpaeIoPgtable {
  const ops = armMapped4k();
  armUnmap4kBatched(ops);
  return ops;
}

function vtdssMap4kSingle(ops: VtdssIoPgtable): void {
  for (let i = 0; i < PAGES_4K; i++) {
    mapped.bytes = 0;
    check(ops.mapPages(IOVA + i * SZ_4K, PA + i * SZ_4K, SZ_4K, 1, PROT, mapped));
  }
}

/**
 * One call for the whole GiB: generic_pt maps any range in one call, with
 * the largest leaves the addresses allow. The PA is 4K past a 2M boundary,
 * so that those are 4K pages (the core's iommu_pgsize then asks for 4K
 * pages too, all of them in one call).
 */
function vtdssMap4kBatched(ops: VtdssIoPgtable): void {
  mapped.bytes = 0;
  check(ops.mapPages(IOVA, PA + SZ_4K, SZ_4K, PAGES_4K, PROT, mapped));
}

function vtdssUnmap4kSingle(ops: VtdssIoPgtable): void {
  for (let i = 0; i < PAGES_4K; i++) unmapped(ops.unmapPages(IOVA + i * SZ_4K, SZ_4K, 1, strict), SZ_4K);
}

/** One call; the leaf tables it empties completely go on the gather's free list. */
function vtdssUnmap4kBatched(ops: VtdssIoPgtable): void {
  unmapped(ops.unmapPages(IOVA, SZ_4K, PAGES_4K, strict), SZ_1G);
}

function vtdssMapped4k(): VtdssIoPgtable {
  const ops = vtdss();
  vtdssMap4kBatched(ops);
  return ops;
}

/** One 4K page is two 2 KiB mock pages: pgsize 2K, pgcount 2, as iommu_pgsize would ask. */
function mockMap4kSingle(ops: MockIoPgtable): void {
  for (let i = 0; i < PAGES_4K; i++) {
    mapped.bytes = 0;
    check(ops.mapPages(MOCK_IOVA + i * SZ_4K, PA + i * SZ_4K, MOCK_IO_PAGE_SIZE, 2, PROT, mapped));
  }
}

function mockMap4kBatched(ops: MockIoPgtable): void {
  mapped.bytes = 0;
  check(ops.mapPages(MOCK_IOVA, PA, MOCK_IO_PAGE_SIZE, MOCK_PAGES, PROT, mapped));
}

function mockUnmap4kSingle(ops: MockIoPgtable): void {
  for (let i = 0; i < PAGES_4K; i++) unmapped(ops.unmapPages(MOCK_IOVA + i * SZ_4K, MOCK_IO_PAGE_SIZE, 2, strict), SZ_4K);
}

function mockUnmap4kBatched(ops: MockIoPgtable): void {
  unmapped(ops.unmapPages(MOCK_IOVA, MOCK_IO_PAGE_SIZE, MOCK_PAGES, strict), SZ_1G);
}

function mockMapped(): MockIoPgtable {
  const ops = mock();
  mockMap4kBatched(ops);
  return ops;
}

/** Mapped 4K at a time: the mock WARNs about an unmap that does not start and end where a map did. */
function mockMapped4kPages(): MockIoPgtable {
  const ops = mock();
  mockMap4kSingle(ops);
  return ops;
}

/** Random 8-byte-aligned offsets in 1 GiB (the C harness's lookups), and the same rounded to 2 KiB for the mock. */
const offsets = new Float64Array(LOOKUPS);
const mockOffsets = new Float64Array(LOOKUPS);
{
  let seed = 0x2545f491;
  for (let i = 0; i < LOOKUPS; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    offsets[i] = (seed % (SZ_1G / 8)) * 8;
    mockOffsets[i] = offsets[i]! - (offsets[i]! % MOCK_IO_PAGE_SIZE);
  }
}

let sink = 0;
/** Minor page faults inside the timed code, summed over a case's timed runs. */
let faults = 0;

function armLookups(ops: ArmLpaeIoPgtable): void {
  let acc = 0;
  for (let i = 0; i < LOOKUPS; i++) acc += ops.iovaToPhys(IOVA + offsets[i]!);
  sink += acc;
}

function vtdssLookups(ops: VtdssIoPgtable): void {
  let acc = 0;
  for (let i = 0; i < LOOKUPS; i++) acc += ops.iovaToPhys(IOVA + offsets[i]!);
  sink += acc;
}

function mockLookups(ops: MockIoPgtable): void {
  let acc = 0;
  for (let i = 0; i < LOOKUPS; i++) acc += ops.iovaToPhys(MOCK_IOVA + mockOffsets[i]!);
  sink += acc;
}

interface CaseSpec<T> {
  label: string;
  /** Operations per run, the divisor of the run time. */
  perRun: number;
  unit: string;
  /** The kernel's io-pgtable-arm.c built as a user-space program, on this machine (CPU ns, median), "-" if none. */
  c: string;
  /** The C harness's name for the same loop (IOMMU_SIM_C_PGTABLE), Arm rows only. */
  cCase?: string;
  goal: number;
  /** Builds the untimed starting state of one run. */
  setup: () => T;
  run: (ops: T) => void;
}

interface Case {
  readonly label: string;
  readonly c: string;
  readonly cCase: string | undefined;
  readonly goal: number;
  /** One run: set up, time, tear down; ns per operation. */
  once(): number;
}

function makeCase<T extends { free(): void }>(spec: CaseSpec<T>): Case {
  const reps = Math.max(1, Math.round(MIN_OPS_PER_RUN / spec.perRun));
  return {
    label: `${spec.label} (ns/${spec.unit})`,
    c: spec.c,
    cCase: spec.cCase,
    goal: spec.goal,
    once(): number {
      const states: T[] = [];
      for (let k = 0; k < reps; k++) states.push(spec.setup());
      const f0 = process.resourceUsage().minorPageFault;
      const t0 = cpuMs();
      for (const ops of states) spec.run(ops);
      const ms = cpuMs() - t0;
      faults += process.resourceUsage().minorPageFault - f0;
      // Untimed: pages waiting in the gather, then the tables (their memory is reused by the next run).
      strict.freelist.put();
      iommuIotlbGatherInit(strict);
      for (const ops of states) ops.free();
      return (ms * 1e6) / (spec.perRun * reps);
    },
  };
}

const CASES: readonly (readonly [string, readonly Case[]])[] = [
  [
    "io-pgtable-arm model: ARM_64_LPAE_S1, 4K granule, ias = oas = 48, IOVA 4 GiB, PA 256 GiB, 1 GiB per run",
    [
      makeCase({ label: "map 4K, one map_pages(pgcount 1) per page, fresh table", perRun: PAGES_4K, unit: "page", c: "15.8", goal: 19, cCase: "map-4k-single", setup: arm, run: armMap4kSingle }),
      makeCase({ label: "map 4K, one call per page, into existing empty tables", perRun: PAGES_4K, unit: "page", c: "15.6", goal: 19, cCase: "map-4k-single-existing", setup: armEmptyTables, run: armMap4kSingle }),
      makeCase({ label: "map 4K with pgcount (core loop, <= 1 table per call)", perRun: PAGES_4K, unit: "page", c: "1.3", goal: 1.6, cCase: "map-4k-pgcount", setup: arm, run: armMap4kBatched }),
      makeCase({ label: "map 2M blocks, one call per block", perRun: BLOCKS_2M, unit: "block", c: "13.8", goal: 17, cCase: "map-2m-single", setup: arm, run: armMap2mSingle }),
      makeCase({ label: "map 2M blocks, one call for all 512", perRun: BLOCKS_2M, unit: "block", c: "1.9", goal: 2.3, cCase: "map-2m-batched", setup: arm, run: armMap2mBatched }),
      makeCase({ label: "unmap 4K, one call per page, strict gather (tlb_add_page)", perRun: PAGES_4K, unit: "page", c: "15.2", goal: 18, cCase: "unmap-4k-single", setup: armMapped4k, run: armUnmap4kSingle }),
      makeCase({ label: "unmap 4K batched (core loop)", perRun: PAGES_4K, unit: "page", c: "2.5", goal: 3, cCase: "unmap-4k-batched", setup: armMapped4k, run: armUnmap4kBatched }),
      makeCase({ label: "unmap 2M blocks, one call per block", perRun: BLOCKS_2M, unit: "block", c: "13.3", goal: 16, cCase: "unmap-2m-single", setup: armMapped2m, run: armUnmap2mSingle }),
      makeCase({ label: "unmap 2M blocks, one call for all 512", perRun: BLOCKS_2M, unit: "block", c: "2.8", goal: 3.4, cCase: "unmap-2m-batched", setup: armMapped2m, run: armUnmap2mBatched }),
      makeCase({ label: "iova_to_phys, 1M random iovas, 4K-mapped GiB", perRun: LOOKUPS, unit: "lookup", c: "27", goal: 32, cCase: "iova-to-phys-4k", setup: armMapped4k, run: armLookups }),
      makeCase({ label: "iova_to_phys, 1M random iovas, 2M-mapped GiB", perRun: LOOKUPS, unit: "lookup", c: "19.2", goal: 23, cCase: "iova-to-phys-2m", setup: armMapped2m, run: armLookups }),
    ],
  ],
  [
    "VT-d second stage (generic_pt vtdss), 4 levels, 4K|2M|1G, IOVA 4 GiB, PA 256 GiB, 1 GiB per run",
    [
      makeCase({ label: "map 4K, one map_pages(pgcount 1) per page, fresh table", perRun: PAGES_4K, unit: "page", c: "-", goal: 30, setup: vtdss, run: vtdssMap4kSingle }),
      makeCase({ label: "map 4K with pgcount (one call maps the GiB)", perRun: PAGES_4K, unit: "page", c: "-", goal: 12, setup: vtdss, run: vtdssMap4kBatched }),
      makeCase({ label: "unmap 4K, one call per page, strict gather", perRun: PAGES_4K, unit: "page", c: "-", goal: 20, setup: vtdssMapped4k, run: vtdssUnmap4kSingle }),
      makeCase({ label: "unmap 4K, one call for the GiB (tables to the gather)", perRun: PAGES_4K, unit: "page", c: "-", goal: 4, setup: vtdssMapped4k, run: vtdssUnmap4kBatched }),
      makeCase({ label: "iova_to_phys, 1M random iovas, 4K-mapped GiB", perRun: LOOKUPS, unit: "lookup", c: "-", goal: 40, setup: vtdssMapped4k, run: vtdssLookups }),
    ],
  ],
  [
    "iommufd selftest mock, 2 KiB pages, IOVA 16 MiB (aperture start), PA 256 GiB, 1 GiB per run",
    [
      makeCase({ label: "map 4K (2 x 2K), one call per 4K, fresh table", perRun: PAGES_4K, unit: "4K", c: "-", goal: 30, setup: mock, run: mockMap4kSingle }),
      makeCase({ label: "map with pgcount (one call maps the GiB)", perRun: PAGES_4K, unit: "4K", c: "-", goal: 12, setup: mock, run: mockMap4kBatched }),
      makeCase({ label: "unmap 4K (2 x 2K), one call per 4K", perRun: PAGES_4K, unit: "4K", c: "-", goal: 20, setup: mockMapped4kPages, run: mockUnmap4kSingle }),
      makeCase({ label: "unmap, one call for the GiB", perRun: PAGES_4K, unit: "4K", c: "-", goal: 4, setup: mockMapped, run: mockUnmap4kBatched }),
      makeCase({ label: "iova_to_phys, 1M random 2K-aligned iovas", perRun: LOOKUPS, unit: "lookup", c: "-", goal: 40, setup: mockMapped, run: mockLookups }),
    ],
  ],
];

/** The C harness (the kernel's io-pgtable-arm.c built as a user-space program), if the environment names one. */
const C_HARNESS = process.env.IOMMU_SIM_C_PGTABLE ?? "";
/** Rounds of C then TS per row when comparing. */
const ROUNDS = 5;
/** The goal when comparing: the model within this factor of C, as a ratio of medians measured in the same run. */
const RATIO_GOAL = 1.2;

/** RUNS timed runs of a case in the C harness (its own warm-up first); their median, ns per operation. */
function cMedian(cCase: string): number {
  const r = spawnSync(C_HARNESS, [cCase, String(RUNS)], { encoding: "utf8" });
  if (r.error !== undefined) throw new Error(`${C_HARNESS}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${C_HARNESS} ${cCase} exited with ${String(r.status)}: ${r.stderr.trim()}`);
  const ns = r.stdout.trim().split("\n").map(Number);
  if (ns.length !== RUNS || ns.some((x) => !(x > 0))) throw new Error(`${C_HARNESS} ${cCase} printed ${JSON.stringify(r.stdout)}`);
  return median(ns);
}

/** Untimed runs of a case until V8 has settled on its code. */
function warmUp(c: Case, minMs: number): void {
  const warmupEnd = performance.now() + minMs;
  for (let r = 0; r < WARMUP_RUNS || performance.now() < warmupEnd; r++) c.once();
}

export async function benchPgtable(log: (line: string) => void): Promise<void> {
  const gc = await GcCounter.start();
  try {
    // Every path once before anything is timed.
    for (const [, cases] of CASES) for (const c of cases) c.once();
    const compare = C_HARNESS !== "";
    if (compare) log(`C harness: ${C_HARNESS}; each Arm row runs ${ROUNDS} rounds of (C, then the model), ${RUNS} timed runs each; figures are medians of the round medians`);
    for (const [title, cases] of CASES) {
      log(title);
      const withC = compare && cases.some((c) => c.cCase !== undefined);
      if (withC) log(`  ${"operation".padEnd(66)} ${"C".padStart(6)} ${"model".padStart(6)}  ${"TS/C".padStart(5)} (rounds)      goal  GCs`);
      else log(`  ${"operation".padEnd(66)} ${"median".padStart(7)} ${"best".padStart(6)}  ${"C".padStart(5)}  ${"goal".padStart(4)}  GCs  faults`);
      for (const c of cases) {
        if (withC && c.cCase !== undefined) {
          log(await compareRow(c, c.cCase, gc));
          continue;
        }
        warmUp(c, WARMUP_MS);
        const times: number[] = [];
        const before = await gc.count();
        faults = 0;
        for (let r = 0; r < RUNS; r++) times.push(c.once());
        log(row(c, times, (await gc.count()) - before, faults));
      }
    }
    if (sink === 0) log("  (no lookup translated anything?)");
    const t4k = armMapped4k();
    const t2m = armMapped2m();
    const base = arm();
    log(
      `  arm page-table bytes per mapped GiB: 4K pages ${t4k.tableBytes() - base.tableBytes()} (${t4k.tablePages() - 1} tables + the pgd), ` +
        `2M blocks ${t2m.tableBytes() - base.tableBytes()} (${t2m.tablePages() - 1} tables + the pgd); pgd ${base.tableBytes()}`,
    );
    for (const t of [t4k, t2m, base]) t.free();
  } finally {
    gc.stop();
  }
}

/**
 * One row against C: ROUNDS rounds, each the C harness's RUNS runs of the
 * same loop and then the model's, so that both sides see the same machine;
 * the ratio is of the medians of the round medians.
 */
async function compareRow(c: Case, cCase: string, gc: GcCounter): Promise<string> {
  const cs: number[] = [];
  const ts: number[] = [];
  let gcs = 0;
  for (let round = 0; round < ROUNDS; round++) {
    cs.push(cMedian(cCase));
    // A full warm-up before the first round; later rounds only refill the caches.
    warmUp(c, round === 0 ? WARMUP_MS : 0);
    const times: number[] = [];
    const before = await gc.count();
    for (let r = 0; r < RUNS; r++) times.push(c.once());
    gcs += (await gc.count()) - before;
    ts.push(median(times));
  }
  const ratios = cs.map((x, i) => ts[i]! / x);
  const ratio = median(ts) / median(cs);
  const mark = ratio <= RATIO_GOAL ? "ok" : "OVER";
  const spread = `(${best(ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`;
  return `  ${c.label.padEnd(66)} ${median(cs).toFixed(1).padStart(6)} ${median(ts).toFixed(1).padStart(6)}  ${ratio.toFixed(2).padStart(5)} ${spread.padEnd(12)}  ${RATIO_GOAL.toFixed(1)}  ${String(gcs).padStart(3)}  ${mark}`;
}

function row(c: Case, ns: number[], gcs: number, pageFaults: number): string {
  const med = median(ns);
  const mark = med <= c.goal ? "ok" : "OVER";
  return `  ${c.label.padEnd(66)} ${med.toFixed(1).padStart(7)} ${best(ns).toFixed(1).padStart(6)}  ${c.c.padStart(5)}  ${String(c.goal).padStart(4)}  ${String(gcs).padStart(3)}  ${String(pageFaults).padStart(6)}  ${mark}`;
}


if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await benchPgtable((l) => console.log(l));
}
