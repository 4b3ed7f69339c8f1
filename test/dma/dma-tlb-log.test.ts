/** Which IOTLB ranges DMA and iommu unmaps invalidate (the driver's TLB log), and what the flush queue flushes. */
import { iommuDomainMappedBytes } from "../../src/iommu/domain.ts";
import { describe, expect, it } from "vitest";
import {
  dmaMapPage,
  dmaMapPageChecked,
  dmaRunTimers,
  dmaUnmapPage,
  DMA_MAPPING_ERROR,
  dmaDomainStats,
  type FqFlushHook,
} from "../../src/dma/dma-iommu.ts";
import { dmaMapSg } from "../../src/dma/dma-sg.ts";
import { IOVA_DEFAULT_FQ_SIZE } from "../../src/dma/flush-queue.ts";
import { TLB_LOG_RECENT } from "../../src/drivers/tlb-log.ts";
import { isErr } from "../../src/lib/errno.ts";
import { iommuMap, iommuUnmap } from "../../src/iommu/map.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../../src/pgtable/types.ts";
import { allocatorDump, bootX86, cookieOf, invalidationsSince, tlbOf } from "./dma-helpers.ts";

describe("the domain's TLB log", () => {
  it("a strict dma_unmap of one page invalidates exactly that page's range", () => {
    const { dev, domain } = bootX86("iommu.strict=1");
    const dma = dmaMapPage(dev, 0x5000_0000, 0x1000, "to_device");
    const since = tlbOf(domain).invalidationsTotal;
    expect(dmaUnmapPage(dev, dma, 0x1000)).toBe(0x1000);
    expect(invalidationsSince(domain, since)).toEqual([{ kind: "sync", iova: dma, size: 0x1000 }]);
    // An offset into the page does not widen it.
    const dma2 = dmaMapPage(dev, 0x5000_0123, 0x100, "to_device");
    const since2 = tlbOf(domain).invalidationsTotal;
    dmaUnmapPage(dev, dma2, 0x100);
    expect(invalidationsSince(domain, since2)).toEqual([{ kind: "sync", iova: dma2 - 0x123, size: 0x1000 }]);
  });

  it("a lazy dma_unmap invalidates nothing until the flush queue flushes the whole IOTLB", () => {
    const { dev, domain } = bootX86("");
    expect(domain.type).toBe(11);
    const dma = dmaMapPage(dev, 0x5000_0000, 0x1000, "to_device");
    const since = tlbOf(domain).invalidationsTotal;
    const counts = { ...tlbOf(domain), invalidations: undefined };
    dmaUnmapPage(dev, dma, 0x1000, 0);
    expect(invalidationsSince(domain, since)).toEqual([]);
    expect({ ...tlbOf(domain), invalidations: undefined }).toEqual(counts);
    expect(dmaRunTimers([domain], 9)).toBe(0);
    expect(invalidationsSince(domain, since)).toEqual([]);
    expect(dmaRunTimers([domain], 10)).toBe(1);
    expect(invalidationsSince(domain, since)).toEqual([{ kind: "flush_all", iova: null, size: null }]);
    expect(tlbOf(domain).flushAll).toBe(counts.flushAll + 1);
  });

  it("iommu_unmap of a range records the gathered range; the log keeps the last 64, oldest first", () => {
    const { dev, domain } = bootX86("iommu.strict=1");
    dmaMapPage(dev, 0x1000, 0x1000, "to_device"); // allocates the tables
    const rw = IOMMU_READ | IOMMU_WRITE;
    expect(iommuMap(domain, 0x4000_0000, 0x8000_0000, 0x3000, rw)).toBe(0);
    const since = tlbOf(domain).invalidationsTotal;
    expect(iommuUnmap(domain, 0x4000_0000, 0x3000)).toBe(0x3000);
    expect(invalidationsSince(domain, since)).toEqual([{ kind: "sync", iova: 0x4000_0000, size: 0x3000 }]);
    // VT-d's format gathers the range asked for even over a hole (gather_range_pages), so that is invalidated too.
    expect(iommuUnmap(domain, 0x4000_0000, 0x1000)).toBe(0);
    expect(invalidationsSince(domain, since + 1)).toEqual([{ kind: "sync", iova: 0x4000_0000, size: 0x1000 }]);
    // An unaligned unmap is refused before any page is touched: its sync of the empty gather is counted, not recorded.
    const syncs = tlbOf(domain).sync;
    expect(iommuUnmap(domain, 0x4000_0800, 0x1000)).toBe(0);
    expect(tlbOf(domain).sync).toBe(syncs + 1);
    expect(invalidationsSince(domain, since + 2)).toEqual([]);

    const first = tlbOf(domain).invalidationsTotal;
    const n = TLB_LOG_RECENT + 6;
    for (let i = 0; i < n; i++) {
      iommuMap(domain, 0x4000_0000 + i * 0x1000, 0x8000_0000, 0x1000, rw);
      iommuUnmap(domain, 0x4000_0000 + i * 0x1000, 0x1000);
    }
    const t = tlbOf(domain);
    expect(t.invalidationsTotal).toBe(first + n);
    expect(t.invalidations).toHaveLength(TLB_LOG_RECENT);
    expect(t.invalidations[0]).toEqual({ kind: "sync", iova: 0x4000_0000 + 6 * 0x1000, size: 0x1000 });
    expect(t.invalidations.at(-1)).toEqual({ kind: "sync", iova: 0x4000_0000 + (n - 1) * 0x1000, size: 0x1000 });
  });
});

describe("flush-queue flushes", () => {
  it("are counted by cause and reported to the cookie's hook: a full ring, then the timer", () => {
    const { dev, domain } = bootX86("");
    dmaUnmapPage(dev, dmaMapPage(dev, 0, 0x1000, "to_device"), 0x1000, 0);
    const cookie = cookieOf(domain);
    const seen: [string, number][] = [];
    const hook: FqFlushHook = (c, reason) => seen.push([reason, c.fq!.fq.length]);
    cookie.fqFlushHook = hook;
    for (let i = 1; i < IOVA_DEFAULT_FQ_SIZE; i++) dmaUnmapPage(dev, dmaMapPage(dev, 0x10_0000 + i * 0x1000, 0x1000, "to_device"), 0x1000, 0);
    // 255 entries wait (one slot stays empty); the next unmap finds the ring full.
    expect(seen).toEqual([["full", IOVA_DEFAULT_FQ_SIZE - 1]]);
    expect(dmaDomainStats(domain)).toMatchObject({ fq: 1, fq_flushes: 1, fq_full_flushes: 1, fq_timer_flushes: 0 });
    expect(dmaRunTimers([domain], 10)).toBe(1);
    expect(seen).toEqual([
      ["full", IOVA_DEFAULT_FQ_SIZE - 1],
      ["timer", 1],
    ]);
    expect(dmaDomainStats(domain)).toMatchObject({ fq: 0, fq_flushes: 2, fq_full_flushes: 1, fq_timer_flushes: 1 });
    expect(tlbOf(domain).flushAll).toBe(2);
  });

  it("a strict domain has no flush queue: its fq keys are null", () => {
    const { dev, domain } = bootX86("iommu.strict=1");
    dmaMapPage(dev, 0x1000, 0x1000, "to_device");
    expect(dmaDomainStats(domain)).toEqual({ iovas: 2, fq: null, fq_flushes: null, fq_full_flushes: null, fq_timer_flushes: null });
  });
});

describe("zero-length DMA mappings", () => {
  it("dma_map_page of 0 bytes is DMA_MAPPING_ERROR (EINVAL to a checking caller) and allocates nothing", () => {
    const { dev, domain } = bootX86("iommu.strict=1");
    expect(dmaMapPage(dev, 0x1000, 0x1000, "to_device")).not.toBe(DMA_MAPPING_ERROR);
    const iovad = cookieOf(domain).iovad;
    const before = allocatorDump(iovad);
    for (const phys of [0x2000, 0x2123]) {
      expect(dmaMapPage(dev, phys, 0, "to_device")).toBe(DMA_MAPPING_ERROR);
      const r = dmaMapPageChecked(dev, phys, 0, "to_device");
      expect(isErr(r) && r.errno).toBe("EINVAL");
    }
    const r = dmaMapSg(dev, [{ paddr: 0x2000, length: 0 }], "to_device");
    expect(isErr(r) && r.errno).toBe("EINVAL");
    expect(allocatorDump(iovad)).toEqual(before);
    expect(iommuDomainMappedBytes(domain)).toBe(0x1000);
  });

  it("the same on a device without an IOMMU translation (dma-direct)", () => {
    const { dev } = bootX86("iommu.passthrough=1");
    expect(dmaMapPage(dev, 0x2000, 0x1000, "to_device")).toBe(0x2000);
    expect(dmaMapPage(dev, 0x2000, 0, "to_device")).toBe(DMA_MAPPING_ERROR);
  });
});
