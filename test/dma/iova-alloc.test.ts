import { describe, expect, it } from "vitest";
import { IOVA_ANCHOR, initIovaDomain, iovaRcacheRange } from "../../src/dma/iova.ts";
import { isErr, type KError } from "../../src/lib/errno.ts";
import { LIMIT_32, domain, expectConsistent, ok, span } from "./iova-helpers.ts";

const DMA_32BIT_PFN = 0x10_0000;

describe("init_iova_domain", () => {
  it("derives dma_32bit_pfn and max32_alloc_size from the granule and starts with the anchor alone", () => {
    const d = domain(1);
    expect([d.iovaShift, d.dma32bitPfn, d.max32AllocSize, d.treeNodesLive]).toEqual([12, DMA_32BIT_PFN, DMA_32BIT_PFN, 0]);
    expect([d.pfnLo(d.anchor), d.pfnHi(d.anchor)]).toEqual([IOVA_ANCHOR, IOVA_ANCHOR]);
    expect([d.cachedNode, d.cached32Node]).toEqual([d.anchor, d.anchor]);
    expect(domain(1, {}, 512).dma32bitPfn).toBe(2 ** 23);
    expect(domain(1).pfnMax).toBe(2 ** 52 - 1);
    expectConsistent(d);
  });

  it("refuses a granule that is not a power of two of at most PAGE_SIZE (the kernel BUGs)", () => {
    for (const g of [0, 3, 4095, 8192]) {
      const r = initIovaDomain(g, 1);
      expect(isErr(r) && r.errno).toBe("EINVAL");
    }
    const start = initIovaDomain(4096, -1);
    expect(isErr(start) && start.errno).toBe("EINVAL");
    const cpus = initIovaDomain(4096, 1, { nrCpus: 0 });
    expect(isErr(cpus) && cpus.errno).toBe("EINVAL");
  });

  it("fails with ENOMEM when the per-CPU magazines cannot be allocated", () => {
    // 6 size classes x (loaded + prev) per possible CPU.
    const r = initIovaDomain(4096, 1, { nrCpus: 2, magazineLimit: 23 });
    expect(isErr(r) && r.errno).toBe("ENOMEM");
    expect(domain(1, { nrCpus: 2, magazineLimit: 24 }).magazinesLive).toBe(24);
  });
});

describe("alloc_iova", () => {
  it("allocates top-down from the limit, each range directly below the previous one", () => {
    const d = domain(1);
    expect(span(d, d.allocIova(1, LIMIT_32, true))).toEqual([0xfffff, 0xfffff]);
    expect(span(d, d.allocIova(1, LIMIT_32, true))).toEqual([0xffffe, 0xffffe]);
    expect(span(d, d.allocIova(4, LIMIT_32, true))).toEqual([0xffff8, 0xffffb]);
    expectConsistent(d);
  });

  it("aligns to roundup_pow_of_two(size) without rounding the size", () => {
    const d = domain(1);
    ok(d.allocIova(1, LIMIT_32, true));
    // 0xfffff - 3 = 0xffffc, already a multiple of 4; the range stays 3 long.
    expect(span(d, d.allocIova(3, LIMIT_32, true))).toEqual([0xffffc, 0xffffe]);
    // Below 0xffffc: 0xffffc - 5 = 0xffff7, rounded down to a multiple of 8.
    expect(span(d, d.allocIova(5, LIMIT_32, true))).toEqual([0xffff0, 0xffff4]);
    expect(d.iovaSize(d.findIova(0xffff0)!)).toBe(5);
  });

  it("packs ranges without alignment when size_aligned is false", () => {
    const d = domain(1);
    ok(d.allocIova(1, LIMIT_32, false));
    expect(span(d, d.allocIova(3, LIMIT_32, false))).toEqual([0xffffc, 0xffffe]);
    expect(span(d, d.allocIova(5, LIMIT_32, false))).toEqual([0xffff7, 0xffffb]);
  });

  it("respects the limit and start_pfn, and fails with ENOMEM when nothing fits", () => {
    const d = domain(0x100);
    expect(span(d, d.allocIova(16, 0x1ff, true))).toEqual([0x1f0, 0x1ff]);
    expect(span(d, d.allocIova(0xf0, 0x1ff, false))).toEqual([0x100, 0x1ef]);
    const r = d.allocIova(1, 0x1ff, true);
    expect(isErr(r) && r.errno).toBe("ENOMEM");
    expect(d.treeNodesLive).toBe(2);
    expectConsistent(d);
  });

  it("allocates above 4 GiB for a 64-bit limit, caching that walk in cached_node", () => {
    const d = domain(1);
    const n = ok(d.allocIova(1, 2 ** 52 - 1, true));
    expect([d.pfnLo(n), d.cachedNode, d.cached32Node]).toEqual([2 ** 52 - 1, n, d.anchor]);
    // A limit beyond the IOVA space is the top of the space.
    expect(span(d, d.allocIova(1, Number.MAX_SAFE_INTEGER, true))).toEqual([2 ** 52 - 2, 2 ** 52 - 2]);
  });

  it("rejects sizes and limits no kernel caller could pass", () => {
    const d = domain(1);
    for (const [size, limit] of [
      [0, LIMIT_32],
      [1.5, LIMIT_32],
      [1, -1],
    ] as const) {
      const r = d.allocIova(size, limit, true);
      expect(isErr(r) && r.errno).toBe("EINVAL");
    }
  });
});

describe("cached nodes", () => {
  it("points cached32_node at the latest allocation below 4 GiB and moves it up past a freed range", () => {
    const d = domain(1);
    const a = ok(d.allocIova(1, LIMIT_32, true));
    const b = ok(d.allocIova(1, LIMIT_32, true));
    const c = ok(d.allocIova(1, LIMIT_32, true));
    expect([d.cached32Node, d.cachedNode]).toEqual([c, d.anchor]);
    // Freeing the range above the cached node moves the cache to that range's successor.
    d.__freeIova(b);
    expect(d.cached32Node).toBe(a);
    // The walk from there finds b's pfn again: a freed range is reused.
    expect(span(d, d.allocIova(1, LIMIT_32, true))).toEqual([0xffffe, 0xffffe]);
    expectConsistent(d);
  });

  it("leaves cached32_node alone when a range below it is freed, and moves it up when the cached range itself goes", () => {
    const d = domain(1);
    const a = ok(d.allocIova(1, LIMIT_32, true));
    const b = ok(d.allocIova(1, LIMIT_32, true));
    const c = ok(d.allocIova(1, LIMIT_32, true));
    d.__freeIova(b);
    expect(d.cached32Node).toBe(a);
    d.__freeIova(c);
    expect(d.cached32Node).toBe(a);
    d.__freeIova(a);
    expect(d.cached32Node).toBe(d.anchor);
    expectConsistent(d);
  });

  it("keeps pointing at the latest allocation while the node pool grows", () => {
    const d = domain(1);
    for (let i = 0; i < 300; i++) {
      const n = ok(d.allocIova(1, LIMIT_32, true));
      expect([d.cached32Node, d.cachedNode]).toEqual([n, d.anchor]);
    }
  });

  it("retries once from the limit, above the cached node, when nothing fits below it", () => {
    // Space from 0x7fff0. A low-limit allocation leaves cached32_node at 0x7ffff,
    // with only 15 pfns below it; the space above is found by the retry.
    const d = domain(0x7fff0);
    ok(d.allocIova(1, LIMIT_32, true));
    const low = ok(d.allocIova(1, 0x7ffff, true));
    expect(d.cached32Node).toBe(low);
    expect(span(d, d.allocIova(16, LIMIT_32, false))).toEqual([0xfffef, 0xffffe]);
    expectConsistent(d);
  });

  it("does not find space above the limit on the retry", () => {
    const d = domain(0x7fff0);
    ok(d.allocIova(1, 0x7ffff, true));
    const r = d.allocIova(16, 0x80000, false);
    expect(isErr(r) && r.errno).toBe("ENOMEM");
  });
});

describe("max32_alloc_size", () => {
  it("fails fast below 4 GiB once a size has failed, and resets when a range below 4 GiB is freed", () => {
    const d = domain(1);
    // 15 pfns below limit 0xf: a 16-granule request fails and records its size.
    const first = d.allocIova(16, 0xf, false);
    expect(isErr(first) && first.errno).toBe("ENOMEM");
    expect(d.max32AllocSize).toBe(16);
    // A request of that size fails without walking, even where it would fit.
    const fast = d.allocIova(16, LIMIT_32, false) as KError;
    expect([fast.errno, /known full/.test(fast.message)]).toEqual(["ENOMEM", true]);
    // Smaller sizes and 64-bit limits are not affected.
    const small = ok(d.allocIova(8, LIMIT_32, true));
    ok(d.allocIova(16, 0x1_ffff_ffff, true));
    d.__freeIova(small);
    expect(d.max32AllocSize).toBe(DMA_32BIT_PFN);
    expect(span(d, d.allocIova(16, LIMIT_32, false))).toEqual([0xffff0, 0xfffff]);
  });

  it("is not reset by freeing a range above 4 GiB", () => {
    const d = domain(1);
    const high = ok(d.allocIova(1, 0x1_ffff_ffff, true));
    // 16 pfns do not fit between start_pfn 1 and the limit 0xf: ENOMEM, and alloc_iova records 16.
    const r = d.allocIova(16, 0xf, false);
    expect(isErr(r) && r.errno).toBe("ENOMEM");
    expect(d.max32AllocSize).toBe(16);
    d.__freeIova(high);
    expect(d.max32AllocSize).toBe(16);
  });
});

describe("find_iova and free_iova", () => {
  it("finds the range containing a pfn and frees it; an unknown pfn is a silent no-op", () => {
    const d = domain(1);
    const n = ok(d.allocIova(4, LIMIT_32, true));
    expect([d.findIova(0xffffc), d.findIova(0xfffff), d.findIova(0xffffb)]).toEqual([n, n, null]);
    d.freeIova(0x1234);
    expect([d.treeNodesLive, d.warnings]).toEqual([1, []]);
    d.freeIova(0xffffe);
    expect([d.treeNodesLive, d.findIova(0xffffc)]).toEqual([0, null]);
    expectConsistent(d);
  });

  it("keeps the anchor when asked to free it, with a warning", () => {
    const d = domain(1);
    d.freeIova(IOVA_ANCHOR);
    expect(d.findIova(IOVA_ANCHOR)).toBe(d.anchor);
    expect(d.warnings).toHaveLength(1);
    expectConsistent(d);
  });

  it("refuses to free a handle that is not a live range", () => {
    const d = domain(1);
    const n = ok(d.allocIova(1, LIMIT_32, true));
    d.__freeIova(n);
    expect(() => d.__freeIova(n)).toThrow(/not a live IOVA range/);
  });
});

describe("reserve_iova", () => {
  it("takes a range out of use: allocations go around it", () => {
    const d = domain(1);
    const r = ok(d.reserveIova(0xffff0, 0xffffe));
    expect(d.findIova(0xffff5)).toBe(r);
    expect(span(d, d.allocIova(1, LIMIT_32, true))).toEqual([0xfffff, 0xfffff]);
    expect(span(d, d.allocIova(1, LIMIT_32, true))).toEqual([0xfffef, 0xfffef]);
    expectConsistent(d);
  });

  it("returns the existing range when the request is already covered", () => {
    const d = domain(1);
    const r = ok(d.reserveIova(100, 200));
    expect(d.reserveIova(120, 180)).toBe(r);
    expect([d.treeNodesLive, span(d, r)]).toEqual([1, [100, 200]]);
  });

  it("lowers an overlapping range's pfn_lo rather than adding a range", () => {
    const d = domain(1);
    const r = ok(d.reserveIova(100, 200));
    expect(d.reserveIova(50, 150)).toBe(r);
    expect([d.treeNodesLive, span(d, r)]).toEqual([1, [50, 200]]);
    expectConsistent(d);
  });

  it("spreads over several ranges: each absorbs the gap below it, the rest above becomes a new range", () => {
    const d = domain(1);
    const a = ok(d.reserveIova(10, 20));
    const b = ok(d.reserveIova(30, 40));
    const c = ok(d.reserveIova(5, 50));
    expect([span(d, a), span(d, b), span(d, c)]).toEqual([
      [5, 20],
      [21, 40],
      [41, 50],
    ]);
    expect(d.treeNodesLive).toBe(3);
    expectConsistent(d);
  });

  it("grows an allocated range it overlaps (the kernel does not tell them apart)", () => {
    const d = domain(1);
    const n = ok(d.allocIova(1, LIMIT_32, true));
    expect(d.reserveIova(0xffff0, 0xfffff)).toBe(n);
    expect(span(d, n)).toEqual([0xffff0, 0xfffff]);
  });

  it("does not move the cached nodes", () => {
    const d = domain(1);
    ok(d.reserveIova(0x1000, 0x2000));
    expect([d.cachedNode, d.cached32Node]).toEqual([d.anchor, d.anchor]);
  });

  it("warns and fails on pfns beyond the IOVA space, and rejects an empty range", () => {
    const d = domain(1);
    const big = d.reserveIova(0, 2 ** 52);
    expect(isErr(big) && big.errno).toBe("EINVAL");
    expect(d.warnings).toHaveLength(1);
    const empty = d.reserveIova(10, 5);
    expect(isErr(empty) && empty.errno).toBe("EINVAL");
    expect(d.treeNodesLive).toBe(0);
  });
});

describe("put_iova_domain", () => {
  it("frees every range and magazine, and the domain cannot be used afterwards", () => {
    const d = domain(1);
    ok(d.allocIova(1, LIMIT_32, true));
    d.freeIovaFast(d.allocIovaFast(1, LIMIT_32, true), 1);
    d.putIovaDomain();
    expect([d.treeNodesLive + 1, d.magazinesLive]).toEqual([0, 0]);
    expect(() => d.allocIova(1, LIMIT_32, true)).toThrow(/after put_iova_domain/);
    expect(() => d.allocIovaFast(1, LIMIT_32, true)).toThrow(/after put_iova_domain/);
  });
});

describe("iova.h helpers", () => {
  it("convert between addresses, pfns and sizes", () => {
    const d = domain(1);
    const n = ok(d.allocIova(2, LIMIT_32, true));
    expect([d.iovaMask(), d.iovaOffset(0x1234), d.iovaAlign(0x1001), d.iovaPfn(0xfffff123)]).toEqual([0xfff, 0x234, 0x2000, 0xfffff]);
    expect([d.iovaDmaAddr(n), d.iovaSize(n)]).toEqual([0xffffe000, 2]);
    expect(iovaRcacheRange()).toBe(128 * 1024);
  });
});
