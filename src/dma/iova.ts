/**
 * The IOVA allocator of the DMA layer, after drivers/iommu/iova.c (v6.7
 * era, commit 911aa1245da8 "iommu/iova: Make the rcache depot scale better"
 * plus "iommu/iova: Manage the depot list size") and include/linux/iova.h.
 *
 * An IOVA domain hands out ranges of pfns (IOVA page frames of `granule`
 * bytes) from a red-black tree of allocated ranges, top-down from a limit,
 * starting the walk at a cached node; an "anchor" range at IOVA_ANCHOR sits
 * above all usable space. In front of the tree, per-CPU magazines of
 * recently freed ranges of 1..32 granules (the rcache) serve
 * allocIovaFast / freeIovaFast without touching the tree.
 *
 * pfns are JS numbers, exact up to 2^53. The model's ~0UL is
 * IOVA_ANCHOR = 2^53 - 1, and usable pfns stop at `pfnMax`, the smaller of
 * the kernel's ULLONG_MAX >> iova_shift and IOVA_ANCHOR - 1.
 *
 * Failures: allocIova and reserveIova return a KError where the kernel
 * returns NULL; allocIovaFast returns 0, as the kernel does (dma-iommu
 * turns that into DMA_MAPPING_ERROR). Kernel WARNs are recorded in
 * `warnings`. Calling with arguments no kernel caller could pass (a
 * fractional size, a CPU that is not online, a domain already put) throws
 * an IommuSimError.
 */
import { IommuSimError, kerr, type KError } from "../lib/errno.ts";
import { isPowerOfTwo } from "../lib/bits.ts";
import { PAGE_SIZE } from "../pgtable/sizes.ts";
import { roundupPowOfTwo } from "./iova/log2.ts";
import { IOVA_MAG_SIZE } from "./iova/magazine.ts";
import { IOVA_DEPOT_DELAY_MS, IOVA_RANGE_CACHE_MAX_SIZE, IovaRcaches } from "./iova/rcache.ts";
import { RB_NIL, RangeTree } from "./iova/rbtree.ts";

export { IOVA_DEPOT_DELAY_MS, IOVA_MAG_SIZE, IOVA_RANGE_CACHE_MAX_SIZE };


/** The anchor's pfn_lo and pfn_hi: the model's ~0UL. */
export const IOVA_ANCHOR = Number.MAX_SAFE_INTEGER;

/** A range in a domain's tree (the kernel's `struct iova *`). */
export type IovaNode = number & { readonly __iovaNode: true };

export interface IovaDomainOptions {
  /** Possible CPUs, all online at first. Default 1. */
  nrCpus?: number;
  /** Most magazines that may exist at once (models GFP_ATOMIC failing). Default unlimited. */
  magazineLimit?: number;
}

// @kernel: iova_rcache_range
export function iovaRcacheRange(): number {
  return PAGE_SIZE << (IOVA_RANGE_CACHE_MAX_SIZE - 1);
}

/**
 * A new domain with its range caches. EINVAL where the kernel BUGs (a
 * granule that is not a power of two up to PAGE_SIZE); ENOMEM when the
 * per-CPU magazines do not fit under `magazineLimit`.
 */
// @kernel: init_iova_domain
export function initIovaDomain(granule: number, startPfn: number, opts: IovaDomainOptions = {}): IovaDomain | KError {
  if (!isPowerOfTwo(granule) || granule > PAGE_SIZE) {
    return kerr("EINVAL", `IOVA granule ${granule} is not a power of two of at most PAGE_SIZE (${PAGE_SIZE})`);
  }
  const nrCpus = opts.nrCpus ?? 1;
  if (!Number.isInteger(nrCpus) || nrCpus < 1) return kerr("EINVAL", `${nrCpus} is not a number of CPUs`);
  const pfnMax = iovaPfnMax(granule);
  if (!isPfn(startPfn) || startPfn > pfnMax) {
    return kerr("EINVAL", `start pfn ${startPfn} is outside the IOVA space (0..${pfnMax})`);
  }
  // @kernel: iova_domain_init_rcaches
  const rcaches = IovaRcaches.init(nrCpus, opts.magazineLimit ?? Infinity);
  if (rcaches === null) {
    return kerr("ENOMEM", `cannot allocate the ${2 * nrCpus * IOVA_RANGE_CACHE_MAX_SIZE} per-CPU IOVA magazines`);
  }
  return new IovaDomain(granule, startPfn, rcaches, nrCpus);
}

/** The highest usable pfn: ULLONG_MAX >> iova_shift, below the model's anchor. */
function iovaPfnMax(granule: number): number {
  return Math.min(2 ** 64 / granule, IOVA_ANCHOR) - 1;
}

function isPfn(x: number): boolean {
  return Number.isInteger(x) && x >= 0;
}

function checkClass(cls: number): number {
  if (!Number.isInteger(cls) || cls < 0 || cls >= IOVA_RANGE_CACHE_MAX_SIZE) {
    throw new IommuSimError("EINVAL", `${cls} is not an IOVA range cache class (0..${IOVA_RANGE_CACHE_MAX_SIZE - 1})`);
  }
  return cls;
}

/** The largest cached size, in granules (32). */
const IOVA_RCACHE_MAX_GRANULES = 1 << (IOVA_RANGE_CACHE_MAX_SIZE - 1);

/** Allocation failures inside the model (the kernel's -ENOMEM paths). */
const IOVA32_FULL = -1;
const NO_SPACE = -2;

class IovaDomain {
  readonly granule: number;
  // @kernel: iova_shift
  readonly iovaShift: number;
  readonly startPfn: number;
  readonly dma32bitPfn: number;
  /** Highest pfn a range may use. */
  readonly pfnMax: number;
  /** Kernel WARN_ONs hit, in order. */
  readonly warnings: string[] = [];
  /** CPU that allocIovaFast / freeIovaFast run on when none is given. */
  currentCpu = 0;
  /** Ranges the last flush before a retry of alloc_iova_fast returned from the caches to the tree (set on that cold path only). */
  lastFlushFreed = 0;

  readonly tree = new RangeTree();
  readonly anchor: IovaNode;
  readonly rcaches: IovaRcaches;
  private cachedNodeRef: number;
  private cached32NodeRef: number;
  private max32Size: number;
  private readonly cpuOnlineMask: Uint8Array;
  private onlineCpus: number;
  private dead = false;

  constructor(granule: number, startPfn: number, rcaches: IovaRcaches, nrCpus: number) {
    this.granule = granule;
    this.iovaShift = Math.log2(granule);
    this.startPfn = startPfn;
    this.dma32bitPfn = 2 ** (32 - this.iovaShift);
    this.max32Size = this.dma32bitPfn;
    this.pfnMax = iovaPfnMax(granule);
    this.rcaches = rcaches;
    const anchor = this.tree.allocNode(IOVA_ANCHOR, IOVA_ANCHOR);
    this.tree.insert(anchor, RB_NIL);
    this.anchor = anchor as IovaNode;
    this.cachedNodeRef = anchor;
    this.cached32NodeRef = anchor;
    this.cpuOnlineMask = new Uint8Array(nrCpus).fill(1);
    this.onlineCpus = nrCpus;
  }

  /** Requests below 4 GiB this large fail without a walk, until a range there is freed. */
  get max32AllocSize(): number {
    return this.max32Size;
  }

  /** Start of the walk for limits above 4 GiB: the last range allocated there. */
  get cachedNode(): IovaNode {
    return this.cachedNodeRef as IovaNode;
  }

  /** Start of the walk for limits at or below 4 GiB. */
  get cached32Node(): IovaNode {
    return this.cached32NodeRef as IovaNode;
  }

  get nrCpuIds(): number {
    return this.cpuOnlineMask.length;
  }

  // @kernel: num_online_cpus
  numOnlineCpus(): number {
    return this.onlineCpus;
  }

  cpuIsOnline(cpu: number): boolean {
    return this.cpuOnlineMask[cpu] === 1;
  }

  pfnLo(iova: IovaNode): number {
    return this.tree.pfnLo[iova]!;
  }

  pfnHi(iova: IovaNode): number {
    return this.tree.pfnHi[iova]!;
  }

  // @kernel: iova_size
  iovaSize(iova: IovaNode): number {
    return this.tree.pfnHi[iova]! - this.tree.pfnLo[iova]! + 1;
  }

  // @kernel: iova_mask
  iovaMask(): number {
    return this.granule - 1;
  }

  // @kernel: iova_offset
  iovaOffset(addr: number): number {
    return addr % this.granule;
  }

  // @kernel: iova_align
  iovaAlign(size: number): number {
    return Math.ceil(size / this.granule) * this.granule;
  }

  // @kernel: iova_dma_addr
  iovaDmaAddr(iova: IovaNode): number {
    return this.tree.pfnLo[iova]! * this.granule;
  }

  // @kernel: iova_pfn
  iovaPfn(addr: number): number {
    return Math.floor(addr / this.granule);
  }

  /** Ranges in the tree, the anchor excepted (cached ranges included). */
  get treeNodesLive(): number {
    return this.tree.nodesLive - 1;
  }

  /** Pfns held by the range cache of class `cls`, on every CPU and in the depot. */
  cachedPfns(cls: number): number {
    return this.rcaches.cachedPfns(checkClass(cls));
  }

  depotSize(cls: number): number {
    return this.rcaches.depotSize(checkClass(cls));
  }

  get magazinesLive(): number {
    return this.rcaches.mags.live;
  }

  warn(message: string): void {
    this.warnings.push(message);
  }

  /**
   * A range of `size` pfns ending at or below limitPfn, as high as the walk
   * finds one; with sizeAligned, pfn_lo is a multiple of
   * roundup_pow_of_two(size) (the size itself is not rounded).
   */
  // @kernel: alloc_iova
  allocIova(size: number, limitPfn: number, sizeAligned: boolean): IovaNode | KError {
    this.assertAlive();
    if (!isPfn(size) || size === 0) return kerr("EINVAL", `cannot allocate an IOVA range of ${size} granules`);
    if (!isPfn(limitPfn)) return kerr("EINVAL", `${limitPfn} is not a limit pfn`);
    const limit = Math.min(limitPfn, this.pfnMax);
    const node = this.allocAndInsertIovaRange(size, limit + 1, sizeAligned);
    if (node === IOVA32_FULL) {
      return kerr(
        "ENOMEM",
        `no ${size}-granule IOVA range below 4 GiB: the 32-bit space is known full for sizes of ${this.max32AllocSize} and more`,
      );
    }
    if (node === NO_SPACE) {
      return kerr("ENOMEM", `no free ${size}-granule IOVA range between pfn ${this.startPfn} and ${limit}`);
    }
    return node as IovaNode;
  }

  /** The range containing pfn, or null. */
  // @kernel: find_iova
  findIova(pfn: number): IovaNode | null {
    this.assertAlive();
    const n = this.tree.find(pfn);
    return n === RB_NIL ? null : (n as IovaNode);
  }

  /** Frees the range containing pfn; a pfn in no range is ignored. */
  // @kernel: free_iova
  freeIova(pfn: number): void {
    const n = this.findIova(pfn);
    if (n !== null) this.__freeIova(n);
  }

  /** Frees a range known to be in the tree. */
  // @kernel: __free_iova
  __freeIova(iova: IovaNode): void {
    this.assertAlive();
    if (!this.tree.isNode(iova)) throw new IommuSimError("EINVAL", `${iova} is not a live IOVA range`);
    if (iova === this.anchor) {
      this.warn("__free_iova: the anchor is not a range and stays in the tree");
      return;
    }
    this.removeIova(iova);
    this.tree.freeNode(iova);
  }

  /**
   * Takes [pfnLo, pfnHi] out of use. Overlapping ranges are grown instead
   * of duplicated: the lowest one is lowered to pfnLo, gaps between
   * overlapped ranges are absorbed by the range above each gap, and only
   * the part above the last overlapped range becomes a new range. When one
   * range already covers the request, that range is returned.
   */
  // @kernel: reserve_iova
  reserveIova(pfnLo: number, pfnHi: number): IovaNode | KError {
    this.assertAlive();
    if (!isPfn(pfnLo) || !isPfn(pfnHi) || pfnLo > this.pfnMax || pfnHi > this.pfnMax) {
      this.warn(`reserve_iova: nonsensical pfns ${pfnLo}..${pfnHi}`);
      return kerr("EINVAL", `cannot reserve pfns ${pfnLo}..${pfnHi}: the IOVA space ends at ${this.pfnMax}`);
    }
    if (pfnLo > pfnHi) return kerr("EINVAL", `cannot reserve pfns ${pfnLo}..${pfnHi}: the range is empty`);
    const t = this.tree;
    let lo = pfnLo;
    // Ranges ending below pfnLo cannot overlap; the first overlap is at or after this node.
    for (let n = t.lowestEndingAtOrAbove(lo); n !== RB_NIL && t.pfnLo[n]! <= pfnHi; n = t.next(n)) {
      // @kernel: __adjust_overlap_range
      if (lo < t.pfnLo[n]!) t.pfnLo[n] = lo;
      if (pfnHi <= t.pfnHi[n]!) return n as IovaNode;
      lo = t.pfnHi[n]! + 1;
    }
    // @kernel: __insert_new_range
    const n = t.allocNode(lo, pfnHi);
    t.insert(n, RB_NIL);
    return n as IovaNode;
  }

  /** Frees every range and magazine; the domain cannot be used afterwards. */
  // @kernel: put_iova_domain
  putIovaDomain(): void {
    this.assertAlive();
    this.rcaches.free();
    this.tree.reset();
    this.dead = true;
  }

  /**
   * A range of `size` granules ending at or below limitPfn, from the range
   * cache if it has one, else from the tree (size-aligned); with
   * flushRcache, a tree failure flushes every cache and retries once.
   * Returns its pfn, or 0 when nothing fits.
   */
  // @kernel: alloc_iova_fast
  allocIovaFast(size: number, limitPfn: number, flushRcache: boolean, cpu = this.currentCpu): number {
    this.checkFast(size, limitPfn, cpu);
    if (limitPfn > this.pfnMax) limitPfn = this.pfnMax;
    // Cached ranges must be exactly their class's size, so small sizes are rounded up.
    if (size < IOVA_RCACHE_MAX_GRANULES) size = roundupPowOfTwo(size);
    const pfn = this.rcaches.get(size, limitPfn + 1, cpu);
    if (pfn !== 0) return pfn;
    return this.allocIovaFastFromTree(size, limitPfn, flushRcache);
  }

  /** Returns a range to the range cache, or to the tree when it cannot be cached. */
  // @kernel: free_iova_fast
  freeIovaFast(pfn: number, size: number, cpu = this.currentCpu): void {
    this.checkFast(size, pfn, cpu);
    if (this.rcaches.insert(pfn, size, cpu)) return;
    this.freeIova(pfn);
  }

  /** Runs the depot-trimming work of a class if queued; true when it returned a magazine to the tree. */
  // @kernel: iova_depot_work_func
  drainDepotWork(cls: number): boolean {
    this.assertAlive();
    return this.rcaches.depotWork(this, checkClass(cls));
  }

  /** Whether a class's depot-trimming work is queued (due IOVA_DEPOT_DELAY_MS after it was first queued). */
  depotWorkPending(cls: number): boolean {
    return this.rcaches.depotWorkPending(checkClass(cls));
  }

  /**
   * Takes a CPU offline and releases its cached ranges to the tree. EBUSY
   * for the last online CPU; the current CPU moves to the lowest online one.
   */
  // @kernel: iova_cpuhp_dead
  cpuOffline(cpu: number): KError | undefined {
    this.assertAlive();
    if (!this.isCpu(cpu)) return kerr("EINVAL", `CPU ${cpu} does not exist (${this.nrCpuIds} possible)`);
    if (this.cpuOnlineMask[cpu] === 0) return undefined;
    if (this.onlineCpus === 1) return kerr("EBUSY", `CPU ${cpu} is the last online CPU`);
    this.cpuOnlineMask[cpu] = 0;
    this.onlineCpus--;
    if (this.currentCpu === cpu) this.currentCpu = this.cpuOnlineMask.indexOf(1);
    this.rcaches.freeCpuCachedIovas(this, cpu);
    return undefined;
  }

  cpuOnline(cpu: number): KError | undefined {
    this.assertAlive();
    if (!this.isCpu(cpu)) return kerr("EINVAL", `CPU ${cpu} does not exist (${this.nrCpuIds} possible)`);
    if (this.cpuOnlineMask[cpu] === 0) {
      this.cpuOnlineMask[cpu] = 1;
      this.onlineCpus++;
    }
    return undefined;
  }

  /** Every online CPU's magazines, then the whole depot, back to the tree. */
  // @kernel: alloc_iova_fast (the flush before its one retry)
  flushRcaches(): void {
    this.assertAlive();
    for (let cpu = 0; cpu < this.nrCpuIds; cpu++) {
      if (this.cpuOnlineMask[cpu] === 1) this.rcaches.freeCpuCachedIovas(this, cpu);
    }
    this.rcaches.freeGlobalCachedIovas(this);
  }

  /** The rcache missed: allocate from the tree, flushing the caches and retrying once if asked. */
  // @kernel: alloc_iova_fast
  private allocIovaFastFromTree(size: number, limitPfn: number, flushRcache: boolean): number {
    for (;;) {
      const node = this.allocAndInsertIovaRange(size, limitPfn + 1, true);
      if (node > RB_NIL) return this.tree.pfnLo[node]!;
      if (!flushRcache) return 0;
      flushRcache = false;
      const live = this.tree.nodesLive;
      this.flushRcaches();
      this.lastFlushFreed = live - this.tree.nodesLive;
    }
  }

  /**
   * The tree allocation: a node, or IOVA32_FULL / NO_SPACE. limitPfn is
   * exclusive here, as in the kernel.
   */
  // @kernel: __alloc_and_insert_iova_range
  private allocAndInsertIovaRange(size: number, limitPfn: number, sizeAligned: boolean): number {
    const t = this.tree;
    const lo = t.pfnLo;
    const hi = t.pfnHi;
    const align = sizeAligned ? roundupPowOfTwo(size) : 1;
    // The 32-bit space already failed a request this large: fail without walking.
    if (limitPfn <= this.dma32bitPfn && size >= this.max32Size) return IOVA32_FULL;

    // @kernel: __get_cached_rbnode
    let curr = limitPfn <= this.dma32bitPfn ? this.cached32NodeRef : this.cachedNodeRef;
    const retryPfn = hi[curr]!;
    let highPfn = limitPfn;
    let lowPfn = this.startPfn;
    let retried = false;
    let newPfn: number;
    let prev: number;
    for (;;) {
      // Walk down from curr until the gap below a node holds the aligned range.
      do {
        if (lo[curr]! < highPfn) highPfn = lo[curr]!;
        const top = highPfn - size;
        newPfn = align === 1 || top < 0 ? top : Math.floor(top / align) * align;
        prev = curr;
        curr = t.prev(curr);
      } while (curr !== RB_NIL && newPfn <= hi[curr]! && newPfn >= lowPfn);

      if (highPfn >= size && newPfn >= lowPfn) break;
      // Nothing below the cached node: retry once from the limit, above the cached node.
      // (The kernel tests `low_pfn == start_pfn` for "not yet retried", which loops
      // forever if the cached node ends at start_pfn - 1; the model retries once.)
      if (retried || retryPfn >= limitPfn) {
        // Recorded whatever the limit, as in the version modelled.
        this.max32Size = size;
        return NO_SPACE;
      }
      retried = true;
      highPfn = limitPfn;
      lowPfn = retryPfn + 1;
      curr = this.iovaFindLimit(limitPfn);
    }

    // The pool may grow here: lo and hi must not be read past this point.
    const pfnHi = newPfn + size - 1;
    const node = t.allocNode(newPfn, pfnHi);
    t.insert(node, prev);
    // @kernel: __cached_rbnode_insert_update
    if (pfnHi < this.dma32bitPfn) this.cached32NodeRef = node;
    else this.cachedNodeRef = node;
    return node;
  }

  /**
   * Where the retry walk starts: the anchor for limits above 4 GiB, else
   * the lowest range ending at or above the limit (the kernel may pick that
   * range's successor when the range straddles the limit; the walk then
   * steps onto it, with the same result).
   */
  // @kernel: iova_find_limit
  private iovaFindLimit(limitPfn: number): number {
    if (limitPfn > this.dma32bitPfn) return this.anchor;
    return this.tree.lowestEndingAtOrAbove(limitPfn);
  }

  // @kernel: remove_iova
  private removeIova(free: number): void {
    const t = this.tree;
    const lo = t.pfnLo;
    const hi = t.pfnHi;
    // @kernel: __cached_rbnode_delete_update
    const c32 = this.cached32NodeRef;
    if (free === c32 || (hi[free]! < this.dma32bitPfn && lo[free]! >= lo[c32]!)) {
      this.cached32NodeRef = t.next(free);
    }
    if (lo[free]! < this.dma32bitPfn) this.max32Size = this.dma32bitPfn;
    if (lo[free]! >= lo[this.cachedNodeRef]!) this.cachedNodeRef = t.next(free);
    t.erase(free);
  }

  private isCpu(cpu: number): boolean {
    return Number.isInteger(cpu) && cpu >= 0 && cpu < this.nrCpuIds;
  }

  private checkFast(size: number, pfn: number, cpu: number): void {
    if (this.dead || !(Number.isInteger(size) && size >= 1) || !isPfn(pfn) || this.cpuOnlineMask[cpu] !== 1) {
      this.assertAlive();
      if (this.cpuOnlineMask[cpu] !== 1) throw new IommuSimError("EINVAL", `CPU ${cpu} is not online`);
      throw new IommuSimError("EINVAL", `bad IOVA fast-path arguments: size ${size}, pfn ${pfn}`);
    }
  }

  private assertAlive(): void {
    if (this.dead) throw new IommuSimError("EINVAL", "IOVA domain used after put_iova_domain");
  }
}

export type { IovaDomain };
