/**
 * The mapping API of the core (iommu.c): iommu_map / iommu_unmap /
 * iommu_map_sg split a range into the largest page sizes the domain
 * supports (iommu_pgsize) and call the driver's map_pages/unmap_pages.
 * Hot path: no allocation per call; results travel through scratch
 * objects, as the kernel uses out-parameters.
 */
import { isAligned, modPow2 } from "../lib/bits.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { __IOMMU_DOMAIN_PAGING, IOMMU_DOMAIN_BLOCKED, IOMMU_DOMAIN_IDENTITY, type IommuDomain } from "./domain.ts";
import type { IommuIotlbGather, MappedBytes } from "./ops.ts";
import { iommuIotlbGatherInit, newIommuIotlbGather } from "../pgtable/gather.ts";

/** Result of iommu_pgsize: the page size and how many of them to map in one call. */
export interface PgsizeResult {
  pgsize: number;
  count: number;
}

const scratchPg: PgsizeResult = { pgsize: 0, count: 0 };
const scratchMapped: MappedBytes = { bytes: 0 };

const scratchGather = newIommuIotlbGather();

// @kernel: iommu_pgsize
export function iommuPgsize(domain: IommuDomain, iova: number, paddr: number, size: number, out: PgsizeResult): PgsizeResult {
  const sizes = domain.pgsizes;
  // The largest size up to `size` and up to the alignment of iova|paddr. Sizes ascend and
  // alignment to a size implies alignment to every smaller one, so the first misfit ends it.
  const first = sizes[0]!;
  if (first > size || modPow2(iova, first) !== 0 || modPow2(paddr, first) !== 0) {
    throw new Error(`iommu_pgsize: no page size fits iova 0x${iova.toString(16)} size 0x${size.toString(16)} (BUG)`);
  }
  let idx = 0;
  for (let i = 1; i < sizes.length; i++) {
    const s = sizes[i]!;
    if (s > size || modPow2(iova, s) !== 0 || modPow2(paddr, s) !== 0) break;
    idx = i;
  }
  const pgsize = sizes[idx]!;
  let run = size;
  const next = sizes[idx + 1];
  // Stop at the next larger page's boundary if iova and paddr can use it from there.
  if (next !== undefined && modPow2(iova, next) === modPow2(paddr, next)) {
    const offset = next - modPow2(iova, next);
    if (offset + next <= size) run = offset;
  }
  out.pgsize = pgsize;
  out.count = Math.floor(run / pgsize);
  return out;
}

// @kernel: __iommu_unmap
export function iommuUnmapInternal(domain: IommuDomain, iova: number, size: number, gather: IommuIotlbGather): number {
  if ((domain.type & __IOMMU_DOMAIN_PAGING) === 0) return 0;
  const unmapPages = domain.ops.unmapPages;
  if (unmapPages === undefined || domain.pgsizes.length === 0) return 0;
  const min = domain.pgsizes[0]!;
  if (!isAligned(iova, min) || !isAligned(size, min)) return 0;
  if (size === min) {
    return unmapPages(domain, iova, min, 1, gather);
  }
  let unmapped = 0;
  while (unmapped < size) {
    const pg = iommuPgsize(domain, iova, iova, size - unmapped, scratchPg);
    const n = unmapPages(domain, iova, pg.pgsize, pg.count, gather);
    if (n === 0) break;
    iova += n;
    unmapped += n;
  }
  return unmapped;
}

// @kernel: iommu_iotlb_sync
export function iommuIotlbSync(domain: IommuDomain, gather: IommuIotlbGather): void {
  domain.ops.iotlbSync?.(domain, gather);
  iommuIotlbGatherInit(gather);
}

// @kernel: iommu_unmap (returns bytes unmapped; never fails)
export function iommuUnmap(domain: IommuDomain, iova: number, size: number): number {
  const g = scratchGather;
  iommuIotlbGatherInit(g);
  const n = iommuUnmapInternal(domain, iova, size, g);
  iommuIotlbSync(domain, g);
  return n;
}

// @kernel: iommu_unmap_fast (the caller syncs the gather)
export function iommuUnmapFast(domain: IommuDomain, iova: number, size: number, gather: IommuIotlbGather): number {
  return iommuUnmapInternal(domain, iova, size, gather);
}

// @kernel: iommu_map_nosync
export function iommuMapNosync(domain: IommuDomain, iova: number, paddr: number, size: number, prot: number): 0 | KError {
  if ((domain.type & __IOMMU_DOMAIN_PAGING) === 0) return kerr("EINVAL", `${domain} cannot map: it is not a paging domain`);
  const mapPages = domain.ops.mapPages;
  if (mapPages === undefined || domain.pgsizes.length === 0) return kerr("ENODEV", `${domain} has no map_pages`);
  const min = domain.pgsizes[0]!;
  if (!isAligned(iova, min) || !isAligned(paddr, min) || !isAligned(size, min)) {
    return kerr(
      "EINVAL",
      `unaligned: iova 0x${iova.toString(16)} pa 0x${paddr.toString(16)} size 0x${size.toString(16)} min_pagesz 0x${min.toString(16)}`,
    );
  }
  // One page of the smallest size: a single map_pages call, no splitting needed.
  if (size === min) {
    scratchMapped.bytes = 0;
    const r = mapPages(domain, iova, paddr, min, 1, prot, scratchMapped);
    if (r !== 0 && scratchMapped.bytes > 0) iommuMapUnwind(domain, iova, scratchMapped.bytes, r);
    return r;
  }
  const origIova = iova;
  const origSize = size;
  let ret: 0 | KError = 0;
  while (size > 0) {
    const pg = iommuPgsize(domain, iova, paddr, size, scratchPg);
    scratchMapped.bytes = 0;
    ret = mapPages(domain, iova, paddr, pg.pgsize, pg.count, prot, scratchMapped);
    const mapped = scratchMapped.bytes;
    size -= mapped;
    if (ret !== 0) break;
    iova += mapped;
    paddr += mapped;
  }
  // All or nothing: undo what this call mapped.
  if (ret !== 0 && origSize - size > 0) iommuMapUnwind(domain, origIova, origSize - size, ret);
  return ret;
}

/**
 * The unwind of a map that failed after mapping `bytes` at `iova`: the
 * core's iommu_unmap takes them back (all or nothing), but what that left
 * behind stays, as in the kernel: tables the call allocated (io-pgtable
 * frees none on a leaf unmap) and the unmap's invalidations. Recorded as a
 * failure effect (lib/failure-effects.ts). Off the success path.
 */
// @kernel: iommu_map (its error unwind through iommu_unmap)
function iommuMapUnwind(domain: IommuDomain, iova: number, bytes: number, ret: KError): void {
  iommuUnmap(domain, iova, bytes);
  domain.effects?.effect(
    "map-unwind-keeps-tables",
    String(domain),
    `the map failed with ${ret.errno} after mapping 0x${bytes.toString(16)} bytes at IOVA 0x${iova.toString(16)}; iommu_unmap took them back, the tables it allocated and the invalidations stay`,
  );
}

// @kernel: iommu_sync_map
export function iommuSyncMap(domain: IommuDomain, iova: number, size: number): 0 | KError {
  const sync = domain.ops.iotlbSyncMap;
  return sync === undefined ? 0 : sync(domain, iova, size);
}

// @kernel: iommu_map
export function iommuMap(domain: IommuDomain, iova: number, paddr: number, size: number, prot: number): 0 | KError {
  const ret = iommuMapNosync(domain, iova, paddr, size, prot);
  if (ret !== 0) return ret;
  const sync = iommuSyncMap(domain, iova, size);
  if (sync !== 0) iommuMapUnwind(domain, iova, size, sync);
  return sync;
}

/** One physically contiguous piece of a scatterlist. */
export interface SgEntry {
  paddr: number;
  length: number;
  /** A PCI bus address for peer-to-peer DMA: skipped by iommu_map_sg. */
  busAddress?: boolean;
}

// @kernel: iommu_map_sg (returns bytes mapped, or the error with nothing left mapped)
export function iommuMapSg(domain: IommuDomain, iova: number, sg: readonly SgEntry[], prot: number): number | KError {
  let mapped = 0;
  let runStart = 0;
  let runLen = 0;
  const flush = (): 0 | KError => {
    if (runLen === 0) return 0;
    const r = iommuMapNosync(domain, iova + mapped, runStart, runLen, prot);
    if (r !== 0) return r;
    mapped += runLen;
    runLen = 0;
    return 0;
  };
  for (const s of sg) {
    if (s.busAddress) continue;
    if (runLen > 0 && runStart + runLen === s.paddr) {
      runLen += s.length;
      continue;
    }
    const r = flush();
    if (r !== 0) {
      if (mapped > 0) iommuMapUnwind(domain, iova, mapped, r);
      return r;
    }
    runStart = s.paddr;
    runLen = s.length;
  }
  const r = flush();
  if (r !== 0) {
    if (mapped > 0) iommuMapUnwind(domain, iova, mapped, r);
    return r;
  }
  const sync = iommuSyncMap(domain, iova, mapped);
  if (sync !== 0) {
    iommuMapUnwind(domain, iova, mapped, sync);
    return sync;
  }
  return mapped;
}

/**
 * @kernel: iommu_map (one page of the domain's smallest size)
 * The model's allocation-free form for the DMA fast path: the IOVA and the
 * physical address are given as frames of that page size (small integers),
 * and go down to the driver as frames when it offers map_pages by frame.
 */
export function iommuMapOnePfn(domain: IommuDomain, iovaPfn: number, physPfn: number, prot: number): 0 | KError {
  const gran = domain.pgsizes[0]!;
  const mapPfn = domain.ops.mapPagesPfn;
  if (mapPfn === undefined || (domain.type & __IOMMU_DOMAIN_PAGING) === 0 || domain.ops.iotlbSyncMap !== undefined) {
    return iommuMap(domain, iovaPfn * gran, physPfn * gran, gran, prot);
  }
  scratchMapped.bytes = 0;
  const r = mapPfn(domain, iovaPfn, physPfn, gran, 1, prot, scratchMapped);
  if (r !== 0 && scratchMapped.bytes > 0) iommuMapUnwind(domain, iovaPfn * gran, scratchMapped.bytes, r);
  return r;
}

/** @kernel: iommu_unmap_fast (one page of the smallest size, by frame; see iommuMapOnePfn) */
export function iommuUnmapFastOnePfn(domain: IommuDomain, iovaPfn: number, gather: IommuIotlbGather): number {
  const unmapPfn = domain.ops.unmapPagesPfn;
  const gran = domain.pgsizes[0]!;
  if (unmapPfn === undefined || (domain.type & __IOMMU_DOMAIN_PAGING) === 0) return iommuUnmapInternal(domain, iovaPfn * gran, gran, gather);
  return unmapPfn(domain, iovaPfn, gran, 1, gather);
}

// @kernel: iommu_iova_to_phys
export function iommuIovaToPhys(domain: IommuDomain, iova: number): number {
  if (domain.type === IOMMU_DOMAIN_IDENTITY) return iova;
  if (domain.type === IOMMU_DOMAIN_BLOCKED) return 0;
  return domain.ops.iovaToPhys?.(domain, iova) ?? 0;
}
