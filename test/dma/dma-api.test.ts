import { describe, expect, it } from "vitest";
import { dmaCookie, dmaMapPage, iommuDmaInitDomain, dmaUnmapPage, dmaRunTimers, DMA_MAPPING_ERROR } from "../../src/dma/dma-iommu.ts";
import { dmaMapSg } from "../../src/dma/dma-sg.ts";
import { isErr } from "../../src/lib/errno.ts";
import { IOVA_DEFAULT_FQ_SIZE } from "../../src/dma/flush-queue.ts";
import { iommuDomainMappedBytes } from "../../src/iommu/domain.ts";
import { pagingPriv } from "../../src/drivers/paging-domain.ts";
import { iommuIovaToPhys, iommuMap, iommuUnmap } from "../../src/iommu/map.ts";
import { IOMMU_READ } from "../../src/pgtable/types.ts";
import { checkInvariants, formatViolation } from "../../src/sim/invariants.ts";
import { takeSnapshot } from "../../src/sim/snapshot.ts";
import { boot, run, scenario, state, step } from "../helpers.ts";
import { tableChange, tableState } from "../pgtable/helpers.ts";
import { allocatorDump, bootX86, cookieOf, x86InitialAllocator } from "./dma-helpers.ts";

const NO_CHANGE = { pages: 0, bytes: 0, firstChangedWord: -1 };

describe("the DMA API over the default domain", () => {
  it("maps top-down from the DMA mask, keeps the offset, rounds to pages, and unmaps strictly", () => {
    const { dev, domain } = bootX86("iommu.strict=1");
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

  it("a buffer within one granule (the frame-number fast path) maps and unmaps as one spanning two does", () => {
    const { dev, domain } = bootX86("iommu.strict=1");
    // PAs above 2^32 (frames, not bytes, go down), at a granule's first and last byte.
    expect(dmaMapPage(dev, 0x4_0000_0000, 0x1000, "bidirectional")).toBe(0xffff_f000);
    expect(dmaMapPage(dev, 0x4_0000_1fff, 1, "to_device")).toBe(0xffff_efff);
    expect(iommuIovaToPhys(domain, 0xffff_e000)).toBe(0x4_0000_1000);
    // One byte over the granule: two pages, through the general path.
    expect(dmaMapPage(dev, 0x4_0000_2fff, 2, "from_device")).toBe(0xffff_cfff);
    expect(iommuDomainMappedBytes(domain)).toBe(0x4000);
    // Unmaps by the same rule: the offset and length decide one page or two.
    expect(dmaUnmapPage(dev, 0xffff_efff, 1)).toBe(0x1000);
    expect(dmaUnmapPage(dev, 0xffff_cfff, 2)).toBe(0x2000);
    expect(dmaUnmapPage(dev, 0xffff_f000, 0x1000)).toBe(0x1000);
    expect(iommuDomainMappedBytes(domain)).toBe(0);
    expect(domain.ops.stats!(domain).tlb.sync).toBe(3);
    // Zero length maps nothing, on either path.
    expect(dmaMapPage(dev, 0x4_0000_0000, 0, "bidirectional")).toBe(DMA_MAPPING_ERROR);
    // Each freed range went back to its size class and comes out again first.
    expect(dmaMapPage(dev, 0x5_0000_0000, 0x1000, "bidirectional")).toBe(0xffff_f000);
    expect(dmaMapPage(dev, 0x5_0000_0000, 0x2000, "bidirectional")).toBe(0xffff_c000);
  });

  it("tries 32-bit IOVAs first for a PCI device with a 64-bit mask, then falls back for good", () => {
    const { dev, domain } = bootX86("iommu.strict=1", ", dma-mask: 64");
    // A 4-level VT-d domain (48-bit address width) caps the 64-bit mask at its aperture:
    // iommu_dma_alloc_iova's dma_limit becomes 2^48 - 1, pfn limit 2^36 - 1.
    expect(domain.geometry.apertureEnd).toBe(2 ** 48 - 1);
    // 1 page, SAC first: limit pfn 0xfffff, the top 4K page below 4 GiB (the IOAPIC/MSI window
    // 0xfee00000-0xfeefffff reserved in the tree lies lower).
    expect(dmaMapPage(dev, 0x1000, 0x1000, "bidirectional")).toBe(2 ** 32 - 0x1000);
    // 2^33 bytes = 2^21 pages: not below 4 GiB (2^21 >= max32_alloc_size 2^20 fails without a walk),
    // so the workaround is dropped and the range comes from the full limit, size-aligned to 2^21
    // pages: pfn floor((2^36 - 2^21) / 2^21) * 2^21 = 2^36 - 2^21, i.e. IOVA 2^48 - 2^33.
    const big = dmaMapPage(dev, 0, 2 ** 33, "bidirectional");
    expect(big).toBe(2 ** 48 - 2 ** 33);
    expect(big).toBe(0xfffe_0000_0000);
    // The workaround stays off: the next page sits directly below the big range, not below 4 GiB.
    expect(dmaMapPage(dev, 0x2000, 0x1000, "bidirectional")).toBe(2 ** 48 - 2 ** 33 - 0x1000);
  });

  it("a DMA mask too small for any IOVA fails with DMA_MAPPING_ERROR and maps nothing", () => {
    const { dev, domain } = bootX86("iommu.strict=1", ", dma-mask: 12");
    // Build the page table first (a mapping outside the DMA API, then gone), so its memory can be compared.
    expect(iommuMap(domain, 0x8000_0000, 0x5000_0000, 0x1000, IOMMU_READ)).toBe(0);
    expect(iommuUnmap(domain, 0x8000_0000, 0x1000)).toBe(0x1000);
    const pt = pagingPriv(domain).pgtbl!;
    const table = tableState(pt);
    // A first DMA that fails leaves no cookie behind (the model sets it up lazily, and takes it back).
    expect(dmaMapPage(dev, 0x1000, 0x2000, "bidirectional")).toBe(DMA_MAPPING_ERROR);
    expect(dmaCookie(domain)).toBeNull();
    // The kernel has the cookie from probe on: set it up as iommu_dma_init_domain would.
    expect(isErr(iommuDmaInitDomain(domain, dev))).toBe(false);

    // The mask's limit pfn is 0 and IOVA pfn 0 is never handed out: a 2-page request fails, and
    // alloc_iova records max32_alloc_size = 2 (the retry after flushing the rcaches then fails fast).
    expect(dmaMapPage(dev, 0x1000, 0x2000, "bidirectional")).toBe(DMA_MAPPING_ERROR);
    const iovad = cookieOf(domain).iovad;
    // Otherwise the allocator is as iommu_dma_init_domain left it.
    expect(allocatorDump(iovad)).toEqual(x86InitialAllocator(2));
    expect(tableChange(table, tableState(pt))).toEqual(NO_CHANGE);

    // A 1-page request walks (1 < 2), fails, and lowers max32_alloc_size to 1; nothing else changes.
    expect(dmaMapPage(dev, 0x1000, 0x1000, "bidirectional")).toBe(DMA_MAPPING_ERROR);
    expect(allocatorDump(iovad)).toEqual(x86InitialAllocator(1));
    expect(tableChange(table, tableState(pt))).toEqual(NO_CHANGE);
    expect(iommuDomainMappedBytes(domain)).toBe(0);
  });

  it("dma_map_sg lays the entries out in one IOVA range", () => {
    const { dev, domain } = bootX86("iommu.strict=1");
    const r = dmaMapSg(dev, [{ paddr: 0x10_0000, length: 0x800 }, { paddr: 0x20_0400, length: 0x1000 }], "from_device");
    expect(r).toMatchObject({ len: 0x3000 });
    if ("errno" in r) throw new Error(r.message);
    expect(r.addrs[1]! - r.addrs[0]!).toBe(0x1400);
    expect(iommuIovaToPhys(domain, r.addrs[1]!)).toBe(0x20_0400);
  });

  it("lazy (DMA-FQ): unmap queues the IOVA; a flush of the IOTLB frees it, on a full ring or the 10 ms timer", () => {
    const { dev, domain } = bootX86("");
    expect(domain.type).toBe(11);
    // One live mapping first (it also sets the cookie up if it is not yet).
    expect(dmaMapPage(dev, 0, 0x1000, "to_device")).toBe(0xffff_f000);
    const cookie = dmaCookie(domain)!;
    const fq = cookie.fq!;
    // The reserved IOAPIC/MSI window and that mapping.
    expect(cookie.iovad.treeNodesLive).toBe(2);
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
    // Every one of the 256 queued IOVAs was a fresh tree range (the rcache was empty while they
    // waited), and every freed one went to the per-CPU magazines / depot (127 + 127 + 2 fit),
    // which keep their ranges in the tree: 2 + 256 ranges.
    expect(cookie.iovad.treeNodesLive).toBe(2 + IOVA_DEFAULT_FQ_SIZE);
    expect(cookie.iovad.cachedPfns(0)).toBe(IOVA_DEFAULT_FQ_SIZE);
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
    expect(r.machine.ctx.trace.records.some((t) => t.fn === "report_iommu_fault")).toBe(true);
  });

  const BAD_INPUT = `
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
`;

  it("bad DMA input changes nothing", () => {
    const r = run(BAD_INPUT);
    expect(r.failures).toEqual([]);
    expect(r.snapshot.domains.find((d) => d.dma !== null && d.mapped_bytes > 0)?.mapped_bytes).toBe(0x1000);
  });

  it("bad DMA input changes nothing: the whole snapshot (the event log aside) is the same before and after each bad event", () => {
    const s = scenario(BAD_INPUT);
    const m = boot(s);
    const snap = () => state(takeSnapshot(m, [], checkInvariants(m).map(formatViolation)));
    const steps = s.events.slice(0, 4).map((e) => {
      const before = snap();
      const r = step(m, e);
      return { r: r === 0 ? "ok" : r.errno, before, after: snap() };
    });
    expect(steps.map((x) => x.r)).toEqual(["ENOMEM", "ok", "EEXIST", "EINVAL"]);
    // Each bad event on its own (soft: one failing does not hide the others).
    for (const i of [0, 2, 3]) expect.soft(steps[i]!.after, `event ${i}`).toEqual(steps[i]!.before);
    // The good map between them did change the state: 0x1000 bytes mapped for 02:00.0, no violations.
    const nic = (x: ReturnType<typeof snap>) => x.domains.find((d) => d.id === x.devices.find((v) => v.name === "0000:00:02.0")!.domain)!;
    expect([nic(steps[1]!.before).mapped_bytes, nic(steps[1]!.after).mapped_bytes]).toEqual([0, 0x1000]);
    expect(steps[3]!.after.violations).toEqual([]);
  });
});

describe("the IOVA limit of devices sharing a DMA domain", () => {
  const SHARED = `
name: two functions, one group, two masks
boot: {arch: x86, cmdline: "iommu.strict=1"}
iommus:
  - {name: dmar, driver: intel-iommu, scope: all}
devices:
  - {name: "0000:00:1c.0", bus: pci, type: root-port}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0", multifunction: true}
  - {name: "0000:01:00.1", bus: pci, parent: "0000:00:1c.0", multifunction: true, dma-mask: 30}
  - {name: "0000:01:00.2", bus: pci, parent: "0000:00:1c.0", multifunction: true, dma-mask: 64}
`;

  it("follows each device's own mask, alternating, and a 64-bit PCI device still tries below 4 GiB first", () => {
    const m = boot(SHARED + "events: []\n", { trace: false });
    const dev = (n: string) => m.devices.get(n)!.dev;
    const [f0, f1, f2] = ["0000:01:00.0", "0000:01:00.1", "0000:01:00.2"].map(dev) as [ReturnType<typeof dev>, ReturnType<typeof dev>, ReturnType<typeof dev>];
    expect(f0.iommuGroup).toBe(f1.iommuGroup);
    expect(f0.iommuGroup).toBe(f2.iommuGroup);
    // Top-down below each limit: 4 GiB for the 32-bit function, 1 GiB for the 30-bit one.
    expect(dmaMapPage(f0, 0x10_0000, 0x1000, "bidirectional")).toBe(0xffff_f000);
    expect(dmaMapPage(f1, 0x11_0000, 0x1000, "bidirectional")).toBe(0x3fff_f000);
    // alloc_iova starts below the last 32-bit allocation (cached32_node), whatever the limit: 4 GiB
    // still caps the 32-bit function, but it continues below 1 GiB.
    expect(dmaMapPage(f0, 0x12_0000, 0x1000, "bidirectional")).toBe(0x3fff_e000);
    expect(dmaMapPage(f1, 0x13_0000, 0x1000, "bidirectional")).toBe(0x3fff_d000);
    // The 64-bit PCI function tries a 32-bit address first (the SAC workaround): below the same cached
    // node, not at the top of the 48-bit aperture where its own limit would put it.
    expect(dmaMapPage(f2, 0x14_0000, 0x1000, "bidirectional")).toBe(0x3fff_c000);
    expect(dmaMapPage(f0, 0x15_0000, 0x1000, "bidirectional")).toBe(0x3fff_b000);
    // A mask reaching less far than the IOVAs handed out so far: the limit is its own.
    f0.dmaMask = 2 ** 28 - 1;
    expect(dmaMapPage(f0, 0x16_0000, 0x1000, "bidirectional")).toBe(0x0fff_f000);
  });
});
