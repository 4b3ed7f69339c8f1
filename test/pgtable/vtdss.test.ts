/** VT-d second stage with generic_pt semantics: configuration, encoding, map/unmap rules, table lifetime. */
import { describe, expect, it } from "vitest";
import { isErr } from "../../src/lib/errno.ts";
import { newIommuIotlbGather } from "../../src/pgtable/gather.ts";
import { SZ_1G, SZ_2M, SZ_4K, bitmapOf } from "../../src/pgtable/sizes.ts";
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, newPgtableWalkData, type IoPgtableCfgInit } from "../../src/pgtable/types.ts";
import { allocVtdssPgtable, domainSuperPgsizeBitmap, type VtdssIoPgtable } from "../../src/pgtable/vtdss.ts";
import { Recorder, must } from "./helpers.ts";

const RW = IOMMU_READ | IOMMU_WRITE;
const BM = bitmapOf(SZ_4K, SZ_2M, SZ_1G);
const G4 = 4 * SZ_1G;
const PA = 256 * SZ_1G;

function vtd(init: Partial<IoPgtableCfgInit> = {}, rec = new Recorder()): VtdssIoPgtable {
  return must(allocVtdssPgtable({ pgsizeBitmap: BM, ias: 48, oas: 52, tlb: rec.tlb, onFinding: rec.onFinding, ...init }));
}

function errno(x: unknown): string {
  return isErr(x) ? x.errno : "ok";
}

/** Leaf level and 64-bit entry (as BigInt, tests only) for iova. */
function leafOf(ops: VtdssIoPgtable, iova: number): { level: number; pte: bigint } {
  const wd = newPgtableWalkData();
  const level = ops.pgtableWalk(iova, wd);
  return { level, pte: level < 0 ? 0n : (BigInt(wd.hi[level]!) << 32n) | BigInt(wd.lo[level]!) };
}

describe("configuration (vtdss_pt_iommu_fmt_init, domain_super_pgsize_bitmap)", () => {
  it("uses 3 levels up to 39 bits and 4 levels up to 48 bits, reporting AW to the driver", () => {
    const a = vtd({ ias: 39 });
    expect([a.topLevel, a.cfg.vtdssHwInfo!.aw, a.cfg.vtdssHwInfo!.ssptptr]).toEqual([2, 1, a.cfg.tableBase]);
    const b = vtd({ ias: 48 });
    expect([b.topLevel, b.cfg.vtdssHwInfo!.aw]).toEqual([3, 2]);
    expect(vtd({ ias: 42 }).topLevel).toBe(3);
    expect(errno(allocVtdssPgtable({ pgsizeBitmap: BM, ias: 57, oas: 52 }))).toBe("EOPNOTSUPP");
    expect(errno(allocVtdssPgtable({ pgsizeBitmap: BM, ias: 30, oas: 52 }))).toBe("EOPNOTSUPP");
  });

  it("derives superpages from SLLPS and keeps only 4K, 2M and 1G", () => {
    expect(domainSuperPgsizeBitmap(0)).toBe(0);
    expect(domainSuperPgsizeBitmap(1)).toBe(SZ_2M);
    expect(domainSuperPgsizeBitmap(2)).toBe(SZ_2M + SZ_1G);
    expect(vtd({ pgsizeBitmap: SZ_4K + domainSuperPgsizeBitmap(1) + 0x10000 }).cfg.pgsizeBitmap).toBe(SZ_4K + SZ_2M);
    expect(errno(allocVtdssPgtable({ pgsizeBitmap: SZ_2M, ias: 48, oas: 52 }))).toBe("EINVAL");
    expect(errno(allocVtdssPgtable({ pgsizeBitmap: BM, ias: 48, oas: 52, quirks: 1 }))).toBe("EINVAL");
  });
});

describe("entry encoding (fmt/vtdss.h)", () => {
  it("writes R, W, PS and address bits 51:12; tables carry R|W and the next table's address", () => {
    const ops = vtd();
    ops.mapPages(G4, PA, SZ_4K, 1, RW | IOMMU_CACHE, { bytes: 0 });
    expect(leafOf(ops, G4)).toEqual({ level: 0, pte: 3n | BigInt(PA) });
    ops.mapPages(G4 + SZ_2M, 2 ** 51 + SZ_2M, SZ_2M, 1, IOMMU_READ, { bytes: 0 });
    expect(leafOf(ops, G4 + SZ_2M)).toEqual({ level: 1, pte: 1n | (1n << 7n) | BigInt(2 ** 51 + SZ_2M) });
    ops.mapPages(2 * G4, PA, SZ_1G, 1, IOMMU_WRITE, { bytes: 0 });
    expect(leafOf(ops, 2 * G4)).toEqual({ level: 2, pte: 2n | (1n << 7n) | BigInt(PA) });
    const wd = newPgtableWalkData();
    ops.pgtableWalk(G4, wd);
    const base = BigInt(ops.cfg.tableBase);
    expect((BigInt(wd.hi[3]!) << 32n) | BigInt(wd.lo[3]!)).toBe(3n | (base + 0x1000n));
  });
});

describe("map_pages (generic_pt iommu_pt.h)", () => {
  it("rejects prot without R or W (WARN), a paddr beyond oas, zero length, misalignment and ranges beyond ias", () => {
    const rec = new Recorder();
    const ops = vtd({ oas: 40 }, rec);
    const m = { bytes: 0 };
    expect(errno(ops.mapPages(G4, PA, SZ_4K, 1, IOMMU_CACHE, m))).toBe("EINVAL");
    expect(rec.kinds()).toEqual(["bad-prot"]);
    expect(errno(ops.mapPages(G4, 2 ** 40, SZ_4K, 1, RW, m))).toBe("ERANGE");
    expect(errno(ops.mapPages(G4, PA, SZ_4K, 0, RW, m))).toBe("EINVAL");
    expect(errno(ops.mapPages(G4 + 0x800, PA, SZ_4K, 1, RW, m))).toBe("ENXIO");
    expect(errno(ops.mapPages(G4, PA + 0x800, SZ_4K, 2, RW, m))).toBe("ENXIO");
    expect(errno(ops.mapPages(2 ** 48 - SZ_4K, PA, SZ_4K, 2, RW, m))).toBe("ERANGE");
    expect(m.bytes).toBe(0);
    expect(ops.tablePages()).toBe(1);
  });

  it("maps the whole range in one call, choosing the largest leaf the alignment allows", () => {
    const ops = vtd();
    const m = { bytes: 0 };
    expect(ops.mapPages(G4 + 100 * SZ_4K, PA, SZ_4K, 1000, RW, m)).toBe(0);
    expect(m.bytes).toBe(1000 * SZ_4K);
    expect(leafOf(ops, G4 + 700 * SZ_4K).level).toBe(0);
    // 512 x 4K at 2M-aligned addresses becomes one 2M leaf.
    expect(ops.mapPages(G4 + SZ_1G, PA, SZ_4K, 512, RW, m)).toBe(0);
    expect(leafOf(ops, G4 + SZ_1G + 5).level).toBe(1);
    // Different offsets of iova and paddr inside 2M force 4K leaves.
    expect(ops.mapPages(G4 + 2 * SZ_1G, PA + SZ_4K, SZ_4K, 512, RW, m)).toBe(0);
    expect(leafOf(ops, G4 + 2 * SZ_1G).level).toBe(0);
    // The domain bitmap limits the choice.
    const small = vtd({ pgsizeBitmap: SZ_4K });
    expect(small.mapPages(G4, PA, SZ_2M, 1, RW, { bytes: 0 })).toBe(0);
    expect(leafOf(small, G4).level).toBe(0);
    expect(small.iovaToPhys(G4 + SZ_2M - 1)).toBe(PA + SZ_2M - 1);
  });

  it("maps past the request when the best leaf does not divide the length, as generic_pt does (PT_WARN_ON)", () => {
    const rec = new Recorder();
    const ops = vtd({}, rec);
    const m = { bytes: 0 };
    expect(ops.mapPages(G4, PA, SZ_4K, 513, RW, m)).toBe(0);
    expect(m.bytes).toBe(2 * SZ_2M);
    expect(rec.kinds()).toEqual(["map-overrun"]);
  });

  it("returns EADDRINUSE for anything mapped in the range, after mapping the pages before it", () => {
    const ops = vtd();
    ops.mapPages(G4 + 5 * SZ_4K, PA, SZ_4K, 1, RW, { bytes: 0 });
    const m = { bytes: 0 };
    expect(errno(ops.mapPages(G4, 2 * PA, SZ_4K, 10, RW, m))).toBe("EADDRINUSE");
    expect(m.bytes).toBe(5 * SZ_4K);
    expect(ops.iovaToPhys(G4 + 4 * SZ_4K)).toBe(2 * PA + 4 * SZ_4K);
    expect(ops.iovaToPhys(G4 + 5 * SZ_4K)).toBe(PA);
    // A larger leaf over a table that still maps something.
    expect(errno(ops.mapPages(G4, 2 * PA, SZ_2M, 1, RW, { bytes: 0 }))).toBe("EADDRINUSE");
    // A smaller page inside a large leaf.
    ops.mapPages(G4 + SZ_1G, PA, SZ_2M, 1, RW, { bytes: 0 });
    expect(errno(ops.mapPages(G4 + SZ_1G + SZ_4K, PA, SZ_4K, 1, RW, { bytes: 0 }))).toBe("EADDRINUSE");
    expect(ops.iovaToPhys(G4 + SZ_1G + SZ_4K)).toBe(PA + SZ_4K);
  });

  it("lets a larger leaf replace empty tables, freeing them after a walk flush (kunit test_map_table_to_oa)", () => {
    const rec = new Recorder();
    const ops = vtd({}, rec);
    ops.mapPages(G4, PA, SZ_4K, 4, RW, { bytes: 0 });
    expect(ops.tablePages()).toBe(4);
    expect(ops.unmapPages(G4, SZ_4K, 4, null)).toBe(4 * SZ_4K);
    expect(ops.tablePages()).toBe(4);
    rec.clear();
    expect(ops.mapPages(G4, PA, SZ_1G, 1, RW, { bytes: 0 })).toBe(0);
    expect(ops.tablePages()).toBe(2);
    expect(rec.calls).toEqual([{ op: "flushWalk", iova: G4, size: SZ_1G, granule: SZ_4K }]);
    expect(ops.iovaToPhys(G4 + 12345)).toBe(PA + 12345);
  });
});

describe("unmap_pages (generic_pt __unmap_range)", () => {
  it("removes a whole large entry when the range ends inside it and returns its size (kunit test_unmap_split)", () => {
    const ops = vtd();
    ops.mapPages(G4, PA, SZ_2M, 1, RW, { bytes: 0 });
    expect(ops.unmapPages(G4, SZ_4K, 1, null)).toBe(SZ_2M);
    expect(ops.iovaToPhys(G4 + SZ_4K)).toBe(0);
  });

  it("stops without unmapping when the range starts inside a large entry", () => {
    const ops = vtd();
    ops.mapPages(G4, PA, SZ_2M, 1, RW, { bytes: 0 });
    expect(ops.unmapPages(G4 + SZ_4K, SZ_4K, 1, null)).toBe(0);
    expect(ops.iovaToPhys(G4 + SZ_4K)).toBe(PA + SZ_4K);
  });

  it("stops at a hole and returns the bytes done so far", () => {
    const ops = vtd();
    ops.mapPages(G4, PA, SZ_4K, 3, RW, { bytes: 0 });
    ops.mapPages(G4 + 4 * SZ_4K, PA, SZ_4K, 1, RW, { bytes: 0 });
    expect(ops.unmapPages(G4, SZ_4K, 5, null)).toBe(3 * SZ_4K);
    expect(ops.iovaToPhys(G4 + 4 * SZ_4K)).toBe(PA);
    expect(ops.unmapPages(G4, SZ_4K, 1, null)).toBe(0);
  });

  it("unmaps a range made of several earlier maps of different sizes in one call", () => {
    const ops = vtd();
    ops.mapPages(G4 + SZ_2M - 2 * SZ_4K, PA, SZ_4K, 2, RW, { bytes: 0 });
    ops.mapPages(G4 + SZ_2M, PA, SZ_2M, 1, RW, { bytes: 0 });
    expect(ops.unmapPages(G4 + SZ_2M - 2 * SZ_4K, SZ_4K, 2 + 512, null)).toBe(2 * SZ_4K + SZ_2M);
  });

  it("frees tables fully covered by the range through the gather, and only after the sync", () => {
    const rec = new Recorder();
    const ops = vtd({ pgsizeBitmap: SZ_4K }, rec);
    const pages = SZ_1G / SZ_4K;
    const m = { bytes: 0 };
    expect(ops.mapPages(G4, PA, SZ_4K, pages, RW, m)).toBe(0);
    expect(m.bytes).toBe(SZ_1G);
    // top, one level-2 table, one level-1 table and 512 leaf tables.
    expect(ops.tablePages()).toBe(515);
    const gather = newIommuIotlbGather();
    expect(ops.unmapPages(G4, SZ_4K, pages, gather)).toBe(SZ_1G);
    expect([gather.start, gather.end]).toEqual([G4, G4 + SZ_1G - 1]);
    expect(gather.freelist.length).toBe(513);
    expect(ops.tablePages()).toBe(515);
    gather.freelist.put();
    expect(ops.tablePages()).toBe(2);
    // Nothing goes through the io-pgtable flush ops when a gather is given.
    expect(rec.calls).toEqual([]);
  });

  it("without a gather, flushes the walk cache and frees the covered tables at once", () => {
    const rec = new Recorder();
    const ops = vtd({ pgsizeBitmap: SZ_4K }, rec);
    ops.mapPages(G4, PA, SZ_4K, 512, RW, { bytes: 0 });
    expect(ops.unmapPages(G4, SZ_4K, 512, null)).toBe(SZ_2M);
    expect(rec.calls).toEqual([{ op: "flushWalk", iova: G4, size: SZ_2M, granule: SZ_4K }]);
    expect(ops.tablePages()).toBe(3);
  });

  it("keeps a table the range does not fully cover, and an emptied table stops a later covering unmap", () => {
    const ops = vtd({ pgsizeBitmap: SZ_4K });
    ops.mapPages(G4, PA, SZ_4K, 2, RW, { bytes: 0 });
    expect(ops.unmapPages(G4, SZ_4K, 2, null)).toBe(2 * SZ_4K);
    expect(ops.tablePages()).toBe(4);
    ops.mapPages(G4 + SZ_2M, PA, SZ_4K, 512, RW, { bytes: 0 });
    // The walk enters the empty table at G4 first and stops at its first (empty) entry.
    expect(ops.unmapPages(G4, SZ_4K, 1024, null)).toBe(0);
    expect(ops.iovaToPhys(G4 + SZ_2M)).toBe(PA);
  });

  it("returns 0 for a zero length or a range beyond ias", () => {
    const ops = vtd();
    ops.mapPages(G4, PA, SZ_4K, 1, RW, { bytes: 0 });
    expect(ops.unmapPages(G4, SZ_4K, 0, null)).toBe(0);
    expect(ops.unmapPages(2 ** 48 - SZ_4K, SZ_4K, 2, null)).toBe(0);
  });
});

describe("iova_to_phys", () => {
  it("returns 0 outside the table and names the kernel's (phys_addr_t)-ERANGE", () => {
    const rec = new Recorder();
    const ops = vtd({ ias: 39 }, rec);
    expect(ops.iovaToPhys(2 ** 39)).toBe(0);
    expect(rec.kinds()).toEqual(["iova-to-phys-erange"]);
  });

  it("translates 1G leaves at the top level of a 3-level table", () => {
    const ops = vtd({ ias: 39 });
    expect(ops.mapPages(2 ** 39 - SZ_1G, PA, SZ_1G, 1, RW, { bytes: 0 })).toBe(0);
    expect(ops.tablePages()).toBe(1);
    expect(ops.iovaToPhys(2 ** 39 - 1)).toBe(PA + SZ_1G - 1);
  });
});

describe("free", () => {
  it("frees every table", () => {
    const ops = vtd();
    ops.mapPages(G4, PA, SZ_4K, 1000, RW, { bytes: 0 });
    ops.free();
    expect(ops.tablePages()).toBe(0);
    expect(ops.tableBytes()).toBe(0);
  });
});
