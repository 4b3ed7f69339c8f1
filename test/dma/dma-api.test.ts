import { describe, expect, it } from "vitest";
import { dmaCookie, dmaMapPage, dmaMapSg, dmaUnmapPage, dmaRunTimers, DMA_MAPPING_ERROR } from "../../src/dma/dma-iommu.ts";
import { IOVA_DEFAULT_FQ_SIZE } from "../../src/dma/flush-queue.ts";
import { iommuDomainMappedBytes } from "../../src/iommu/domain.ts";
import { iommuIovaToPhys } from "../../src/iommu/map.ts";
import { run } from "../helpers.ts";
import { bootX86 } from "./dma-helpers.ts";

const boot = bootX86;

describe("the DMA API over the default domain", () => {
  it("maps top-down from the DMA mask, keeps the offset, rounds to pages, and unmaps strictly", () => {
    const { dev, domain } = boot("iommu.strict=1");
    const dma = dmaMapPage(dev, 0x5000_0123, 0x1800, "to_device");
    expect(dma).toBe(0xffff_e123);
    expect(iommuIovaToPhys(domain, 0xffff_f000)).toBe(0x5000_1000);
    expect(iommuDomainMappedBytes(domain)).toBe(0x2000);
    expect(dmaUnmapPage(dev, dma, 0x1800)).toBe(0x2000);
    expect(iommuIovaToPhys(domain, 0xffff_e000)).toBe(0);
    const stats = domain.ops.stats!(domain).tlb;
    expect(stats.sync).toBe(1);
    // The IOVA is reusable at once, from the per-CPU cache of its size class (2 pages);
    // a 1-page request is another class and comes from the tree, below it.
    expect(dmaMapPage(dev, 0x7000_0000, 0x2000, "to_device")).toBe(0xffff_e000);
    expect(dmaMapPage(dev, 0x7000_0000, 0x1000, "to_device")).toBe(0xffff_d000);
  });

  it("tries 32-bit IOVAs first for a PCI device with a 64-bit mask, then falls back for good", () => {
    const { dev } = boot("iommu.strict=1", ", dma-mask: 64");
    expect(dmaMapPage(dev, 0x1000, 0x1000, "bidirectional")).toBeLessThan(2 ** 32);
    // Exhaust the 32-bit space with one huge request: the workaround is dropped for good.
    const big = dmaMapPage(dev, 0, 2 ** 33, "bidirectional");
    expect(big).toBeGreaterThanOrEqual(2 ** 32);
    expect(dmaMapPage(dev, 0x2000, 0x1000, "bidirectional")).toBeGreaterThan(2 ** 32);
  });

  it("a DMA mask too small for any IOVA fails with DMA_MAPPING_ERROR and maps nothing", () => {
    const { dev, domain } = boot("iommu.strict=1", ", dma-mask: 12");
    expect(dmaMapPage(dev, 0x1000, 0x1000, "bidirectional")).toBe(DMA_MAPPING_ERROR);
    expect(iommuDomainMappedBytes(domain)).toBe(0);
  });

  it("dma_map_sg lays the entries out in one IOVA range", () => {
    const { dev, domain } = boot("iommu.strict=1");
    const r = dmaMapSg(dev, [{ paddr: 0x10_0000, length: 0x800 }, { paddr: 0x20_0400, length: 0x1000 }], "from_device");
    expect(r).toMatchObject({ len: 0x3000 });
    if ("errno" in r) throw new Error(r.message);
    expect(r.addrs[1]! - r.addrs[0]!).toBe(0x1400);
    expect(iommuIovaToPhys(domain, r.addrs[1]!)).toBe(0x20_0400);
  });

  it("lazy (DMA-FQ): unmap queues the IOVA; a flush of the IOTLB frees it, on a full ring or the 10 ms timer", () => {
    const { dev, domain } = boot("");
    expect(domain.type).toBe(11);
    const cookie = dmaCookie(domain) ?? (dmaMapPage(dev, 0, 0x1000, "to_device"), dmaCookie(domain))!;
    const fq = cookie.fq!;
    const before = cookie.iovad.treeNodesLive;
    for (let i = 0; i < IOVA_DEFAULT_FQ_SIZE - 1; i++) {
      const dma = dmaMapPage(dev, 0x100000 + i * 0x1000, 0x1000, "to_device");
      dmaUnmapPage(dev, dma, 0x1000, 0);
    }
    // 255 entries waiting, no flush yet: no per-page invalidation was issued.
    expect(fq.fq.length).toBe(IOVA_DEFAULT_FQ_SIZE - 1);
    expect(fq.flushes).toBe(0);
    expect(domain.ops.stats!(domain).tlb.addPage).toBe(0);
    // The next unmap finds the ring full: flush everything, free the queue, then queue itself.
    const dma = dmaMapPage(dev, 0x900000, 0x1000, "to_device");
    dmaUnmapPage(dev, dma, 0x1000, 0);
    expect(fq.flushes).toBe(1);
    expect(fq.fq.length).toBe(1);
    // The timer fires 10 ms after the first queued entry.
    expect(dmaRunTimers([domain], 9)).toBe(0);
    expect(dmaRunTimers([domain], 10)).toBe(1);
    expect(fq.fq.length).toBe(0);
    expect(cookie.iovad.treeNodesLive).toBeGreaterThanOrEqual(before);
  });

  it("scenario: the stale IOTLB window under DMA-FQ is a finding, and strict DMA faults after unmap", () => {
    const r = run(`
name: stale
boot: {arch: x86}
iommus:
  - {name: dmar, driver: intel-iommu, scope: all}
devices:
  - {name: "0000:00:01.0", bus: pci}
events:
  - dma_map: {device: "0000:00:01.0", name: b, paddr: 0x200000, size: 0x1000}
  - device_dma: {device: "0000:00:01.0", handle: b, dir: write}
  - dma_unmap: {device: "0000:00:01.0", name: b}
  - device_dma: {device: "0000:00:01.0", handle: b}
    expect_value: 0x200000
  - expect: {findings: ["lazy invalidation window"], violations: []}
  - advance_time: 10
  - device_dma: {device: "0000:00:01.0", handle: b}
    expect_error: EFAULT
  - dma_unmap: {device: "0000:00:01.0", name: b}
    expect_error: ENOENT
`);
    expect(r.failures).toEqual([]);
    expect(r.machine.dc.trace.records.some((t) => t.fn === "report_iommu_fault")).toBe(true);
  });

  it("bad DMA input changes nothing", () => {
    const r = run(`
name: bad
boot: {arch: x86, cmdline: "iommu.strict=1"}
iommus:
  - {name: dmar, driver: intel-iommu, scope: all}
devices:
  - {name: "0000:00:01.0", bus: pci, dma-mask: 12}
  - {name: "0000:00:02.0", bus: pci}
events:
  - dma_map: {device: "0000:00:01.0", name: x, paddr: 0x1000, size: 0x1000}
    expect_error: ENOMEM
  - dma_map: {device: "0000:00:02.0", name: y, paddr: 0x1000, size: 0x1000}
  - dma_map: {device: "0000:00:02.0", name: y, paddr: 0x2000, size: 0x1000}
    expect_error: EEXIST
  - dma_unmap: {device: "0000:00:01.0", name: y}
    expect_error: EINVAL
  - expect: {violations: []}
`);
    expect(r.failures).toEqual([]);
    expect(r.snapshot.domains.find((d) => d.dma !== null && d.mapped_bytes > 0)?.mapped_bytes).toBe(0x1000);
  });
});
