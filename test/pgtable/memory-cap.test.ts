/**
 * The page-table memory cap: pools draw their buffers from a budget; a map
 * that would need more fails with ENOMEM before it allocates, in every
 * format, and the memory goes back to the budget when a table is freed.
 */
import { describe, expect, it } from "vitest";
import { allocIoPgtableOps } from "../../src/pgtable/index.ts";
import { MOCK_APERTURE_START, MOCK_IO_PAGE_SIZE } from "../../src/pgtable/mock.ts";
import { PGTABLE_MEMORY_DEFAULT_LIMIT, PgtableMemory, TablePool } from "../../src/pgtable/pool.ts";
import { SZ_1G, SZ_2M, SZ_4K, bitmapOf } from "../../src/pgtable/sizes.ts";
import { IOMMU_READ, IOMMU_WRITE, type IoPgtableOps } from "../../src/pgtable/types.ts";
import { must, Recorder } from "./helpers.ts";

const RW = IOMMU_READ | IOMMU_WRITE;

describe("PgtableMemory and TablePool", () => {
  it("charges every pool's buffer to the budget and refunds it on release", () => {
    const mem = new PgtableMemory(64 * SZ_4K);
    const a = new TablePool(SZ_4K, 0, 4, mem);
    const b = new TablePool(SZ_4K, 0, 4, mem);
    expect(mem.used).toBe(8 * SZ_4K);
    for (let i = 0; i < 20; i++) expect(a.alloc(1, SZ_4K)).toBeGreaterThanOrEqual(0);
    expect(mem.used).toBe(32 * SZ_4K + 4 * SZ_4K);
    a.release();
    b.release();
    expect(mem.used).toBe(0);
  });

  it("grows no further than the budget and then refuses: alloc returns -1 and nothing changes", () => {
    const mem = new PgtableMemory(10 * SZ_4K);
    const pool = new TablePool(SZ_4K, 0x4000_0000, 4, mem);
    const got: number[] = [];
    for (;;) {
      const off = pool.alloc(1, SZ_4K);
      if (off < 0) break;
      got.push(off);
    }
    expect(got).toHaveLength(10);
    expect([pool.allocations, pool.bytes, mem.used]).toEqual([10, 10 * SZ_4K, 10 * SZ_4K]);
    expect(pool.canAlloc(1)).toBe(false);
    // A freed page is a page again.
    pool.free(got[3]!, 1, SZ_4K);
    expect(pool.canAlloc(1)).toBe(true);
    expect(pool.alloc(1, SZ_4K)).toBe(got[3]);
  });

  it("a pool never grows past 4 GiB, whatever the budget: the alloc fails before anything is allocated", () => {
    const mem = new PgtableMemory(8 * 2 ** 30);
    const pool = new TablePool(SZ_4K, 0, 4, mem);
    const before = [pool.words.length, mem.used];
    expect(pool.alloc(2 ** 20 + 1, SZ_4K)).toBe(-1);
    expect([pool.words.length, mem.used, pool.allocations]).toEqual([...before, 0]);
    expect(mem.used).toBe(pool.words.byteLength);
  });

  it("a budget too small for a pool's first pages leaves it empty: its first alloc fails", () => {
    const mem = new PgtableMemory(SZ_4K - 1);
    const pool = new TablePool(SZ_4K, 0, 4, mem);
    expect([pool.words.length, mem.used, pool.alloc(1, SZ_4K)]).toEqual([0, 0, -1]);
  });

  it("the default cap is 128 MiB, and a limit must be a whole number of bytes", () => {
    expect(PGTABLE_MEMORY_DEFAULT_LIMIT).toBe(128 * 2 ** 20);
    expect(new PgtableMemory().limit).toBe(PGTABLE_MEMORY_DEFAULT_LIMIT);
    expect(() => new PgtableMemory(-1)).toThrow(RangeError);
    expect(() => new PgtableMemory(1.5)).toThrow(RangeError);
  });
});

/** A table of `fmt` on a budget of `pages` 4 KiB pages, with its findings recorded. */
function table(fmt: "ARM_64_LPAE_S1" | "VTDSS" | "IOMMUFD_MOCK", pages: number) {
  const rec = new Recorder();
  const memory = new PgtableMemory(pages * SZ_4K);
  const cfg =
    fmt === "IOMMUFD_MOCK"
      ? { pgsizeBitmap: MOCK_IO_PAGE_SIZE, ias: 32, oas: 32 }
      : { pgsizeBitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias: 48, oas: 48 };
  const ops = must(allocIoPgtableOps(fmt, { ...cfg, tlb: fmt === "ARM_64_LPAE_S1" ? rec.tlb : undefined, onFinding: rec.onFinding, memory }));
  return { ops, rec, memory };
}

/** Maps one page of `size` at each of `count` IOVAs `stride` apart; the index of the first that fails and its errno. */
function fill(ops: IoPgtableOps, base: number, stride: number, size: number, count: number): { at: number; errno: string | null } {
  for (let i = 0; i < count; i++) {
    const mapped = { bytes: 0 };
    const r = ops.mapPages(base + i * stride, 0x1_0000_0000 + i * size, size, 1, RW, mapped);
    if (r !== 0) return { at: i, errno: r.errno };
    expect(mapped.bytes).toBe(size);
  }
  return { at: count, errno: null };
}

describe("a map beyond the memory cap fails with ENOMEM before it allocates", () => {
  for (const fmt of ["ARM_64_LPAE_S1", "VTDSS"] as const) {
    it(`${fmt}: 4K pages 1 GiB apart, each needing new tables, until the budget is spent`, () => {
      const { ops, rec, memory } = table(fmt, 24);
      const r = fill(ops, 0, SZ_1G, SZ_4K, 100);
      expect(r.errno).toBe("ENOMEM");
      expect(r.at).toBeGreaterThan(3);
      expect(memory.used).toBeLessThanOrEqual(memory.limit);
      // The failing call changed nothing: same tables, same mappings, and it says why.
      const pages = ops.tablePages();
      const mapped = { bytes: 0 };
      const again = ops.mapPages(r.at * SZ_1G, 0x4000_0000, SZ_4K, 1, RW, mapped);
      expect([again !== 0 && again.errno, mapped.bytes, ops.tablePages()]).toEqual(["ENOMEM", 0, pages]);
      expect(ops.iovaToPhys(r.at * SZ_1G)).toBe(0);
      expect(ops.iovaToPhys((r.at - 1) * SZ_1G)).toBe(0x1_0000_0000 + (r.at - 1) * SZ_4K);
      expect(rec.findings.filter((f) => f.kind === "table-alloc-failed").length).toBeGreaterThanOrEqual(2);
      // Where tables exist, pages still map.
      expect(ops.mapPages(SZ_4K, 0x2000_0000, SZ_4K, 1, RW, { bytes: 0 })).toBe(0);
      // Freeing the table returns its memory.
      ops.free();
      expect(memory.used).toBe(0);
    });
  }

  it("IOMMUFD_MOCK: counts the chunks a map needs before it stores anything", () => {
    const { ops, rec, memory } = table("IOMMUFD_MOCK", 3);
    // Three 1 MiB chunks fit; a map across four more does not, and stores nothing.
    expect(ops.mapPages(MOCK_APERTURE_START, 0x10_0000, MOCK_IO_PAGE_SIZE, 3 * 512, RW, { bytes: 0 })).toBe(0);
    const mapped = { bytes: 0 };
    const r = ops.mapPages(MOCK_APERTURE_START + 4 * 2 ** 20, 0x10_0000, MOCK_IO_PAGE_SIZE, 4 * 512, RW, mapped);
    expect([r !== 0 && r.errno, mapped.bytes, ops.iovaToPhys(MOCK_APERTURE_START + 4 * 2 ** 20)]).toEqual(["ENOMEM", 0, 0]);
    expect(rec.findings.map((f) => f.kind)).toContain("table-alloc-failed");
    expect(memory.used).toBe(3 * SZ_4K);
  });

  it("a table whose first table does not fit is not created: ENOMEM", () => {
    const memory = new PgtableMemory(0);
    const r = allocIoPgtableOps("ARM_64_LPAE_S1", { pgsizeBitmap: bitmapOf(SZ_4K, SZ_2M), ias: 48, oas: 48, memory });
    expect(r instanceof Object && "errno" in r && r.errno).toBe("ENOMEM");
    expect(memory.used).toBe(0);
  });

  it("the 4K fast path hands a table it cannot install to the general walk, which fails with ENOMEM", () => {
    // Room for the pgd and one more table: a 4K page needs two (levels 1 and 2).
    const { ops, rec } = table("ARM_64_LPAE_S1", 2);
    const mapped = { bytes: 0 };
    const r = ops.mapPages(0x1000, 0x1000, SZ_4K, 1, RW, mapped);
    expect([r !== 0 && r.errno, mapped.bytes]).toEqual(["ENOMEM", 0]);
    expect(rec.findings.map((f) => f.kind)).toEqual(["table-alloc-failed"]);
  });
});
