/** Shared set-up for the DMA-API tests (not a test file itself). */
import type { Device } from "../../src/base/device.ts";
import { dmaCookie, type IommuDmaCookie } from "../../src/dma/dma-iommu.ts";
import { IOVA_ANCHOR, IOVA_RANGE_CACHE_MAX_SIZE, type IovaDomain } from "../../src/dma/iova.ts";
import { RB_NIL } from "../../src/dma/iova/rbtree.ts";
import type { TlbStats } from "../../src/iommu/ops.ts";
import { devGroup } from "../../src/iommu/dev-iommu.ts";
import type { IommuDomain } from "../../src/iommu/domain.ts";
import type { Machine } from "../../src/sim/machine.ts";
import { boot } from "../helpers.ts";

/** One PCI device behind a VT-d unit (52-bit output size); `cmdline` picks strict or lazy. */
export function bootX86(cmdline: string, extra = ""): { m: Machine; dev: Device; domain: IommuDomain } {
  const m = boot(`
name: dma
boot: {arch: x86, cmdline: "${cmdline}"}
iommus:
  - {name: dmar, driver: intel-iommu, scope: all}
devices:
  - {name: "0000:00:01.0", bus: pci${extra}}
`);
  const dev = m.devices.get("0000:00:01.0")!.dev;
  return { m, dev, domain: devGroup(dev)!.defaultDomain! };
}

export function cookieOf(domain: IommuDomain): IommuDmaCookie {
  const c = dmaCookie(domain);
  if (c === null) throw new Error(`${domain} has no DMA cookie yet`);
  return c;
}

/**
 * Everything the IOVA allocator holds, as plain data: the tree's ranges in
 * order, the cached-node positions, every CPU's magazines and the depots.
 * Two equal dumps mean the allocator will answer every request the same way.
 */
export function allocatorDump(iovad: IovaDomain): unknown {
  const t = iovad.tree;
  const ranges: [number, number][] = [];
  let n = t.root;
  while (t.left[n] !== RB_NIL) n = t.left[n]!;
  for (; n !== RB_NIL; n = t.next(n)) ranges.push([t.pfnLo[n]!, t.pfnHi[n]!]);
  const magazines: unknown[] = [];
  for (let cpu = 0; cpu < iovad.nrCpuIds; cpu++) {
    for (let cls = 0; cls < IOVA_RANGE_CACHE_MAX_SIZE; cls++) magazines.push(iovad.rcaches.cpuMagazines(cpu, cls));
  }
  const depots = Array.from({ length: IOVA_RANGE_CACHE_MAX_SIZE }, (_, cls) => iovad.rcaches.depotMagazines(cls));
  return {
    ranges,
    cachedNode: [t.pfnLo[iovad.cachedNode], t.pfnHi[iovad.cachedNode]],
    cached32Node: [t.pfnLo[iovad.cached32Node], t.pfnHi[iovad.cached32Node]],
    max32AllocSize: iovad.max32AllocSize,
    magazines,
    depots,
  };
}

/**
 * allocatorDump of bootX86's DMA domain as iommu_dma_init_domain leaves it, with max32_alloc_size
 * as given (the kernel's starts at dma_32bit_pfn, 0x100000 for 4K granules): the VT-d IOAPIC/MSI
 * window 0xfee00000-0xfeefffff reserved (pfns 0xfee00-0xfeeff), the anchor, both cached nodes at
 * the anchor, every magazine and depot empty. Written out by hand, not read from the model.
 */
export function x86InitialAllocator(max32AllocSize: number): unknown {
  const empty = { loaded: [], prev: [] };
  return {
    ranges: [
      [0xfee00, 0xfeeff],
      [IOVA_ANCHOR, IOVA_ANCHOR],
    ],
    cachedNode: [IOVA_ANCHOR, IOVA_ANCHOR],
    cached32Node: [IOVA_ANCHOR, IOVA_ANCHOR],
    max32AllocSize,
    magazines: Array.from({ length: IOVA_RANGE_CACHE_MAX_SIZE }, () => empty),
    depots: Array.from({ length: IOVA_RANGE_CACHE_MAX_SIZE }, () => []),
  };
}

/** The paging domain's TLB log, with the invalidation record. */
export function tlbOf(domain: IommuDomain): TlbStats {
  return domain.ops.stats!(domain).tlb;
}

/** The invalidations recorded since the log's total was `since` (oldest first). */
export function invalidationsSince(domain: IommuDomain, since: number): TlbStats["invalidations"] {
  const t = tlbOf(domain);
  const fresh = t.invalidationsTotal - since;
  if (fresh > t.invalidations.length) throw new Error(`${fresh} invalidations since, but the log keeps ${t.invalidations.length}`);
  return t.invalidations.slice(t.invalidations.length - fresh);
}
