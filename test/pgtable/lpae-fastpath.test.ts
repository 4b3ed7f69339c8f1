/**
 * The 4K-granule fast paths of the Arm LPAE table (int32 walks for
 * map_pages, unmap_pages and iova_to_phys) against the general code they
 * defer to: the same random calls on two tables, one forced through the
 * general code only, must give the same results, findings, TLB callbacks,
 * table memory and table accounting after every call. The calls include
 * every argument the fast paths refuse (bad sizes and counts, prot without
 * R/W, addresses beyond ias/oas or misaligned), batches across table ends,
 * maps over leaves and tables, holes, partial blocks and concatenated pgds.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isErr } from "../../src/lib/errno.ts";
import { newIommuIotlbGather, type IommuIotlbGather } from "../../src/pgtable/gather.ts";
import { allocArmLpaePgtable, armLpaeGeneralPathsOnly, type ArmLpaeFmt, type ArmLpaeIoPgtable } from "../../src/pgtable/lpae.ts";
import type { TablePool } from "../../src/pgtable/pool.ts";
import { SZ_16K, SZ_1G, SZ_2M, SZ_4K, bitmapOf } from "../../src/pgtable/sizes.ts";
import {
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  IO_PGTABLE_QUIRK_ARM_HD,
  IO_PGTABLE_QUIRK_ARM_NS,
  IO_PGTABLE_QUIRK_NO_WARN,
  type IoPgtableCfgInit,
} from "../../src/pgtable/types.ts";
import { Recorder, must } from "./helpers.ts";

interface Config {
  name: string;
  fmt: ArmLpaeFmt;
  init: IoPgtableCfgInit;
  /** Where the interesting IOVAs are. */
  region: number;
}

const BM = bitmapOf(SZ_4K, SZ_2M, SZ_1G);
const CONFIGS: Config[] = [
  { name: "S1 48-bit, 4 levels", fmt: "ARM_64_LPAE_S1", init: { pgsizeBitmap: BM, ias: 48, oas: 48 }, region: 4 * SZ_1G },
  { name: "S1 48-bit near the top of ias", fmt: "ARM_64_LPAE_S1", init: { pgsizeBitmap: BM, ias: 48, oas: 48 }, region: 2 ** 48 - 2 * SZ_1G },
  { name: "S1 39-bit, 3 levels", fmt: "ARM_64_LPAE_S1", init: { pgsizeBitmap: BM, ias: 39, oas: 44, quirks: IO_PGTABLE_QUIRK_ARM_NS }, region: 2 ** 39 - 2 * SZ_1G },
  { name: "S1 32-bit, 4-entry pgd", fmt: "ARM_64_LPAE_S1", init: { pgsizeBitmap: BM, ias: 32, oas: 40 }, region: 2 * SZ_1G },
  { name: "S1 40-bit, 2-entry pgd, HD, NO_WARN", fmt: "ARM_64_LPAE_S1", init: { pgsizeBitmap: BM, ias: 40, oas: 48, quirks: IO_PGTABLE_QUIRK_ARM_HD | IO_PGTABLE_QUIRK_NO_WARN }, region: 2 ** 39 - SZ_1G },
  { name: "S1 4K+2M only, table base above 2^31", fmt: "ARM_64_LPAE_S1", init: { pgsizeBitmap: bitmapOf(SZ_4K, SZ_2M), ias: 48, oas: 48, tableBase: 0xc000_0000 }, region: 4 * SZ_1G },
  { name: "S1 table base above 2^32, non-coherent", fmt: "ARM_64_LPAE_S1", init: { pgsizeBitmap: BM, ias: 48, oas: 48, tableBase: 2 ** 40 - 0x3000, coherentWalk: false }, region: 0 },
  { name: "S2 48-bit", fmt: "ARM_64_LPAE_S2", init: { pgsizeBitmap: BM, ias: 48, oas: 48 }, region: 4 * SZ_1G },
  { name: "S2 40-bit, concatenated pgd", fmt: "ARM_64_LPAE_S2", init: { pgsizeBitmap: BM, ias: 40, oas: 40 }, region: 511 * SZ_1G },
];

const SIZES = [SZ_4K, SZ_4K, SZ_4K, SZ_2M, SZ_2M, SZ_1G, SZ_16K, SZ_4K + SZ_2M, 2 ** 39, 0];
const COUNTS = [1, 1, 1, 1, 2, 3, 5, 511, 512, 513, 600, 0, 1.5, 2 ** 40];
const PROTS = [
  IOMMU_READ | IOMMU_WRITE,
  IOMMU_READ | IOMMU_WRITE,
  IOMMU_READ,
  IOMMU_WRITE | IOMMU_CACHE,
  IOMMU_READ | IOMMU_NOEXEC | IOMMU_PRIV,
  IOMMU_WRITE | IOMMU_MMIO,
  0,
  IOMMU_CACHE,
];

const opArb = fc.record({
  kind: fc.constantFrom("map", "map", "map", "unmap", "unmap", "lookup"),
  size: fc.constantFrom(...SIZES),
  count: fc.constantFrom(...COUNTS),
  prot: fc.constantFrom(...PROTS),
  /** 2M slot and 4K slot inside the region's 1G blocks. */
  gig: fc.integer({ min: 0, max: 2 }),
  slot2m: fc.constantFrom(0, 1, 2, 510, 511),
  slot4k: fc.constantFrom(0, 1, 2, 510, 511),
  /** Mostly aligned; sometimes a few bytes off, negative, beyond ias, or not an integer. */
  skew: fc.constantFrom(0, 0, 0, 0, 0, 0, 0x10, -1, 2 ** 49, 0.5),
  pa: fc.constantFrom(0, 256 * SZ_1G, 2 ** 32 - SZ_4K, 2 ** 40 - 3 * SZ_2M, 2 ** 47, 2 ** 48, 0x123),
  gather: fc.constantFrom("strict", "strict", "queued", "none"),
  /** Call the fast table through the frame-number entry points. */
  pfn: fc.boolean(),
});
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

function iovaOf(c: Config, op: Op): number {
  const base = c.region + op.gig * SZ_1G + op.slot2m * SZ_2M + op.slot4k * SZ_4K;
  if (op.skew === -1) return -SZ_4K;
  if (op.skew === 2 ** 49) return base + 2 ** 49;
  return base + op.skew;
}

function words(pt: ArmLpaeIoPgtable): Uint32Array {
  return (pt as unknown as { pool: TablePool }).pool.words;
}

/** Where two tables' memories first differ (-1 if nowhere); a plain loop, deep equality is too slow for MBs. */
function firstDifference(a: Uint32Array, b: Uint32Array): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Everything observable about one call, as plain data. */
/** A whole, non-negative multiple of 4K: expressible as a frame number for the *Pfn entry points. */
const isFrame = (x: number): boolean => x >= 0 && x % SZ_4K === 0;

/** One call; with `pfn`, through mapPagesPfn/unmapPagesPfn whenever the addresses are whole frames. */
function apply(pt: ArmLpaeIoPgtable, rec: Recorder, gathers: Record<string, IommuIotlbGather | null>, c: Config, op: Op, pfn: boolean): unknown {
  const iova = iovaOf(c, op);
  rec.clear();
  let ret: unknown;
  if (op.kind === "map") {
    const m = { bytes: 7 };
    const r =
      pfn && isFrame(iova) && isFrame(op.pa)
        ? pt.mapPagesPfn(iova / SZ_4K, op.pa / SZ_4K, op.size, op.count, op.prot, m)
        : pt.mapPages(iova, op.pa, op.size, op.count, op.prot, m);
    ret = { r: isErr(r) ? r.errno + ": " + r.message : r, bytes: m.bytes };
  } else if (op.kind === "unmap") {
    const g = gathers[op.gather]!;
    ret = pfn && isFrame(iova) ? pt.unmapPagesPfn(iova / SZ_4K, op.size, op.count, g) : pt.unmapPages(iova, op.size, op.count, g);
  } else {
    ret = [pt.iovaToPhys(iova), pt.iovaToPhys(iova + SZ_4K + 0x44), pt.iovaToPhys(iova + SZ_2M - 1)];
  }
  return { ret, calls: [...rec.calls], findings: [...rec.findings], pages: pt.tablePages(), bytes: pt.tableBytes() };
}

describe("Arm LPAE 4K-granule fast paths agree with the general code", () => {
  for (const c of CONFIGS) {
    it(c.name, () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
          const recF = new Recorder();
          const recG = new Recorder();
          const fast = must(allocArmLpaePgtable(c.fmt, { ...c.init, tlb: recF.tlb, onFinding: recF.onFinding }));
          const general = must(allocArmLpaePgtable(c.fmt, { ...c.init, tlb: recG.tlb, onFinding: recG.onFinding }));
          armLpaeGeneralPathsOnly(general);
          const gF = { strict: newIommuIotlbGather(false), queued: newIommuIotlbGather(true), none: null };
          const gG = { strict: newIommuIotlbGather(false), queued: newIommuIotlbGather(true), none: null };
          for (const op of ops) {
            expect(apply(fast, recF, gF, c, op, op.pfn)).toEqual(apply(general, recG, gG, c, op, false));
            expect(firstDifference(words(fast), words(general))).toBe(-1);
          }
          fast.free();
          general.free();
          expect(fast.tablePages()).toBe(0);
        }),
        { numRuns: 60 },
      );
    });
  }

  it("takes the fast paths for the common calls (they would otherwise only match trivially)", () => {
    const pt = must(allocArmLpaePgtable("ARM_64_LPAE_S1", { pgsizeBitmap: BM, ias: 48, oas: 48 }));
    const fast = pt as unknown as { mapPagesGeneral: (...a: unknown[]) => unknown; unmapPagesGeneral: (...a: unknown[]) => unknown; iovaToPhysGeneral: (...a: unknown[]) => unknown };
    let general = 0;
    fast.mapPagesGeneral = () => general++;
    fast.unmapPagesGeneral = () => general++;
    fast.iovaToPhysGeneral = () => general++;
    const m = { bytes: 0 };
    expect(pt.mapPages(4 * SZ_1G, 256 * SZ_1G, SZ_4K, 1, IOMMU_READ, m)).toBe(0);
    expect(pt.mapPages(4 * SZ_1G + SZ_4K, 256 * SZ_1G, SZ_4K, 600, IOMMU_READ, m)).toBe(0);
    expect(pt.mapPages(6 * SZ_1G, 256 * SZ_1G, SZ_2M, 1, IOMMU_READ, m)).toBe(0);
    expect(pt.mapPages(6 * SZ_1G + SZ_2M, 256 * SZ_1G, SZ_2M, 3, IOMMU_READ, m)).toBe(0);
    expect(pt.mapPages(8 * SZ_1G, 256 * SZ_1G, SZ_1G, 2, IOMMU_READ, m)).toBe(0);
    expect(m.bytes).toBe(512 * SZ_4K + 4 * SZ_2M + 2 * SZ_1G);
    expect(pt.iovaToPhys(4 * SZ_1G + 0x123)).toBe(256 * SZ_1G + 0x123);
    expect(pt.iovaToPhys(6 * SZ_1G + SZ_2M + 5)).toBe(256 * SZ_1G + 5);
    expect(pt.iovaToPhys(9 * SZ_1G + 5)).toBe(257 * SZ_1G + 5);
    expect(pt.unmapPages(4 * SZ_1G, SZ_4K, 1, null)).toBe(SZ_4K);
    expect(pt.unmapPages(4 * SZ_1G + SZ_4K, SZ_4K, 511, null)).toBe(511 * SZ_4K);
    expect(pt.unmapPages(6 * SZ_1G, SZ_2M, 4, null)).toBe(4 * SZ_2M);
    expect(pt.unmapPages(8 * SZ_1G, SZ_1G, 1, null)).toBe(SZ_1G);
    expect(general).toBe(0);
  });
});
