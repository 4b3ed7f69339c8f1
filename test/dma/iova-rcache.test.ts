import { describe, expect, it } from "vitest";
import { IOVA_MAG_SIZE, type IovaDomain } from "../../src/dma/iova.ts";
import { isErr } from "../../src/lib/errno.ts";
import { LIMIT_32, domain, expectConsistent } from "./iova-helpers.ts";

/** Allocates n ranges of `size` through the fast path and frees them all back into the cache. */
function cacheRanges(d: IovaDomain, n: number, size = 1, cpu = 0): number[] {
  const pfns = Array.from({ length: n }, () => d.allocIovaFast(size, LIMIT_32, true, cpu));
  for (const pfn of pfns) d.freeIovaFast(pfn, size, cpu);
  return pfns;
}

function sizes(d: IovaDomain, cpu: number, cls: number): [number, number] {
  const m = d.rcaches.cpuMagazines(cpu, cls);
  return [m.loaded.length, m.prev.length];
}

describe("alloc_iova_fast / free_iova_fast", () => {
  it("misses to the tree, then hits the range freed into the cache", () => {
    const d = domain(1);
    const pfn = d.allocIovaFast(1, LIMIT_32, true);
    expect([pfn, d.treeNodesLive, d.cachedPfns(0)]).toEqual([0xfffff, 1, 0]);
    d.freeIovaFast(pfn, 1);
    // Cached ranges stay allocated in the tree.
    expect([d.treeNodesLive, d.cachedPfns(0)]).toEqual([1, 1]);
    expect(d.allocIovaFast(1, LIMIT_32, true)).toBe(pfn);
    expect([d.treeNodesLive, d.cachedPfns(0)]).toEqual([1, 0]);
    expectConsistent(d);
  });

  it("rounds sizes under 32 granules up to a power of two, and caches them by order", () => {
    const d = domain(1);
    const pfn = d.allocIovaFast(3, LIMIT_32, true);
    expect([pfn % 4, d.iovaSize(d.findIova(pfn)!)]).toEqual([0, 4]);
    d.freeIovaFast(pfn, 3);
    expect(d.cachedPfns(2)).toBe(1);
    expect(d.allocIovaFast(4, LIMIT_32, true)).toBe(pfn);
    expectConsistent(d);
  });

  it("caches 32-granule ranges in the last class and sends larger ones straight to the tree", () => {
    const d = domain(1);
    const p32 = d.allocIovaFast(32, LIMIT_32, true);
    d.freeIovaFast(p32, 32);
    expect(d.cachedPfns(5)).toBe(1);
    const p33 = d.allocIovaFast(33, LIMIT_32, true);
    // Not rounded (33 granules), but size-aligned to 64.
    expect([p33 % 64, d.iovaSize(d.findIova(p33)!)]).toEqual([0, 33]);
    d.freeIovaFast(p33, 33);
    expect([d.findIova(p33), d.treeNodesLive]).toEqual([null, 1]);
  });

  it("takes a cached pfn only if the range ends at or below the limit (bound limit + 1 - size)", () => {
    const d = domain(1);
    const pfn = d.allocIovaFast(2, LIMIT_32, true);
    expect(pfn).toBe(0xffffe);
    d.freeIovaFast(pfn, 2);
    // 0xffffe + 1 > 0xffffe: the cached range does not fit, the tree serves the request.
    expect(d.allocIovaFast(2, 0xffffe, true)).toBe(0xffffc);
    expect(d.allocIovaFast(2, LIMIT_32, true)).toBe(0xffffe);
  });

  it("tries harder: scans the magazine down from the top for a pfn under the limit and swap-removes it", () => {
    const d = domain(1);
    const a = d.allocIovaFast(1, LIMIT_32, true); // 0xfffff
    const b = d.allocIovaFast(1, LIMIT_32, true); // 0xffffe
    const c = d.allocIovaFast(1, LIMIT_32, true); // 0xffffd
    const low = d.allocIovaFast(1, 0x7ffff, true);
    for (const p of [low, a, b, c]) d.freeIovaFast(p, 1);
    expect(d.rcaches.cpuMagazines(0, 0).loaded).toEqual([low, a, b, c]);
    // Only `low` is under 0x80000; c, the old top, moves into its slot.
    expect(d.allocIovaFast(1, 0x7ffff, true)).toBe(low);
    expect(d.rcaches.cpuMagazines(0, 0).loaded).toEqual([c, a, b]);
    // Nothing cached fits under 0x7ffff now: the tree serves it and the cache is untouched.
    const fromTree = d.allocIovaFast(1, 0x7ffff, true);
    expect([fromTree < low, d.cachedPfns(0)]).toEqual([true, 3]);
    expectConsistent(d);
  });

  it("swaps in the prev magazine when loaded is full on free and empty on alloc", () => {
    const d = domain(1);
    cacheRanges(d, IOVA_MAG_SIZE + 1);
    expect(sizes(d, 0, 0)).toEqual([1, IOVA_MAG_SIZE]);
    d.allocIovaFast(1, LIMIT_32, true);
    expect(sizes(d, 0, 0)).toEqual([0, IOVA_MAG_SIZE]);
    d.allocIovaFast(1, LIMIT_32, true);
    expect(sizes(d, 0, 0)).toEqual([IOVA_MAG_SIZE - 1, 0]);
    expect(d.depotSize(0)).toBe(0);
  });

  it("pushes the full loaded magazine to the depot when both are full, and refills from the depot", () => {
    const d = domain(1);
    const magazines = d.magazinesLive;
    cacheRanges(d, 2 * IOVA_MAG_SIZE + 1);
    expect([sizes(d, 0, 0), d.depotSize(0), d.depotWorkPending(0), d.magazinesLive]).toEqual([
      [1, IOVA_MAG_SIZE],
      1,
      true,
      magazines + 1,
    ]);
    // Drain loaded and prev; the next allocation frees the empty loaded and takes the depot's.
    for (let i = 0; i < IOVA_MAG_SIZE + 1; i++) d.allocIovaFast(1, LIMIT_32, true);
    expect(sizes(d, 0, 0)).toEqual([0, 0]);
    d.allocIovaFast(1, LIMIT_32, true);
    expect([sizes(d, 0, 0), d.depotSize(0), d.magazinesLive]).toEqual([[IOVA_MAG_SIZE - 1, 0], 0, magazines]);
    expectConsistent(d);
  });

  it("returns the range to the tree when no magazine can be allocated for the depot push", () => {
    const d = domain(1, { magazineLimit: 12 });
    const pfns = cacheRanges(d, 2 * IOVA_MAG_SIZE + 1);
    expect([d.depotSize(0), d.cachedPfns(0), d.findIova(pfns.at(-1)!)]).toEqual([0, 2 * IOVA_MAG_SIZE, null]);
    expectConsistent(d);
  });

  it("keeps each CPU's cache to itself", () => {
    const d = domain(1, { nrCpus: 2 });
    const pfn = d.allocIovaFast(1, LIMIT_32, true, 0);
    d.freeIovaFast(pfn, 1, 1);
    expect(d.allocIovaFast(1, LIMIT_32, true, 0)).not.toBe(pfn);
    d.currentCpu = 1;
    expect(d.allocIovaFast(1, LIMIT_32, true)).toBe(pfn);
    expect(() => d.allocIovaFast(1, LIMIT_32, true, 2)).toThrow(/CPU 2 is not online/);
  });
});

describe("depot trimming (iova_depot_work_func)", () => {
  it("returns one magazine per run to the tree while the depot holds more than the online CPUs", () => {
    const d = domain(1, { nrCpus: 2 });
    cacheRanges(d, 5 * IOVA_MAG_SIZE + 1);
    expect(d.depotSize(0)).toBe(4);
    const live = d.treeNodesLive;
    expect(d.drainDepotWork(0)).toBe(true);
    expect([d.depotSize(0), d.treeNodesLive, d.depotWorkPending(0)]).toEqual([3, live - IOVA_MAG_SIZE, true]);
    expect(d.drainDepotWork(0)).toBe(true);
    // 2 magazines for 2 online CPUs: the work stops without re-arming.
    expect(d.drainDepotWork(0)).toBe(false);
    expect([d.depotSize(0), d.depotWorkPending(0)]).toEqual([2, false]);
    // Not queued: nothing runs, even after a CPU goes offline.
    expect(d.cpuOffline(1)).toBeUndefined();
    expect(d.drainDepotWork(0)).toBe(false);
    expect(d.depotSize(0)).toBe(2);
    expectConsistent(d);
  });

  it("is only queued by a depot push", () => {
    const d = domain(1);
    cacheRanges(d, 2 * IOVA_MAG_SIZE);
    expect([d.depotSize(0), d.depotWorkPending(0), d.drainDepotWork(0)]).toEqual([0, false, false]);
    expect(() => d.drainDepotWork(6)).toThrow(/not an IOVA range cache class/);
  });
});

describe("flush and retry", () => {
  it("flushes every cache back to the tree and retries once when the tree is exhausted", () => {
    // 16 pfns of space, all cached as 1-granule ranges.
    const d = domain(0xffff0, { nrCpus: 2 });
    const pfns = Array.from({ length: 16 }, () => d.allocIovaFast(1, LIMIT_32, true));
    pfns.slice(0, 8).forEach((p) => d.freeIovaFast(p, 1, 0));
    pfns.slice(8).forEach((p) => d.freeIovaFast(p, 1, 1));
    expect(d.cachedPfns(0)).toBe(16);
    // Without the flush the 2-granule request fails: 0 is the kernel's failure value.
    expect(d.allocIovaFast(2, LIMIT_32, false)).toBe(0);
    expect(d.allocIovaFast(2, LIMIT_32, true)).toBe(0xffffe);
    expect([d.cachedPfns(0), d.treeNodesLive]).toEqual([0, 1]);
    expectConsistent(d);
  });

  it("returns 0 when even the flushed tree has no room", () => {
    const d = domain(0xffff0);
    expect(d.allocIovaFast(32, LIMIT_32, true)).toBe(0);
  });
});

describe("CPU offline (iova_cpuhp_dead)", () => {
  it("releases the CPU's cached ranges to the tree", () => {
    const d = domain(1, { nrCpus: 2 });
    cacheRanges(d, 10, 1, 1);
    cacheRanges(d, 3, 4, 1);
    cacheRanges(d, 5, 1, 0);
    const live = d.treeNodesLive;
    expect(d.cpuOffline(1)).toBeUndefined();
    expect([d.treeNodesLive, d.cachedPfns(0), d.cachedPfns(2), d.numOnlineCpus()]).toEqual([live - 13, 5, 0, 1]);
    expect(() => d.freeIovaFast(0x1000, 1, 1)).toThrow(/not online/);
    expectConsistent(d);
  });

  it("keeps the last CPU online and moves the current CPU off an offlined one", () => {
    const d = domain(1, { nrCpus: 3 });
    d.currentCpu = 1;
    d.cpuOffline(1);
    expect(d.currentCpu).toBe(0);
    d.cpuOffline(2);
    const last = d.cpuOffline(0);
    expect(isErr(last) && last.errno).toBe("EBUSY");
    const none = d.cpuOffline(7);
    expect(isErr(none) && none.errno).toBe("EINVAL");
    expect(d.cpuOnline(2)).toBeUndefined();
    expect([d.numOnlineCpus(), d.cpuIsOnline(2)]).toEqual([2, true]);
  });
});
