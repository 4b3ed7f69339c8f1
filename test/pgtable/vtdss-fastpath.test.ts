/**
 * The one-page fast paths of the VT-d second stage (int32 walks for
 * map_pages and unmap_pages of a single 4K page) against the general code:
 * the same random calls on two tables, one forced through the general code,
 * must give the same results, findings, TLB callbacks, gathers, table
 * memory and accounting after every call. Most calls are single pages, some
 * misaligned, beyond ias/oas, over leaves, large leaves and holes; the rest
 * are ranges that build and tear down the tables around them.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isErr } from "../../src/lib/errno.ts";
import { newIommuIotlbGather, type IommuIotlbGather } from "../../src/pgtable/gather.ts";
import type { TablePool } from "../../src/pgtable/pool.ts";
import { SZ_1G, SZ_2M, SZ_4K, bitmapOf } from "../../src/pgtable/sizes.ts";
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, type IoPgtableCfgInit } from "../../src/pgtable/types.ts";
import { allocVtdssPgtable, vtdssGeneralPathsOnly, type VtdssIoPgtable } from "../../src/pgtable/vtdss.ts";
import { Recorder, must } from "./helpers.ts";

interface Config {
  name: string;
  init: IoPgtableCfgInit;
  region: number;
}

const BM = bitmapOf(SZ_4K, SZ_2M, SZ_1G);
const CONFIGS: Config[] = [
  { name: "48-bit, 4 levels", init: { pgsizeBitmap: BM, ias: 48, oas: 52 }, region: 4 * SZ_1G },
  { name: "48-bit near the top of ias", init: { pgsizeBitmap: BM, ias: 48, oas: 48 }, region: 2 ** 48 - 2 * SZ_1G },
  { name: "42-bit, small top table, 4K+2M", init: { pgsizeBitmap: bitmapOf(SZ_4K, SZ_2M), ias: 42, oas: 40, tableBase: 0xc000_0000 }, region: 2 ** 41 - SZ_1G },
  { name: "39-bit, 3 levels, table base above 2^32", init: { pgsizeBitmap: BM, ias: 39, oas: 46, tableBase: 2 ** 40 }, region: 2 ** 39 - 2 * SZ_1G },
  { name: "32-bit, 3 levels, 4-entry top", init: { pgsizeBitmap: BM, ias: 32, oas: 39 }, region: SZ_1G },
];

const opArb = fc.record({
  kind: fc.constantFrom("map1", "map1", "map1", "map", "unmap1", "unmap1", "unmap1", "unmap", "lookup"),
  /** Ranges: [pgsize, pgcount] (a 1G-count range would make MBs of 2M leaves where 1G leaves are off). */
  range: fc.constantFrom([SZ_4K, 2], [SZ_4K, 3], [SZ_4K, 512], [SZ_4K, 513], [SZ_2M, 1], [SZ_2M, 3], [SZ_1G, 1], [SZ_1G, 2]),
  prot: fc.constantFrom(IOMMU_READ | IOMMU_WRITE, IOMMU_READ, IOMMU_WRITE | IOMMU_CACHE, 0),
  gig: fc.integer({ min: 0, max: 1 }),
  slot2m: fc.constantFrom(0, 1, 511),
  slot4k: fc.constantFrom(0, 1, 2, 511),
  skew: fc.constantFrom(0, 0, 0, 0, 0, 0x10, -SZ_4K, 2 ** 49, 0.5),
  pa: fc.constantFrom(0, 256 * SZ_1G, 2 ** 32 - SZ_4K, 2 ** 39 + SZ_4K, 2 ** 52, 0x800),
  gather: fc.constantFrom("strict", "queued", "none"),
  /** Call the fast table through the frame-number entry points. */
  pfn: fc.boolean(),
});
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

function iovaOf(c: Config, op: Op): number {
  const base = c.region + op.gig * SZ_1G + op.slot2m * SZ_2M + op.slot4k * SZ_4K;
  if (op.skew === -SZ_4K) return -SZ_4K;
  return base + op.skew;
}

function words(pt: VtdssIoPgtable): Uint32Array {
  return (pt as unknown as { pool: TablePool }).pool.words;
}

function firstDifference(a: Uint32Array, b: Uint32Array): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function gatherState(g: IommuIotlbGather | null): unknown {
  return g === null ? null : { start: g.start, end: g.end, pgsize: g.pgsize, pending: g.freelist.length };
}

/** A whole, non-negative multiple of 4K: expressible as a frame number for the *Pfn entry points. */
const isFrame = (x: number): boolean => x >= 0 && x % SZ_4K === 0;

/** One call; with `pfn`, through mapPagesPfn/unmapPagesPfn whenever the addresses are whole frames. */
function apply(pt: VtdssIoPgtable, rec: Recorder, gathers: Record<string, IommuIotlbGather | null>, c: Config, op: Op, pfn: boolean): unknown {
  const iova = iovaOf(c, op);
  const g = gathers[op.gather]!;
  const [pgsize, pgcount] = op.kind === "map1" || op.kind === "unmap1" ? [SZ_4K, 1] : [op.range[0]!, op.range[1]!];
  rec.clear();
  let ret: unknown;
  if (op.kind === "map1" || op.kind === "map") {
    const m = { bytes: 5 };
    const r =
      pfn && isFrame(iova) && isFrame(op.pa)
        ? pt.mapPagesPfn(iova / SZ_4K, op.pa / SZ_4K, pgsize, pgcount, op.prot, m)
        : pt.mapPages(iova, op.pa, pgsize, pgcount, op.prot, m);
    ret = { r: isErr(r) ? r.errno + ": " + r.message : r, bytes: m.bytes };
  } else if (op.kind === "unmap1" || op.kind === "unmap") {
    ret = pfn && isFrame(iova) ? pt.unmapPagesPfn(iova / SZ_4K, pgsize, pgcount, g) : pt.unmapPages(iova, pgsize, pgcount, g);
  } else {
    ret = [pt.iovaToPhys(iova), pt.iovaToPhys(iova + SZ_4K + 0x44)];
  }
  const out = { ret, calls: [...rec.calls], findings: [...rec.findings], gather: gatherState(g), pages: pt.tablePages(), bytes: pt.tableBytes() };
  // Pages a gather holds are freed once the IOTLB is synced.
  if (g !== null && g.freelist.length > 0 && op.range[1] === 3) g.freelist.put();
  return out;
}

describe("VT-d second-stage one-page fast paths agree with the general code", () => {
  for (const c of CONFIGS) {
    it(c.name, () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
          const recF = new Recorder();
          const recG = new Recorder();
          const fast = must(allocVtdssPgtable({ ...c.init, tlb: recF.tlb, onFinding: recF.onFinding }));
          const general = must(allocVtdssPgtable({ ...c.init, tlb: recG.tlb, onFinding: recG.onFinding }));
          vtdssGeneralPathsOnly(general);
          const gF = { strict: newIommuIotlbGather(false), queued: newIommuIotlbGather(true), none: null };
          const gG = { strict: newIommuIotlbGather(false), queued: newIommuIotlbGather(true), none: null };
          for (const op of ops) {
            expect(apply(fast, recF, gF, c, op, op.pfn)).toEqual(apply(general, recG, gG, c, op, false));
            expect(firstDifference(words(fast), words(general))).toBe(-1);
          }
        }),
        { numRuns: 60 },
      );
    });
  }

  it("takes the fast paths for aligned single pages through existing tables", () => {
    const pt = must(allocVtdssPgtable({ pgsizeBitmap: BM, ias: 48, oas: 48 }));
    const m = { bytes: 0 };
    expect(pt.mapPages(4 * SZ_1G, 256 * SZ_1G, SZ_4K, 1, IOMMU_READ, m)).toBe(0);
    const spy = pt as unknown as { mapPagesGeneral: () => unknown; unmapPagesGeneral: () => unknown };
    let general = 0;
    spy.mapPagesGeneral = () => general++;
    spy.unmapPagesGeneral = () => general++;
    expect(pt.mapPages(4 * SZ_1G + SZ_4K, 256 * SZ_1G + SZ_4K, SZ_4K, 1, IOMMU_WRITE, m)).toBe(0);
    expect(m.bytes).toBe(2 * SZ_4K);
    expect(pt.iovaToPhys(4 * SZ_1G + SZ_4K + 5)).toBe(256 * SZ_1G + SZ_4K + 5);
    const g = newIommuIotlbGather();
    expect(pt.unmapPages(4 * SZ_1G, SZ_4K, 1, g)).toBe(SZ_4K);
    expect([g.start, g.end]).toEqual([4 * SZ_1G, 4 * SZ_1G + SZ_4K - 1]);
    expect(pt.unmapPages(4 * SZ_1G + SZ_4K, SZ_4K, 1, null)).toBe(SZ_4K);
    expect(general).toBe(0);
  });
});
