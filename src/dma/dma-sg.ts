/**
 * Scatterlists through the DMA API (dma-iommu.c): iommu_dma_map_sg maps a
 * whole list into one IOVA range, iommu_dma_unmap_sg unmaps it in one go.
 */
import type { Device } from "../base/device.ts";
import { alignUp, modPow2 } from "../lib/bits.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { iommuMapSg, type SgEntry } from "../iommu/map.ts";
import {
  dmaDomainCookie,
  dmaInfoToProt,
  dmaReadyCookie,
  dmaUnmapPage,
  dropFreshCookie,
  iommuDmaAllocIova,
  iommuDmaFreeIova,
  iovaAllocFailed,
  type DmaDataDirection,
} from "./dma-iommu.ts";

/** One scatterlist entry for dma_map_sg. */
export interface DmaSgEntry {
  paddr: number;
  length: number;
}

/** A mapped scatterlist. */
export interface DmaSgMapping {
  /** The first entry's DMA address (sg_dma_address of the first segment). */
  dma: number;
  /** Where the last entry's data ends (its DMA address + length): with `dma`, what dma_unmap_sg needs. */
  end: number;
  /** The IOVA range the list occupies: base and length (whole granules; 0 and 0 for dma-direct). */
  iova: number;
  len: number;
  /** Each entry's DMA address. */
  addrs: number[];
}

/**
 * @kernel: iommu_dma_map_sg — one IOVA range for the whole list, each
 * entry at its offset (entries padded to the granule, laid out one after
 * the other), mapped by one iommu_map_sg. If that fails it has already
 * unmapped what it mapped, and the IOVA goes back to the allocator once.
 * Errors as the kernel's: ENOMEM when no IOVA fits, EINVAL for any other
 * failure (the sentence names the page-table error), EINVAL for an empty
 * list or a zero-length entry (the model refuses those; see below).
 */
export function dmaMapSg(dev: Device, sg: readonly DmaSgEntry[], dir: DmaDataDirection): DmaSgMapping | KError {
  // The kernel maps a zero-length entry as nothing, but a segment whose sg_dma_len is 0 ends
  // iommu_dma_unmap_sg's walk, so such a list could not be unmapped whole: the model refuses it.
  if (sg.length === 0) return kerr("EINVAL", "dma_map_sg of an empty scatterlist");
  const zero = sg.findIndex((e) => !(e.length > 0));
  if (zero >= 0) return kerr("EINVAL", `dma_map_sg: entry ${zero} has length ${sg[zero]!.length}: a zero-length mapping maps nothing`);
  const fresh = dmaReadyCookie(dev) === null;
  const cookie = dmaDomainCookie(dev);
  if (cookie !== null && !isErr(cookie)) cookie.fresh = fresh;
  if (cookie === null) {
    const addrs = sg.map((e) => e.paddr);
    if (sg.some((e) => e.paddr + e.length - 1 > dev.dmaMask)) return kerr("EIO", "dma-direct: an entry lies beyond the device's DMA mask (no swiotlb)");
    return { dma: addrs[0]!, end: addrs[0]! + sg[0]!.length, iova: 0, len: 0, addrs };
  }
  if (isErr(cookie)) return cookie;
  const gran = cookie.iovad.granule;
  // Align each entry to whole granules, keeping its offset for the caller.
  const aligned: SgEntry[] = [];
  const offs: number[] = [];
  let total = 0;
  for (const e of sg) {
    const off = modPow2(e.paddr, gran);
    const span = alignUp(e.length + off, gran);
    aligned.push({ paddr: e.paddr - off, length: span });
    offs.push(total + off);
    total += span;
  }
  const iovaPfn = iommuDmaAllocIova(cookie, dev, total / gran);
  if (iovaPfn === 0) {
    iovaAllocFailed(cookie);
    if (fresh) dropFreshCookie(cookie);
    return kerr("ENOMEM", `no IOVA space below the DMA mask for ${total} bytes`);
  }
  const iova = iovaPfn * gran;
  const mapped = iommuMapSg(cookie.domain, iova, aligned, dmaInfoToProt(dir));
  if (isErr(mapped)) {
    iommuDmaFreeIova(cookie, iovaPfn, total / gran, mapped);
    if (fresh) dropFreshCookie(cookie);
    return kerr(mapped.errno === "ENOMEM" ? "ENOMEM" : "EINVAL", `dma_map_sg: iommu_map_sg failed with ${mapped.errno}: ${mapped.message}`);
  }
  cookie.fresh = false;
  const addrs = offs.map((o) => iova + o);
  const last = sg.length - 1;
  return { dma: addrs[0]!, end: addrs[last]! + sg[last]!.length, iova, len: total, addrs };
}

/**
 * @kernel: iommu_dma_unmap_sg — the list sits in one IOVA range, so one
 * unmap from the first entry's DMA address to the end of the last entry's
 * data (the unmap rounds both out to whole granules). Returns the bytes
 * unmapped.
 */
export function dmaUnmapSg(dev: Device, dma: number, end: number, now = 0): number {
  if (!(end > dma)) return 0;
  return dmaUnmapPage(dev, dma, end - dma, now);
}
