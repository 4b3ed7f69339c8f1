/**
 * The chunk-wise fast paths of the iommufd mock (map, unmap and
 * iova_to_phys a chunk of 512 entries at a time) against its entry-by-entry
 * code: the same random calls on two tables, one forced through the
 * entry-by-entry code, must give the same results, findings (overwrites,
 * START/LAST splits, misalignment), storage, entry memory and dirty bits.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isErr } from "../../src/lib/errno.ts";
import {
  IOMMU_DIRTY_NO_CLEAR,
  MOCK_APERTURE_START,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_IO_PAGE_SIZE,
  allocMockPgtable,
  mockGeneralPathsOnly,
  type MockIoPgtable,
} from "../../src/pgtable/mock.ts";
import type { TablePool } from "../../src/pgtable/pool.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../../src/pgtable/types.ts";
import { Recorder, must } from "./helpers.ts";

const P = MOCK_IO_PAGE_SIZE;

const opArb = fc.record({
  kind: fc.constantFrom("map", "map", "map", "unmap", "unmap", "unmap", "lookup", "dirty", "read"),
  /** Entry offset from the region base: chunk edges and inside. */
  at: fc.constantFrom(0, 0, 1, 511, 512, 1023, 4000),
  /** [pgsize, pgcount], including sizes that are not 2K multiples and counts that are not whole. */
  range: fc.constantFrom([P, 1], [P, 1], [P, 2], [P, 3], [P, 511], [P, 600], [P, 1.5], [P, 0], [2 * P, 3], [MOCK_HUGE_PAGE_SIZE, 1], [MOCK_HUGE_PAGE_SIZE, 2], [3 * 1024, 2], [0, 1]),
  skew: fc.constantFrom(0, 0, 0, 0, 0, 0x10, -P, 0.5, 2 ** 47),
  pa: fc.constantFrom(0, 2 ** 32 - P, 2 ** 43 - 3 * P, 0x7ff, 2 ** 40 + 0.5),
  region: fc.constantFrom(MOCK_APERTURE_START, 2 ** 40),
  /** Call the fast table through the frame-number entry points. */
  pfn: fc.boolean(),
});
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

function words(pt: MockIoPgtable): Uint32Array {
  return (pt as unknown as { pool: TablePool }).pool.words;
}

function firstDifference(a: Uint32Array, b: Uint32Array): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** A whole, non-negative multiple of 2K: expressible as a mock frame number. */
const isFrame = (x: number): boolean => x >= 0 && x % P === 0;

/** One call; with `pfn`, through mapPagesPfn/unmapPagesPfn whenever the addresses are whole frames. */
function apply(pt: MockIoPgtable, rec: Recorder, op: Op, pfn: boolean): unknown {
  const iova = op.region + op.at * P + op.skew;
  rec.clear();
  let ret: unknown;
  if (op.kind === "map") {
    const m = { bytes: 3 };
    const r =
      pfn && isFrame(iova) && isFrame(op.pa)
        ? pt.mapPagesPfn(iova / P, op.pa / P, op.range[0]!, op.range[1]!, IOMMU_READ | IOMMU_WRITE, m)
        : pt.mapPages(iova, op.pa, op.range[0]!, op.range[1]!, IOMMU_READ | IOMMU_WRITE, m);
    ret = { r: isErr(r) ? r.errno + ": " + r.message : r, bytes: m.bytes };
  } else if (op.kind === "unmap") {
    ret = pfn && isFrame(iova) ? pt.unmapPagesPfn(iova / P, op.range[0]!, op.range[1]!, null) : pt.unmapPages(iova, op.range[0]!, op.range[1]!, null);
  } else if (op.kind === "lookup") {
    ret = [pt.iovaToPhys(iova), pt.iovaToPhys(iova + P), pt.iovaToPhys(iova + 513 * P)];
  } else if (op.kind === "dirty") {
    ret = pt.setDirty(iova);
  } else {
    const seen: number[] = [];
    pt.readAndClearDirty(op.region, 1100 * P, op.range[1] === 1 ? IOMMU_DIRTY_NO_CLEAR : 0, (i, l) => seen.push(i, l));
    ret = seen;
  }
  return { ret, findings: [...rec.findings], pages: pt.tablePages(), bytes: pt.tableBytes() };
}

describe("iommufd mock chunk-wise fast paths agree with the entry-by-entry code", () => {
  for (const huge of [false, true]) {
    it(huge ? "with huge pages (HUGE_IOVA device)" : "2 KiB pages only", () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
          const bitmap = huge ? P + MOCK_HUGE_PAGE_SIZE : P;
          const recF = new Recorder();
          const recG = new Recorder();
          const fast = must(allocMockPgtable({ pgsizeBitmap: bitmap, ias: 64, oas: 64, onFinding: recF.onFinding }));
          const general = must(allocMockPgtable({ pgsizeBitmap: bitmap, ias: 64, oas: 64, onFinding: recG.onFinding }));
          mockGeneralPathsOnly(general);
          for (const op of ops) {
            expect(apply(fast, recF, op, op.pfn)).toEqual(apply(general, recG, op, false));
            expect(firstDifference(words(fast), words(general))).toBe(-1);
          }
          recF.clear();
          recG.clear();
          fast.free();
          general.free();
          expect(recF.findings).toEqual(recG.findings);
        }),
        { numRuns: 60 },
      );
    });
  }
});
