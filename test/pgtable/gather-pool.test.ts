/** iommu_iotlb_gather helpers, the pages list, and the table page pool. */
import { describe, expect, it } from "vitest";
import {
  iommuIotlbGatherAddPage,
  iommuIotlbGatherAddRange,
  iommuIotlbGatherInit,
  iommuIotlbGatherIsDisjoint,
  iommuIotlbGatherQueued,
  newIommuIotlbGather,
  type IommuIotlbGather,
} from "../../src/pgtable/gather.ts";
import { TablePool } from "../../src/pgtable/pool.ts";
import { SZ_2M, SZ_4K, bitmapAnd, bitmapCovers, bitmapMax, bitmapMin, bitmapOf, ilog2, isPowerOfTwo, pgsizesOf } from "../../src/pgtable/sizes.ts";

describe("iommu_iotlb_gather", () => {
  it("starts empty (start ULONG_MAX, end 0) and widens to cover every added range", () => {
    const g = newIommuIotlbGather();
    expect([g.start > 2 ** 64, g.end, g.pgsize, iommuIotlbGatherQueued(g)]).toEqual([true, 0, 0, false]);
    expect(iommuIotlbGatherIsDisjoint(g, 0x5000, SZ_4K)).toBe(false);
    iommuIotlbGatherAddRange(g, 0x5000, SZ_4K);
    iommuIotlbGatherAddRange(g, 0x2000, SZ_4K);
    expect([g.start, g.end]).toEqual([0x2000, 0x5fff]);
  });

  it("treats adjacent ranges as joint and gaps as disjoint", () => {
    const g = newIommuIotlbGather();
    iommuIotlbGatherAddRange(g, 0x10000, 0x1000);
    expect(iommuIotlbGatherIsDisjoint(g, 0x11000, 0x1000)).toBe(false);
    expect(iommuIotlbGatherIsDisjoint(g, 0xf000, 0x1000)).toBe(false);
    expect(iommuIotlbGatherIsDisjoint(g, 0x12000, 0x1000)).toBe(true);
    expect(iommuIotlbGatherIsDisjoint(g, 0xe000, 0x1000)).toBe(true);
  });

  it("syncs before adding a page of another size or a disjoint page", () => {
    const g = newIommuIotlbGather();
    const synced: [number, number, number][] = [];
    const sync = (x: IommuIotlbGather) => {
      synced.push([x.start, x.end, x.pgsize]);
      iommuIotlbGatherInit(x);
    };
    iommuIotlbGatherAddPage(g, 0x1000, SZ_4K, sync);
    iommuIotlbGatherAddPage(g, 0x2000, SZ_4K, sync);
    expect(synced).toEqual([]);
    iommuIotlbGatherAddPage(g, SZ_2M, SZ_2M, sync);
    iommuIotlbGatherAddPage(g, 8 * SZ_2M, SZ_2M, sync);
    expect(synced).toEqual([
      [0x1000, 0x2fff, SZ_4K],
      [SZ_2M, 2 * SZ_2M - 1, SZ_2M],
    ]);
    expect([g.start, g.end, g.pgsize]).toEqual([8 * SZ_2M, 9 * SZ_2M - 1, SZ_2M]);
  });

  it("keeps queued pages until put; re-initialising without a put leaks them, as in the kernel", () => {
    const pool = new TablePool(SZ_4K, 0x4000_0000);
    const g = newIommuIotlbGather(true);
    expect(iommuIotlbGatherQueued(g)).toBe(true);
    g.freelist.add(pool, pool.alloc(1, SZ_4K), SZ_4K);
    g.freelist.add(pool, pool.alloc(1, SZ_4K), SZ_4K);
    expect(pool.allocations).toBe(2);
    g.freelist.put();
    expect([pool.allocations, g.freelist.length]).toEqual([0, 0]);
    g.freelist.add(pool, pool.alloc(1, SZ_4K), SZ_4K);
    iommuIotlbGatherInit(g);
    expect([pool.allocations, g.freelist.length, g.queued]).toEqual([1, 0, false]);
  });
});

describe("TablePool", () => {
  it("hands out zeroed granule pages with physical addresses from its base, recycling freed pages", () => {
    const pool = new TablePool(SZ_4K, 0x4000_0000, 1);
    const a = pool.alloc(1, SZ_4K);
    const b = pool.alloc(1, SZ_4K);
    expect([pool.physOf(a), pool.physOf(b)]).toEqual([0x4000_0000, 0x4000_1000]);
    expect(pool.offsetOf(0x4000_1000)).toBe(b);
    pool.words[b + 7] = 0xdead;
    pool.free(b, 1, SZ_4K);
    const c = pool.alloc(1, SZ_4K);
    expect(c).toBe(b);
    expect(pool.words[b + 7]).toBe(0);
    expect([pool.allocations, pool.bytes]).toEqual([2, 2 * SZ_4K]);
  });

  it("grows without losing contents and accounts multi-page and sub-page allocations", () => {
    const pool = new TablePool(SZ_4K, 0, 1);
    const pgd = pool.alloc(2, 8192);
    pool.words[pgd + 1500] = 42;
    for (let i = 0; i < 100; i++) pool.alloc(1, SZ_4K);
    expect(pool.words[pgd + 1500]).toBe(42);
    const small = new TablePool(SZ_4K, 0);
    small.alloc(1, 64);
    expect([small.allocations, small.bytes]).toEqual([1, 64]);
    expect(() => new TablePool(SZ_4K, 0x800)).toThrow(RangeError);
  });

  it("reuses a released pool's memory with every page zeroed, and refuses to allocate once released", () => {
    const a = new TablePool(SZ_4K, 0, 1);
    for (let i = 0; i < 40; i++) a.words.fill(0xffffffff, a.alloc(1, SZ_4K), (i + 1) * 1024);
    const buffer = a.words.buffer;
    a.release();
    expect(a.words.length).toBe(0);
    expect(() => a.alloc(1, SZ_4K)).toThrow(RangeError);
    // The next pool takes the dirty buffer (the smallest spare that fits) and zeroes what it hands out.
    const b = new TablePool(SZ_4K, 0, 1);
    expect(b.words.buffer).toBe(buffer);
    for (let i = 0; i < 3; i++) b.alloc(1, SZ_4K);
    b.release();
    // A third user must still see zeros where the first one wrote, beyond what the second one used.
    const c = new TablePool(SZ_4K, 0, 1);
    expect(c.words.buffer).toBe(buffer);
    for (let i = 0; i < 40; i++) {
      const off = c.alloc(1, SZ_4K);
      expect(c.words.subarray(off, off + 1024).every((x) => x === 0)).toBe(true);
    }
  });
});

describe("page-size bitmaps beyond 32 bits", () => {
  it("handles sizes above 2^32 without 32-bit truncation", () => {
    const bm = bitmapOf(SZ_4K, SZ_2M, 2 ** 42);
    expect(pgsizesOf(bm)).toEqual([SZ_4K, SZ_2M, 2 ** 42]);
    expect([bitmapMin(bm), bitmapMax(bm)]).toEqual([SZ_4K, 2 ** 42]);
    expect(bitmapAnd(bm, bitmapOf(2 ** 42, SZ_4K))).toBe(2 ** 42 + SZ_4K);
    expect(bitmapCovers(bm, 2 ** 42 + SZ_2M)).toBe(true);
    expect(bitmapCovers(bm, 2 ** 43)).toBe(false);
    expect([isPowerOfTwo(2 ** 42), isPowerOfTwo(3 * SZ_4K), ilog2(2 ** 42), ilog2(6)]).toEqual([true, false, 42, -1]);
  });
});
