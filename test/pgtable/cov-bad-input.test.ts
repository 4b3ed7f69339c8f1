/**
 * Bad input at the io-pgtable level, for every Arm LPAE granule and both
 * stages, for the VT-d second stage and for the iommufd selftest mock: the kernel's errno or return value,
 * and every word of table memory, the table count and every translation as
 * they were. Where the kernel format does change the tables before it fails
 * (io-pgtable-arm allocating tables on the way down to an unreachable size;
 * a block batch tearing down a table of live pages before it meets a leaf),
 * the test asserts exactly that change and names the kernel function.
 */
import { describe, expect, it } from "vitest";
import { isErr, type KError } from "../../src/lib/errno.ts";
import { allocArmLpaePgtable, type ArmLpaeFmt } from "../../src/pgtable/lpae.ts";
import { allocMockPgtable, MOCK_APERTURE_START, MOCK_IO_PAGE_SIZE } from "../../src/pgtable/mock.ts";
import { SZ_16K, SZ_1G, SZ_1M, SZ_2M, SZ_32M, SZ_4K, SZ_4T, SZ_512M, SZ_64K, bitmapOf } from "../../src/pgtable/sizes.ts";
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, type IoPgtableOps } from "../../src/pgtable/types.ts";
import { allocVtdssPgtable } from "../../src/pgtable/vtdss.ts";
import { Recorder, must, tableChange, tableState } from "./helpers.ts";

const RW = IOMMU_READ | IOMMU_WRITE;
const NO_CHANGE = { pages: 0, bytes: 0, firstChangedWord: -1 };

const errnoOf = (r: 0 | KError): string | 0 => (isErr(r) ? r.errno : r);

interface ArmConfig {
  name: string;
  fmt: ArmLpaeFmt;
  bitmap: number;
  ias: number;
  oas: number;
  /** Page (level 3) and block (level 2) sizes of the granule. */
  page: number;
  block: number;
  /** The level the walk starts at (see lpae-property.test.ts for the derivation). */
  startLevel: number;
}

const ARM: ArmConfig[] = [
  { name: "S1 4K, ias 48", fmt: "ARM_64_LPAE_S1", bitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias: 48, oas: 48, page: SZ_4K, block: SZ_2M, startLevel: 0 },
  { name: "S2 4K, ias 40 (concatenated pgd)", fmt: "ARM_64_LPAE_S2", bitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias: 40, oas: 40, page: SZ_4K, block: SZ_2M, startLevel: 1 },
  { name: "S1 16K, ias 48", fmt: "ARM_64_LPAE_S1", bitmap: bitmapOf(SZ_16K, SZ_32M), ias: 48, oas: 48, page: SZ_16K, block: SZ_32M, startLevel: 0 },
  { name: "S2 16K, ias 48 (concatenated pgd)", fmt: "ARM_64_LPAE_S2", bitmap: bitmapOf(SZ_16K, SZ_32M), ias: 48, oas: 48, page: SZ_16K, block: SZ_32M, startLevel: 1 },
  { name: "S1 64K, ias 48", fmt: "ARM_64_LPAE_S1", bitmap: bitmapOf(SZ_64K, SZ_512M), ias: 48, oas: 48, page: SZ_64K, block: SZ_512M, startLevel: 1 },
  { name: "S2 64K, ias 52 (4T blocks)", fmt: "ARM_64_LPAE_S2", bitmap: bitmapOf(SZ_64K, SZ_512M, SZ_4T), ias: 52, oas: 52, page: SZ_64K, block: SZ_512M, startLevel: 1 },
];

describe.each(ARM)("Arm LPAE $name: bad input", (c) => {
  const P = c.page;
  const B = c.block;
  /** Span of one pgd entry: (4 - start) * (log2(granule) - 3) + 3 bits. */
  const PGD_SPAN = 2 ** ((4 - c.startLevel) * (Math.log2(P) - 3) + 3);
  // The populated layout: a page X inside the block-sized slot R (so R holds a level-3 table),
  // a block at Y = R + B right after it. All of it under pgd entry 0.
  const R = 8 * B;
  const X = R + 3 * P;
  const Y = R + B;
  const PA_X = 100 * B + 7 * P;
  const PA_Y = 200 * B;
  /** A pgd entry with nothing under it. */
  const FRESH = PGD_SPAN;
  const ref = (iova: number): number => (iova >= X && iova < X + P ? PA_X + iova - X : iova >= Y && iova < Y + B ? PA_Y + iova - Y : 0);
  const PROBES = [R, X - P, X, X + P - 1, X + P, R + B - P, Y, Y + P, Y + B - 1, Y + B, R + 4 * B, FRESH, FRESH + P].map((p) => p + (p % P === 0 ? 0x18 : 0));

  function populated() {
    const rec = new Recorder();
    const pt = must(allocArmLpaePgtable(c.fmt, { pgsizeBitmap: c.bitmap, ias: c.ias, oas: c.oas, tlb: rec.tlb, onFinding: rec.onFinding }));
    expect(pt.mapPages(X, PA_X, P, 1, RW, { bytes: 0 })).toBe(0);
    expect(pt.mapPages(Y, PA_Y, B, 1, RW, { bytes: 0 })).toBe(0);
    // The pgd and one table per level from start + 1 down to 3.
    expect(pt.tablePages()).toBe(1 + (3 - c.startLevel));
    rec.clear();
    return { pt, rec, before: tableState(pt) };
  }

  function expectTranslations(pt: IoPgtableOps): void {
    expect(PROBES.map((p) => pt.iovaToPhys(p))).toEqual(PROBES.map(ref));
  }

  type MapCase = [name: string, iova: number, pa: number, pgsize: number, pgcount: number, prot: number, errno: string, findings: string[]];
  const mapCases: MapCase[] = [
    // arm_lpae_map_pages: WARN_ON(!pgsize || (pgsize & pgsize_bitmap) != pgsize) -> -EINVAL, before the walk.
    ["pgsize 0", FRESH, PA_X, 0, 1, RW, "EINVAL", ["bad-pgsize"]],
    ["pgsize twice the page (not in the bitmap)", FRESH, PA_X, 2 * P, 1, RW, "EINVAL", ["bad-pgsize"]],
    ["pgsize of another granule", FRESH, PA_X, P === SZ_4K ? SZ_64K : SZ_4K, 1, RW, "EINVAL", ["bad-pgsize"]],
    // arm_lpae_map_pages: iova >> ias or paddr >> oas -> WARN, -ERANGE, before the walk.
    ["iova at 2^ias", 2 ** c.ias, PA_X, P, 1, RW, "ERANGE", ["out-of-range"]],
    ["paddr at 2^oas", FRESH, 2 ** c.oas, P, 1, RW, "ERANGE", ["out-of-range"]],
    // arm_lpae_map_pages: prot without READ or WRITE -> -EINVAL, before the walk.
    ["prot without READ or WRITE", FRESH, PA_X, P, 1, IOMMU_CACHE, "EINVAL", []],
    // arm_lpae_init_pte: a leaf at the target entry -> -EEXIST (WARN), checked for the whole batch first.
    ["a page over the mapped page", X, PA_Y, P, 1, RW, "EEXIST", ["map-exists"]],
    ["a batch whose third page is the mapped page", X - 2 * P, PA_Y, P, 5, RW, "EEXIST", ["map-exists"]],
    ["a block over the block", Y, PA_X - 7 * P, B, 1, RW, "EEXIST", ["map-exists"]],
    // __arm_lpae_map: a block above the target level -> -EEXIST, before any table is allocated.
    ["a page inside the block", Y + 5 * P, PA_X, P, 1, RW, "EEXIST", ["map-exists"]],
  ];

  it.each(mapCases)("map_pages: %s", (_name, iova, pa, pgsize, pgcount, prot, errno, findings) => {
    const { pt, rec, before } = populated();
    const m = { bytes: 0 };
    expect(errnoOf(pt.mapPages(iova, pa, pgsize, pgcount, prot, m))).toBe(errno);
    expect(m.bytes).toBe(0);
    expect(tableChange(before, tableState(pt))).toEqual(NO_CHANGE);
    expectTranslations(pt);
    expect(rec.calls).toEqual([]);
    expect(rec.kinds()).toEqual(findings);
  });

  type UnmapCase = [name: string, iova: number, pgsize: number, pgcount: number, findings: string[]];
  const unmapCases: UnmapCase[] = [
    // arm_lpae_unmap_pages: bad pgsize or pgcount 0 -> WARN, 0.
    ["pgsize not in the bitmap", X, 2 * P, 1, ["bad-pgsize"]],
    ["pgcount 0", X, P, 0, ["bad-pgsize"]],
    // arm_lpae_unmap_pages: iova beyond ias -> WARN, 0.
    ["iova at 2^ias", 2 ** c.ias, P, 1, ["out-of-range"]],
    // __arm_lpae_unmap: an empty entry (-ENOENT in the kernel, 0 in the model: docs/pgtable.md).
    ["the empty entry after the page", X + P, P, 1, ["unmap-enoent"]],
    ["a batch starting at an empty entry before the page", X - P, P, 3, ["unmap-enoent"]],
    ["a slot with no level-3 table", R + 4 * B, P, 1, ["unmap-enoent"]],
    ["a pgd entry with nothing under it", FRESH, B, 1, ["unmap-enoent"]],
    // __arm_lpae_unmap: a leaf larger than pgsize -> WARN_ONCE, 0, the block stays.
    ["a page inside the block", Y + P, P, 1, ["unmap-partial-block"]],
  ];

  it.each(unmapCases)("unmap_pages: %s returns 0", (_name, iova, pgsize, pgcount, findings) => {
    const { pt, rec, before } = populated();
    expect(pt.unmapPages(iova, pgsize, pgcount, null)).toBe(0);
    expect(tableChange(before, tableState(pt))).toEqual(NO_CHANGE);
    expectTranslations(pt);
    expect(rec.calls).toEqual([]);
    expect(rec.kinds()).toEqual(findings);
  });

  it("map_pages with a sum of page sizes: EINVAL after allocating every table down to level 3 (__arm_lpae_map)", () => {
    const { pt, rec, before } = populated();
    // (pgsize & bitmap) == pgsize passes arm_lpae_map_pages; __arm_lpae_map matches no block size,
    // allocates a table at each level and WARNs at the last one.
    expect(errnoOf(pt.mapPages(FRESH, PA_X, P + B, 1, RW, { bytes: 0 }))).toBe("EINVAL");
    const change = tableChange(before, tableState(pt));
    expect(change.pages).toBe(3 - c.startLevel);
    expect(change.bytes).toBe((3 - c.startLevel) * P);
    expectTranslations(pt);
    expect(rec.kinds()).toEqual(["unreachable-pgsize"]);
    // The same call again walks the tables it left and allocates nothing more.
    const again = tableState(pt);
    expect(errnoOf(pt.mapPages(FRESH, PA_X, P + B, 1, RW, { bytes: 0 }))).toBe("EINVAL");
    expect(tableChange(again, tableState(pt))).toEqual(NO_CHANGE);
  });

  it("a block batch meeting a leaf: EEXIST, but the table of live pages before it is already gone (arm_lpae_init_pte)", () => {
    const { pt, rec, before } = populated();
    // Entry R holds the level-3 table with X; entry R + B is the block. arm_lpae_init_pte walks the
    // batch in order: it tears down R's table (live page and all, tlb_flush_walk) and then finds the leaf.
    expect(errnoOf(pt.mapPages(R, PA_Y, B, 2, RW, { bytes: 0 }))).toBe("EEXIST");
    const change = tableChange(before, tableState(pt));
    expect(change.pages).toBe(-1);
    expect(change.bytes).toBe(-P);
    expect(pt.iovaToPhys(X)).toBe(0);
    expect(pt.iovaToPhys(Y + 0x18)).toBe(PA_Y + 0x18);
    expect(rec.calls).toEqual([{ op: "flushWalk", iova: R, size: B, granule: P }]);
    expect(rec.kinds()).toEqual(["map-discards-mappings", "map-exists"]);
  });
});

describe("VT-d second stage: bad input", () => {
  const X = 8 * SZ_2M + 3 * SZ_4K;
  const Y = 9 * SZ_2M;
  const PA_X = 100 * SZ_2M + 7 * SZ_4K;
  const PA_Y = 200 * SZ_2M;
  const ref = (iova: number): number => (iova >= X && iova < X + SZ_4K ? PA_X + iova - X : iova >= Y && iova < Y + SZ_2M ? PA_Y + iova - Y : 0);
  const PROBES = [X - SZ_4K, X, X + SZ_4K, Y, Y + SZ_4K, Y + SZ_2M, 3 * SZ_1G].map((p) => p + 0x28);

  function populated() {
    const rec = new Recorder();
    const pt = must(allocVtdssPgtable({ pgsizeBitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias: 48, oas: 48, tlb: rec.tlb, onFinding: rec.onFinding }));
    expect(pt.mapPages(X, PA_X, SZ_4K, 1, RW, { bytes: 0 })).toBe(0);
    expect(pt.mapPages(Y, PA_Y, SZ_2M, 1, RW, { bytes: 0 })).toBe(0);
    rec.clear();
    return { pt, rec, before: tableState(pt) };
  }

  type MapCase = [name: string, iova: number, pa: number, pgsize: number, pgcount: number, prot: number, errno: string];
  const mapCases: MapCase[] = [
    // generic_pt map_pages (iommu_pt.h): the checks before the walk.
    ["prot without R or W", 3 * SZ_1G, PA_X, SZ_4K, 1, IOMMU_CACHE, "EINVAL"],
    ["paddr beyond oas", 3 * SZ_1G, 2 ** 48, SZ_4K, 1, RW, "ERANGE"],
    ["zero length", 3 * SZ_1G, PA_X, SZ_4K, 0, RW, "EINVAL"],
    ["a misaligned single page", 3 * SZ_1G + 0x800, PA_X, SZ_4K, 1, RW, "ENXIO"],
    // map_pages takes the largest bitmap size that the iova, paddr and length (pgsize * pgcount,
    // pgsize itself is not checked) allow (pt_compute_best_pgsize); none fits -> -ENXIO.
    ["pgsize 2K, below the bitmap's smallest (4K)", 3 * SZ_1G, PA_X, 0x800, 1, RW, "ENXIO"],
    ["a single page at an unaligned paddr", 3 * SZ_1G, PA_X + 0x800, SZ_4K, 1, RW, "ENXIO"],
    ["two pages at an unaligned paddr", 3 * SZ_1G, PA_X + 0x800, SZ_4K, 2, RW, "ENXIO"],
    ["a range past ias", 2 ** 48 - SZ_4K, PA_X, SZ_4K, 2, RW, "ERANGE"],
    // Anything mapped at the first leaf: EADDRINUSE with nothing installed.
    ["a page over the mapped page", X, PA_Y, SZ_4K, 1, RW, "EADDRINUSE"],
    ["a page inside the 2M leaf", Y + SZ_4K, PA_X, SZ_4K, 1, RW, "EADDRINUSE"],
    ["a 2M leaf over the 2M leaf", Y, PA_X - 7 * SZ_4K, SZ_2M, 1, RW, "EADDRINUSE"],
  ];

  it.each(mapCases)("map_pages: %s", (_name, iova, pa, pgsize, pgcount, prot, errno) => {
    const { pt, rec, before } = populated();
    const m = { bytes: 0 };
    expect(errnoOf(pt.mapPages(iova, pa, pgsize, pgcount, prot, m))).toBe(errno);
    expect(m.bytes).toBe(0);
    expect(tableChange(before, tableState(pt))).toEqual(NO_CHANGE);
    expect(PROBES.map((p) => pt.iovaToPhys(p))).toEqual(PROBES.map(ref));
    expect(rec.calls).toEqual([]);
  });

  type UnmapCase = [name: string, iova: number, pgsize: number, pgcount: number];
  const unmapCases: UnmapCase[] = [
    // __unmap_range: a hole stops the walk with the bytes done so far (0).
    ["a hole next to the page", X + SZ_4K, SZ_4K, 1],
    ["a range starting at a hole before the page", X - SZ_4K, SZ_4K, 3],
    ["an address with no tables", 3 * SZ_1G, SZ_2M, 1],
    // __unmap_range: a start inside a large entry stops at once.
    ["a page inside the 2M leaf", Y + SZ_4K, SZ_4K, 1],
  ];

  it.each(unmapCases)("unmap_pages: %s returns 0", (_name, iova, pgsize, pgcount) => {
    const { pt, rec, before } = populated();
    expect(pt.unmapPages(iova, pgsize, pgcount, null)).toBe(0);
    expect(tableChange(before, tableState(pt))).toEqual(NO_CHANGE);
    expect(PROBES.map((p) => pt.iovaToPhys(p))).toEqual(PROBES.map(ref));
    expect(rec.calls).toEqual([]);
  });
});

/**
 * The iommufd selftest mock (selftest.c mock_domain_map_pages / mock_domain_unmap_pages): it
 * WARNs on an iova or pgsize that is not a multiple of MOCK_IO_PAGE_SIZE (2K) but goes on; the
 * model refuses a pgsize the kernel's loop would never finish (EINVAL on map, 0 on unmap), and an
 * unaligned iova is used as the kernel uses it, as the entry iova / 2K.
 */
describe("iommufd mock: bad input", () => {
  const P = MOCK_IO_PAGE_SIZE;
  const A = MOCK_APERTURE_START;
  // One page at X, four at Y, in different 1 MiB chunks (xarray nodes) of the table.
  const X = A + 3 * P;
  const Y = A + SZ_1M;
  const PA_X = 0x4000_0000 + 7 * P;
  const PA_Y = 0x5000_0000;
  const FRESH = A + 2 * SZ_1M;
  const ref = (iova: number): number => (iova === X ? PA_X : iova >= Y && iova < Y + 4 * P ? PA_Y + iova - Y : 0);
  // Page addresses only: the mock WARNs on an unaligned iova_to_phys.
  const PROBES = [A, X - P, X, X + P, Y, Y + P, Y + 3 * P, Y + 4 * P, FRESH];

  function populated() {
    const rec = new Recorder();
    const pt = must(allocMockPgtable({ pgsizeBitmap: P, ias: 64, oas: 64, tlb: rec.tlb, onFinding: rec.onFinding }));
    expect(pt.mapPages(X, PA_X, P, 1, RW, { bytes: 0 })).toBe(0);
    expect(pt.mapPages(Y, PA_Y, P, 4, RW, { bytes: 0 })).toBe(0);
    // One 4K chunk of 512 entries per MiB used.
    expect([pt.tablePages(), pt.tableBytes()]).toEqual([2, 2 * SZ_4K]);
    rec.clear();
    return { pt, rec, before: tableState(pt) };
  }

  const translations = (pt: IoPgtableOps) => PROBES.map((p) => pt.iovaToPhys(p));

  type MapCase = [name: string, iova: number, pgsize: number, pgcount: number, result: string | 0, findings: string[]];
  const mapCases: MapCase[] = [
    ["pgsize 0x300 (not a multiple of 2K)", FRESH, 0x300, 1, "EINVAL", ["mock-misaligned"]],
    ["pgsize 3K (not a multiple of 2K)", FRESH, 0xc00, 1, "EINVAL", ["mock-misaligned"]],
    ["pgsize 0", FRESH, 0, 1, "EINVAL", ["mock-misaligned"]],
    ["pgsize 0x300 at a mapped page", X, 0x300, 1, "EINVAL", ["mock-misaligned"]],
    // for (; pgcount; pgcount--) never runs: 0, nothing stored, no WARN.
    ["zero pgcount", FRESH, P, 0, 0, []],
    ["zero pgcount over mapped pages", Y, P, 0, 0, []],
  ];

  it.each(mapCases)("map_pages: %s", (_name, iova, pgsize, pgcount, result, findings) => {
    const { pt, rec, before } = populated();
    const m = { bytes: 0 };
    expect(errnoOf(pt.mapPages(iova, 0x6000_0000, pgsize, pgcount, RW, m))).toBe(result);
    expect(m.bytes).toBe(0);
    expect(tableChange(before, tableState(pt))).toEqual(NO_CHANGE);
    expect(pt.leafBytes()).toBe(5 * P);
    expect(rec.calls).toEqual([]);
    expect(rec.kinds()).toEqual(findings);
    // (iova_to_phys of the unmapped probes WARNs too: checked after the findings above.)
    expect(translations(pt)).toEqual(PROBES.map(ref));
  });

  type UnmapCase = [name: string, iova: number, pgsize: number, pgcount: number, findings: string[]];
  const unmapCases: UnmapCase[] = [
    ["pgsize 0x300 (not a multiple of 2K)", X, 0x300, 1, ["mock-misaligned"]],
    ["pgsize 0", Y, 0, 4, ["mock-misaligned"]],
    // The loop never runs: 0 bytes, no WARN.
    ["zero pgcount", Y, P, 0, []],
  ];

  it.each(unmapCases)("unmap_pages: %s returns 0", (_name, iova, pgsize, pgcount, findings) => {
    const { pt, rec, before } = populated();
    expect(pt.unmapPages(iova, pgsize, pgcount, null)).toBe(0);
    expect(tableChange(before, tableState(pt))).toEqual(NO_CHANGE);
    expect(pt.leafBytes()).toBe(5 * P);
    expect(rec.calls).toEqual([]);
    expect(rec.kinds()).toEqual(findings);
    // (iova_to_phys of the unmapped probes WARNs too: checked after the findings above.)
    expect(translations(pt)).toEqual(PROBES.map(ref));
  });

  it("map_pages at an unaligned iova WARNs and stores the entry iova / 2K, as the kernel does", () => {
    const { pt, rec, before } = populated();
    const m = { bytes: 0 };
    expect(pt.mapPages(X + P + 0x100, 0x6000_0000, P, 1, RW, m)).toBe(0);
    expect(m.bytes).toBe(P);
    expect(rec.kinds()).toEqual(["mock-misaligned"]);
    // Written into X's chunk: no table page more, but its words changed.
    const change = tableChange(before, tableState(pt));
    expect([change.pages, change.bytes]).toEqual([0, 0]);
    expect(change.firstChangedWord).not.toBe(-1);
    expect(pt.leafBytes()).toBe(6 * P);
    expect(translations(pt)).toEqual(PROBES.map((p) => (p === X + P ? 0x6000_0000 : ref(p))));
  });

  it("unmap_pages at an unaligned iova WARNs and erases the entry iova / 2K, returning the full size", () => {
    const { pt, rec, before } = populated();
    expect(pt.unmapPages(X + 0x100, P, 1, null)).toBe(P);
    expect(rec.kinds()).toEqual(["mock-misaligned"]);
    // X was its chunk's only entry: the chunk (one 4K table page) goes with it.
    const change = tableChange(before, tableState(pt));
    expect([change.pages, change.bytes]).toEqual([-1, -SZ_4K]);
    expect(pt.leafBytes()).toBe(4 * P);
    expect(translations(pt)).toEqual(PROBES.map((p) => (p === X ? 0 : ref(p))));
  });
});
