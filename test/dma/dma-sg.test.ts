/** dma_map_sg / dma_unmap_sg over a DMA domain: the error path and the unmap range. */
import { iommuDomainMappedBytes } from "../../src/iommu/domain.ts";
import { describe, expect, it } from "vitest";
import { dmaMapPage, iommuDmaInitDomain, dmaUnmapPage, DMA_MAPPING_ERROR } from "../../src/dma/dma-iommu.ts";
import { dmaMapSg, dmaUnmapSg, type DmaSgMapping } from "../../src/dma/dma-sg.ts";
import { checkIovaDomain } from "../../src/dma/iova/check.ts";
import { isErr, type KError } from "../../src/lib/errno.ts";
import { iommuIovaToPhys, iommuMap, iommuUnmap } from "../../src/iommu/map.ts";
import { pagingPriv } from "../../src/drivers/paging-domain.ts";
import { IOMMU_READ } from "../../src/pgtable/types.ts";
import { tableChange, tableState } from "../pgtable/helpers.ts";
import { allocatorDump, bootX86, cookieOf, invalidationsSince, tlbOf, x86InitialAllocator } from "./dma-helpers.ts";

function ok(r: DmaSgMapping | KError): DmaSgMapping {
  if (isErr(r)) throw new Error(`unexpected ${r.errno}: ${r.message}`);
  return r;
}

/** Beyond VT-d's 52-bit output size: map_pages refuses it with ERANGE. */
const PA_BEYOND_OAS = 2 ** 52;

describe("dma_map_sg", () => {
  it("a failing entry: the mapped part is unmapped, the IOVA freed once; allocator and tables are as before", () => {
    const { dev, domain } = bootX86("iommu.strict=1");
    // The same shape mapped and unmapped once: its tables exist and its 2-page IOVA sits in the cache.
    const warm = ok(dmaMapSg(dev, [{ paddr: 0x10_0000, length: 0x1000 }, { paddr: 0x20_0000, length: 0x1000 }], "to_device"));
    expect(dmaUnmapSg(dev, warm.dma, warm.end)).toBe(0x2000);
    const iovad = cookieOf(domain).iovad;
    const stats = domain.ops.stats!(domain);
    const before = {
      allocator: allocatorDump(iovad),
      mapped: iommuDomainMappedBytes(domain),
      tablePages: stats.tablePages,
      tableBytes: stats.tableBytes,
    };
    const syncsBefore = tlbOf(domain).invalidationsTotal;

    const r = dmaMapSg(dev, [{ paddr: 0x30_0000, length: 0x1000 }, { paddr: PA_BEYOND_OAS, length: 0x1000 }], "to_device");
    // iommu_dma_map_sg turns every failure but ENOMEM into EINVAL; the sentence keeps the cause.
    expect(isErr(r) && r.errno).toBe("EINVAL");
    expect(isErr(r) && r.message).toContain("ERANGE");

    const after = domain.ops.stats!(domain);
    expect({ allocator: allocatorDump(iovad), mapped: iommuDomainMappedBytes(domain), tablePages: after.tablePages, tableBytes: after.tableBytes }).toEqual(before);
    expect(checkIovaDomain(iovad)).toEqual([]);
    // The first entry had been mapped at the IOVA base; iommu_map_sg unmapped exactly it.
    expect(iommuIovaToPhys(domain, warm.iova)).toBe(0);
    expect(invalidationsSince(domain, syncsBefore)).toEqual([
      { kind: "sync", iova: warm.iova, size: 0x1000 },
    ]);

    // Later single mappings of 1 and 2 pages get distinct IOVAs and map (a double free would hand
    // the same base to both size classes, and the second map would hit EEXIST).
    const one = dmaMapPage(dev, 0x40_0000, 0x1000, "to_device");
    const two = dmaMapPage(dev, 0x50_0000, 0x2000, "to_device");
    expect(one).not.toBe(DMA_MAPPING_ERROR);
    expect(two).not.toBe(DMA_MAPPING_ERROR);
    expect(iommuIovaToPhys(domain, one)).toBe(0x40_0000);
    expect(iommuIovaToPhys(domain, two)).toBe(0x50_0000);
    expect(iommuIovaToPhys(domain, two + 0x1000)).toBe(0x50_1000);
    expect(iommuDomainMappedBytes(domain)).toBe(0x3000);
    expect(checkIovaDomain(iovad)).toEqual([]);
  });

  it("no IOVA below the mask is ENOMEM, and nothing changes", () => {
    const { dev, domain } = bootX86("iommu.strict=1", ", dma-mask: 12");
    // Build the page table first (a mapping outside the DMA API, then gone), so its memory can be compared.
    expect(iommuMap(domain, 0x8000_0000, 0x5000_0000, 0x1000, IOMMU_READ)).toBe(0);
    expect(iommuUnmap(domain, 0x8000_0000, 0x1000)).toBe(0x1000);
    const pt = pagingPriv(domain).pgtbl!;
    const table = tableState(pt);
    const NO_CHANGE = { pages: 0, bytes: 0, firstChangedWord: -1 };
    // The kernel has the domain's cookie from probe on (the model sets it up at the first DMA).
    expect(isErr(iommuDmaInitDomain(domain, dev))).toBe(false);

    // Two entries, two granules: the limit pfn is 0 and pfn 0 is never handed out, so alloc_iova
    // fails and records max32_alloc_size = 2; the allocator is otherwise as iommu_dma_init_domain left it.
    const two = dmaMapSg(dev, [{ paddr: 0x1000, length: 0x1000 }, { paddr: 0x3000, length: 0x800 }], "to_device");
    expect(isErr(two) && two.errno).toBe("ENOMEM");
    const iovad = cookieOf(domain).iovad;
    expect(allocatorDump(iovad)).toEqual(x86InitialAllocator(2));
    expect(tableChange(table, tableState(pt))).toEqual(NO_CHANGE);

    // One granule walks again (1 < 2), fails, and lowers max32_alloc_size to 1; nothing else changes.
    const r = dmaMapSg(dev, [{ paddr: 0x1000, length: 0x1000 }], "to_device");
    expect(isErr(r) && r.errno).toBe("ENOMEM");
    expect(allocatorDump(iovad)).toEqual(x86InitialAllocator(1));
    expect(tableChange(table, tableState(pt))).toEqual(NO_CHANGE);
    expect(iommuDomainMappedBytes(domain)).toBe(0);
  });

  it("dma_unmap_sg of a list whose first entry has an offset unmaps exactly the list's granules", () => {
    const { dev, domain } = bootX86("iommu.strict=1");
    // Two single pages above, then a 2-granule list right below them (top-down allocation).
    const a = dmaMapPage(dev, 0x30_0000, 0x1000, "to_device");
    const b = dmaMapPage(dev, 0x40_0000, 0x1000, "to_device");
    expect([a, b]).toEqual([0xffff_f000, 0xffff_e000]);
    const s = ok(dmaMapSg(dev, [{ paddr: 0x10_0200, length: 0x800 }, { paddr: 0x20_0000, length: 0x800 }], "from_device"));
    expect(s).toEqual({ dma: 0xffff_c200, end: 0xffff_d800, iova: 0xffff_c000, len: 0x2000, addrs: [0xffff_c200, 0xffff_d000] });
    const syncs = tlbOf(domain).invalidationsTotal;

    expect(dmaUnmapSg(dev, s.dma, s.end)).toBe(0x2000);
    // One invalidation, of exactly the list's two granules; b's page right above is untouched.
    expect(invalidationsSince(domain, syncs)).toEqual([{ kind: "sync", iova: 0xffff_c000, size: 0x2000 }]);
    expect(iommuIovaToPhys(domain, 0xffff_c000)).toBe(0);
    expect(iommuIovaToPhys(domain, 0xffff_d000)).toBe(0);
    expect(iommuIovaToPhys(domain, b)).toBe(0x40_0000);
    expect(iommuDomainMappedBytes(domain)).toBe(0x2000);

    dmaUnmapPage(dev, a, 0x1000);
    dmaUnmapPage(dev, b, 0x1000);
    expect(iommuDomainMappedBytes(domain)).toBe(0);
    const iovad = cookieOf(domain).iovad;
    expect(checkIovaDomain(iovad)).toEqual([]);
    // The list's range went back as the 2-granule range it was: the next 2-page request gets it.
    expect(dmaMapPage(dev, 0x60_0000, 0x2000, "to_device")).toBe(0xffff_c000);
  });

  it("an empty list or a zero-length entry is EINVAL, before anything is allocated", () => {
    const { dev, domain } = bootX86("iommu.strict=1");
    expect(dmaMapPage(dev, 0x1000, 0x1000, "to_device")).not.toBe(DMA_MAPPING_ERROR);
    const iovad = cookieOf(domain).iovad;
    const before = allocatorDump(iovad);
    for (const sg of [[], [{ paddr: 0x10_0000, length: 0x1000 }, { paddr: 0x20_0000, length: 0 }]]) {
      const r = dmaMapSg(dev, sg, "to_device");
      expect(isErr(r) && r.errno).toBe("EINVAL");
    }
    expect(allocatorDump(iovad)).toEqual(before);
    expect(iommuDomainMappedBytes(domain)).toBe(0x1000);
  });
});
