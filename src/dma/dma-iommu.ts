/**
 * The DMA API over a device's default domain (drivers/iommu/dma-iommu.c):
 * each DMA-API domain has a cookie with an IOVA allocator and, for DMA-FQ
 * domains, a flush queue. dma_map allocates an IOVA below the device's DMA
 * limit and maps it; dma_unmap unmaps, then either syncs the IOTLB and
 * frees the IOVA at once (strict) or queues both (lazy).
 *
 * Hot path: no allocation per map/unmap pair; IOVAs come from the
 * allocator's per-CPU magazines. The flush queue's operations are in
 * flush-queue.ts, scatterlists in dma-sg.ts.
 */
import type { Device } from "../base/device.ts";
import { kerr, isErr, type KError } from "../lib/errno.ts";
import { devGroup, devIommu } from "../iommu/dev-iommu.ts";
import { IOMMU_DOMAIN_DMA_FQ, iommuIsDmaDomain, type IommuDomain } from "../iommu/domain.ts";
import { iommuGetResvRegions } from "../iommu/resv-region.ts";
import { iommuIotlbSync, iommuMap, iommuMapOnePfn, iommuUnmapFast, iommuUnmapFastOnePfn } from "../iommu/map.ts";
import { iommuIotlbGatherInit, newIommuIotlbGather } from "../pgtable/gather.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../pgtable/types.ts";
import { fqFlushTimeout, FlushQueue, queueIova, type FqFlushReason } from "./flush-queue.ts";
import { initIovaDomain, type IovaDomain } from "./iova.ts";

/** DMA_MAPPING_ERROR */
export const DMA_MAPPING_ERROR = -1;

/**
 * Why the last dma_map_page returned DMA_MAPPING_ERROR (the kernel logs it,
 * or says nothing): set only on failure, so a mapping costs nothing extra;
 * dmaMapPageChecked puts it in its error's sentence.
 */
let lastMapFailure = "";

export type DmaDataDirection = "bidirectional" | "to_device" | "from_device";

/**
 * Told of every IOTLB flush a cookie's flush queue issues, after the flush
 * and before the flushed entries go back to the allocator (so `fq.fq.length`
 * is what the flush covered). The layers above use it to trace flushes.
 */
export type FqFlushHook = (cookie: IommuDmaCookie, reason: FqFlushReason) => void;

/** struct iommu_dma_cookie */
export class IommuDmaCookie {
  fq: FlushQueue | null = null;
  /** Model only: set up by the map in progress, which takes it away again if it fails (dropFreshCookie). */
  fresh = false;
  /** Model only: called on each flush-queue IOTLB flush (null: nobody listens). */
  fqFlushHook: FqFlushHook | null = null;
  /** The IOVA granule and its reciprocal: a power of two, so `x * invGranule` is `x / granule` exactly, and cheaper. */
  readonly granule: number;
  readonly invGranule: number;
  /** The last DMA mask an IOVA limit was worked out for (-1: none), and that limit's frame (iommu_dma_alloc_iova). */
  limitMask = -1;
  limitPfn = 0;
  /** Whether the IOVA granule is the domain's smallest page: one granule then maps and unmaps by frame number. */
  readonly granuleIsPage: boolean;
  constructor(
    readonly iovad: IovaDomain,
    readonly domain: IommuDomain,
  ) {
    this.granule = iovad.granule;
    this.invGranule = 1 / iovad.granule;
    this.granuleIsPage = domain.pgsizes[0] === iovad.granule;
  }
}

/** The cookie of a DMA-API domain (created on first use by iommu_dma_init_domain). */
export function dmaCookie(domain: IommuDomain): IommuDmaCookie | null {
  return domain.cookie as IommuDmaCookie | null;
}

// @kernel: iommu_dma_init_domain (and iova_reserve_iommu_regions)
export function iommuDmaInitDomain(domain: IommuDomain, dev: Device): IommuDmaCookie | KError {
  const granule = domain.pgsizes[0];
  if (granule === undefined) return kerr("EINVAL", `${domain} has no page sizes`);
  // IOVA page 0 is never handed out.
  const basePfn = Math.max(1, Math.floor(domain.geometry.apertureStart / granule));
  const iovad = initIovaDomain(granule, basePfn);
  if (isErr(iovad)) return iovad;
  // Firmware and hardware reserved regions never become IOVAs (software MSI windows excepted).
  const group = devGroup(dev);
  for (const gdev of group?.devices ?? []) {
    for (const r of iommuGetResvRegions(gdev.dev)) {
      if (r.type === "sw-msi") continue;
      const lo = Math.floor(r.start / granule);
      const hi = Math.floor((r.start + r.length - 1) / granule);
      if (lo <= iovad.pfnMax) iovad.reserveIova(lo, Math.min(hi, iovad.pfnMax));
    }
  }
  const cookie = new IommuDmaCookie(iovad, domain);
  domain.cookie = cookie;
  if (domain.type === IOMMU_DOMAIN_DMA_FQ) iommuDmaInitFq(domain);
  return cookie;
}

/**
 * @kernel: iommu_dma_init_fq — the flush queue of a DMA-FQ domain (drivers
 * with IOMMU_CAP_DEFERRED_FLUSH), when it becomes DMA-FQ after its cookie
 * exists too (the sysfs switch). A domain whose cookie is not set up yet
 * gets its queue with the cookie.
 */
export function iommuDmaInitFq(domain: IommuDomain): 0 | KError {
  const cookie = dmaCookie(domain);
  if (cookie !== null && cookie.fq === null) cookie.fq = new FlushQueue();
  return 0;
}

/**
 * The cookie of `dev`'s DMA domain once it is set up; null when it is not
 * yet, or when the device does not use iommu-dma. Small and free of type
 * tests, so that V8 inlines it into the map and unmap paths (only this layer
 * sets a domain's cookie, and only to an IommuDmaCookie).
 */
export function dmaReadyCookie(dev: Device): IommuDmaCookie | null {
  return (dmaApiDomain(dev)?.cookie ?? null) as IommuDmaCookie | null;
}

/** The domain the DMA API maps `dev`'s buffers through now: its group's default domain if it uses iommu-dma, else null (dma-direct). */
// @kernel: iommu_get_dma_domain
export function dmaApiDomain(dev: Device): IommuDomain | null {
  return dev.dmaIommu ? (devGroup(dev)?.defaultDomain ?? null) : null;
}

/** The cookie of `dev`'s DMA domain, set up on first use; null when the device does not use iommu-dma. */
export function dmaDomainCookie(dev: Device): IommuDmaCookie | KError | null {
  const ready = dmaReadyCookie(dev);
  if (ready !== null || !dev.dmaIommu) return ready;
  const domain = devGroup(dev)?.defaultDomain ?? null;
  if (domain === null) return null;
  return iommuIsDmaDomain(domain) ? iommuDmaInitDomain(domain, dev) : null;
}

// @kernel: dma_info_to_prot
export function dmaInfoToProt(dir: DmaDataDirection): number {
  return dir === "to_device" ? IOMMU_READ : dir === "from_device" ? IOMMU_WRITE : IOMMU_READ | IOMMU_WRITE;
}

/**
 * The kernel's callers pass dma_get_mask(dev) as the limit; it is read here,
 * from the device, because an address of 2^31 or more passed to a call V8
 * does not inline becomes a new heap number on every map.
 */
// @kernel: iommu_dma_alloc_iova (returns the IOVA's frame number, 0 for none)
export function iommuDmaAllocIova(cookie: IommuDmaCookie, dev: Device, pages: number): number {
  // The limit follows from the mask and the domain's aperture: worked out once per mask (a PCI device
  // whose mask reaches past 4 GiB may try below 4 GiB first, so it always works its limit out).
  const mask = dev.dmaMask;
  if (mask === cookie.limitMask && (mask <= 0xffffffff || dev.pci === null)) return cookie.iovad.allocIovaFast(pages, cookie.limitPfn, true);
  return iommuDmaAllocIovaLimit(cookie, dev, pages);
}

function iommuDmaAllocIovaLimit(cookie: IommuDmaCookie, dev: Device, pages: number): number {
  let dmaLimit = dev.dmaMask;
  const iovad = cookie.iovad;
  const geometry = cookie.domain.geometry;
  const gran = iovad.granule;
  if (geometry.forceAperture && geometry.apertureEnd < dmaLimit) dmaLimit = geometry.apertureEnd;
  // Try to get PCI devices a 32-bit (SAC) address first.
  if (dmaLimit > 0xffffffff && dev.pci !== null) {
    const p = devIommu(dev)!;
    if (p.pci32bitWorkaround) {
      const pfn = iovad.allocIovaFast(pages, Math.floor(0xffffffff / gran), false);
      if (pfn !== 0) return pfn;
      p.pci32bitWorkaround = false;
    }
  }
  const limitPfn = Math.floor(dmaLimit * cookie.invGranule);
  // PCI devices try below 4 GiB first (above): only the plain case is remembered.
  if (!(dmaLimit > 0xffffffff && dev.pci !== null)) {
    cookie.limitMask = dev.dmaMask;
    cookie.limitPfn = limitPfn;
  }
  return iovad.allocIovaFast(pages, limitPfn, true);
}

/** Runs the flush-queue timers that are due at model time `now`; returns how many fired. */
export function dmaRunTimers(domains: Iterable<IommuDomain>, now: number): number {
  let fired = 0;
  for (const d of domains) {
    const c = dmaCookie(d);
    if (c?.fq?.timerOn && c.fq.timerDeadline <= now) {
      fqFlushTimeout(c);
      fired++;
    }
  }
  return fired;
}

/**
 * @kernel: iommu_dma_map_phys (__iommu_dma_map)
 * Returns the DMA address, or DMA_MAPPING_ERROR. A device that does not use
 * iommu-dma (identity domain, no IOMMU) gets dma-direct: its bus address is
 * the physical address, if the DMA mask reaches it (swiotlb is not modelled).
 */
export function dmaMapPage(dev: Device, phys: number, size: number, dir: DmaDataDirection): number {
  const cookie = dmaReadyCookie(dev);
  // A buffer within one granule, the common case, goes down as frame numbers (small integers, never boxed).
  if (cookie !== null && size > 0) {
    const gran = cookie.granule;
    const off = (phys >>> 0) & (gran - 1);
    if (off + size <= gran && cookie.granuleIsPage) {
      const pfn = iommuDmaMapOne(cookie, dev, Math.floor(phys * cookie.invGranule), dir);
      // -1 is DMA_MAPPING_ERROR: a literal keeps the result an unboxed double (the module constant is a tagged load).
      return pfn === 0 ? -1 : pfn * gran + off;
    }
  }
  // The unary plus makes both results plain doubles where V8 inlines this function: otherwise it
  // boxes the fast path's address (2^31 or more) into a heap number to merge it with this call's.
  return +dmaMapPageSlow(dev, phys, size, dir);
}

/** dma_map_page of anything else: a zero length, a range over granules, a cookie not set up yet. */
function dmaMapPageSlow(dev: Device, phys: number, size: number, dir: DmaDataDirection): number {
  // A zero-length mapping maps nothing (see dmaMapPageChecked); also catches NaN and negatives.
  if (!(size > 0)) return DMA_MAPPING_ERROR;
  const cookie = dmaReadyCookie(dev);
  return cookie !== null ? iommuDmaMapPhys(cookie, dev, phys, size, dir) : dmaMapPageFirst(dev, phys, size, dir);
}

/**
 * __iommu_dma_map of one granule at physical frame physPfn, the domain's
 * smallest page: the IOVA frame it is mapped at, 0 for none.
 */
// @kernel: __iommu_dma_map
function iommuDmaMapOne(cookie: IommuDmaCookie, dev: Device, physPfn: number, dir: DmaDataDirection): number {
  const pfn = iommuDmaAllocIova(cookie, dev, 1);
  if (pfn === 0) {
    lastMapFailure = `no IOVA space for 1 granule(s) below ${dev.name}'s DMA mask 0x${dev.dmaMask.toString(16)}`;
    iovaAllocFailed(cookie);
    return 0;
  }
  const r = iommuMapOnePfn(cookie.domain, pfn, physPfn, dmaInfoToProt(dir));
  if (r !== 0) {
    iommuDmaFreeIova(cookie, pfn, 1, r);
    lastMapFailure = `iommu_map failed: ${r.toString()}`;
    return 0;
  }
  return pfn;
}

/** dma_map_page before the DMA domain's cookie exists: set it up, or map dma-direct. */
function dmaMapPageFirst(dev: Device, phys: number, size: number, dir: DmaDataDirection): number {
  const cookie = dmaDomainCookie(dev);
  if (cookie === null) {
    if (phys + size - 1 <= dev.dmaMask) return phys;
    lastMapFailure = `dma-direct: the buffer ends beyond ${dev.name}'s DMA mask 0x${dev.dmaMask.toString(16)} (swiotlb is not modelled)`;
    return DMA_MAPPING_ERROR;
  }
  if (isErr(cookie)) {
    lastMapFailure = `the DMA domain could not be set up: ${cookie.toString()}`;
    return DMA_MAPPING_ERROR;
  }
  cookie.fresh = true;
  const dma = iommuDmaMapPhys(cookie, dev, phys, size, dir);
  cookie.fresh = false;
  if (dma === DMA_MAPPING_ERROR) dropFreshCookie(cookie);
  return dma;
}

/**
 * The kernel sets a DMA domain's cookie up when its device is probed
 * (iommu_dma_init_domain); the model does it at the first DMA, because a
 * machine of 100,000 devices would otherwise hold 100,000 IOVA trees. A
 * first DMA that fails takes the cookie it set up away again, so the state
 * is what it was before, as the kernel's is (its failed map leaves only
 * the allocator's max32_alloc_size hint behind).
 */
export function dropFreshCookie(cookie: IommuDmaCookie): void {
  cookie.domain.cookie = null;
}

/**
 * The IOVA of a dma_map that failed goes back through free_iova_fast, which
 * parks it in the per-CPU cache: it stays in the tree, as in the kernel
 * (a failure effect). Off the success path.
 */
// @kernel: iommu_dma_free_iova
export function iommuDmaFreeIova(cookie: IommuDmaCookie, pfn: number, pages: number, why: KError): void {
  const live = cookie.iovad.treeNodesLive;
  cookie.iovad.freeIovaFast(pfn, pages);
  // Freed to the tree after all (the cache was full), or the cookie goes with the failed first map: nothing stays.
  if (cookie.iovad.treeNodesLive !== live || cookie.fresh) return;
  const d = cookie.domain;
  d.effects?.effect("dma-map-iova-cached", String(d), `the map failed with ${why.errno}; its IOVA range at pfn 0x${pfn.toString(16)} (${pages} granule(s)) went back through free_iova_fast`);
}

/** alloc_iova_fast found no space even after flushing the IOVA caches back to the tree: they stay flushed (a failure effect). */
export function iovaAllocFailed(cookie: IommuDmaCookie): void {
  const freed = cookie.iovad.lastFlushFreed;
  if (freed === 0 || cookie.fresh) return;
  cookie.iovad.lastFlushFreed = 0;
  const d = cookie.domain;
  d.effects?.effect("iova-alloc-flushes-caches", String(d), `no IOVA fitted; alloc_iova_fast flushed ${freed} cached range(s) back to the tree before it gave up`);
}

/** The iommu-dma half of dma_map_page: an IOVA, the mapping, the DMA address. */
// @kernel: __iommu_dma_map
function iommuDmaMapPhys(cookie: IommuDmaCookie, dev: Device, phys: number, size: number, dir: DmaDataDirection): number {
  const iovad = cookie.iovad;
  const gran = iovad.granule;
  const off = (phys >>> 0) & (gran - 1);
  const pages = granPages(size + off, gran);
  const pfn = iommuDmaAllocIova(cookie, dev, pages);
  if (pfn === 0) {
    lastMapFailure = `no IOVA space for ${pages} granule(s) below ${dev.name}'s DMA mask 0x${dev.dmaMask.toString(16)}`;
    iovaAllocFailed(cookie);
    return DMA_MAPPING_ERROR;
  }
  const prot = dmaInfoToProt(dir);
  const domain = cookie.domain;
  // One granule, the common case, goes down by frame number (no boxed addresses).
  const r =
    pages === 1 && domain.pgsizes[0] === gran
      ? iommuMapOnePfn(domain, pfn, Math.floor(phys / gran), prot)
      : iommuMap(domain, pfn * gran, phys - off, pages * gran, prot);
  if (r !== 0) {
    iommuDmaFreeIova(cookie, pfn, pages, r);
    lastMapFailure = `iommu_map failed: ${r.toString()}`;
    return DMA_MAPPING_ERROR;
  }
  return pfn * gran + off;
}

/**
 * dma_map_page as a caller that checks dma_mapping_error sees it: the DMA
 * address, or why there is none. A zero-length mapping is EINVAL, refused
 * before anything is allocated: the kernel's dma_map_page has no check and
 * would hand iommu_dma_alloc_iova a length of 0 (alloc_iova_fast's
 * roundup_pow_of_two(0) is undefined); its newer IOVA API refuses one with
 * WARN_ON_ONCE(!size) in dma_iova_try_alloc, and the model does the same
 * here. Any other DMA_MAPPING_ERROR is ENOMEM, as dma_mapping_error returns.
 */
export function dmaMapPageChecked(dev: Device, phys: number, size: number, dir: DmaDataDirection): number | KError {
  // @kernel: dma_iova_try_alloc
  if (!(size > 0)) return kerr("EINVAL", `dma_map_page of ${size} bytes: a zero-length mapping maps nothing`);
  const dma = dmaMapPage(dev, phys, size, dir);
  // @kernel: dma_mapping_error
  if (dma === DMA_MAPPING_ERROR) {
    return kerr("ENOMEM", `DMA_MAPPING_ERROR: no mapping of 0x${size.toString(16)} bytes at PA 0x${phys.toString(16)} for ${dev.name}: ${lastMapFailure}`);
  }
  return dma;
}

/** Whole IOVA granules covering `bytes` (granules are powers of two up to PAGE_SIZE). */
function granPages(bytes: number, gran: number): number {
  return Math.ceil(bytes / gran);
}

const unmapGather = newIommuIotlbGather();

/** @kernel: iommu_dma_unmap_phys (__iommu_dma_unmap); returns the bytes unmapped. */
export function dmaUnmapPage(dev: Device, dma: number, size: number, now = 0): number {
  // Nothing was mapped through iommu-dma before its cookie existed.
  const cookie = dmaReadyCookie(dev);
  if (cookie === null) return 0;
  // One granule, the common case, by frame number.
  const gran = cookie.granule;
  const off = (dma >>> 0) & (gran - 1);
  if (off + size <= gran && off + size > 0) return iommuDmaUnmapOne(cookie, Math.floor(dma * cookie.invGranule), now);
  return iommuDmaUnmapPhys(cookie, dma, size, now);
}

/** __iommu_dma_unmap of the one granule at IOVA frame pfn. */
// @kernel: __iommu_dma_unmap
function iommuDmaUnmapOne(cookie: IommuDmaCookie, pfn: number, now: number): number {
  const domain = cookie.domain;
  const gran = cookie.granule;
  const g = unmapGather;
  iommuIotlbGatherInit(g);
  const q = cookie.fq;
  g.queued = q !== null;
  const unmapped = cookie.granuleIsPage ? iommuUnmapFastOnePfn(domain, pfn, g) : iommuUnmapFast(domain, pfn * gran, gran, g);
  if (q === null) {
    iommuIotlbSync(domain, g);
    cookie.iovad.freeIovaFast(pfn, 1);
  } else {
    queueIova(cookie, q, pfn, 1, g.freelist, now);
  }
  return unmapped;
}

/** __iommu_dma_unmap of any range. */
// @kernel: __iommu_dma_unmap
function iommuDmaUnmapPhys(cookie: IommuDmaCookie, dma: number, size: number, now: number): number {
  const iovad = cookie.iovad;
  const gran = iovad.granule;
  const off = (dma >>> 0) & (gran - 1);
  const pfn = Math.floor(dma / gran);
  const pages = granPages(size + off, gran);
  const domain = cookie.domain;
  const g = unmapGather;
  iommuIotlbGatherInit(g);
  const q = cookie.fq;
  g.queued = q !== null;
  const unmapped =
    pages === 1 && domain.pgsizes[0] === gran ? iommuUnmapFastOnePfn(domain, pfn, g) : iommuUnmapFast(domain, pfn * gran, pages * gran, g);
  if (q === null) {
    iommuIotlbSync(domain, g);
    iovad.freeIovaFast(pfn, pages);
  } else {
    // Lazy: the IOVA and any detached table pages wait for a flush of the whole IOTLB.
    queueIova(cookie, q, pfn, pages, g.freelist, now);
  }
  return unmapped;
}


/** IOVA and flush-queue state of a DMA domain, for the snapshot (the fq_* keys are null for a strict domain). */
export interface DmaDomainStats {
  /** IOVA ranges in the allocator's tree: live mappings, reserved regions, and ranges parked in its per-CPU caches (the anchor not counted). */
  iovas: number;
  /** Entries waiting in the flush queue. */
  fq: number | null;
  /** IOTLB flushes the flush queue issued: in all, because its ring was full, because its timer fired. */
  fq_flushes: number | null;
  fq_full_flushes: number | null;
  fq_timer_flushes: number | null;
}

/** Flush-queue state of a DMA domain, for the snapshot. */
export function dmaDomainStats(domain: IommuDomain): DmaDomainStats | null {
  const c = dmaCookie(domain);
  if (c === null) return null;
  const q = c.fq;
  return {
    // treeNodesLive already leaves the anchor out.
    iovas: c.iovad.treeNodesLive,
    fq: q?.fq.length ?? null,
    fq_flushes: q?.flushes ?? null,
    fq_full_flushes: q?.fullFlushes ?? null,
    fq_timer_flushes: q?.timerFlushes ?? null,
  };
}

/** Whether `iova` sits in a lazy domain's flush queue (unmapped, not yet invalidated). */
export function dmaIovaQueued(domain: IommuDomain, iova: number): boolean {
  const c = dmaCookie(domain);
  if (c === null || c.fq === null) return false;
  return c.fq.holds(Math.floor(iova / c.iovad.granule));
}
