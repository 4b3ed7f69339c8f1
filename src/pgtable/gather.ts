/**
 * `struct iommu_iotlb_gather` and its helpers (include/linux/iommu.h).
 *
 * The core starts a gather for an unmap, drivers widen it page by page or by
 * range, and `iommu_iotlb_sync` hands it to the driver's `iotlb_sync` and
 * re-initialises it. Page-table pages that generic_pt detaches during an
 * unmap wait on `freelist` until that sync: the hardware may still walk them
 * until the IOTLB is invalidated.
 */
import type { TablePool } from "./pool.ts";

/**
 * `struct iommu_pages_list`: table pages waiting to be freed. Parallel arrays,
 * one element per detached page; filled only when tables are freed.
 */
export class IommuPagesList {
  private pools: TablePool[] = [];
  private offsets: number[] = [];
  private bytes: number[] = [];

  get length(): number {
    return this.offsets.length;
  }

  /** Queue one single-page table allocation of `pool` for freeing. */
  add(pool: TablePool, off: number, bytes: number): void {
    this.pools.push(pool);
    this.offsets.push(off);
    this.bytes.push(bytes);
  }

  /** Move every page of `other` onto this list (`iommu_pages_list_splice`). */
  splice(other: IommuPagesList): void {
    for (let i = 0; i < other.offsets.length; i++) this.add(other.pools[i]!, other.offsets[i]!, other.bytes[i]!);
    other.init();
  }

  /** Free every queued page back to its pool (`iommu_put_pages_list`). */
  put(): void {
    for (let i = 0; i < this.offsets.length; i++) this.pools[i]!.free(this.offsets[i]!, 1, this.bytes[i]!);
    this.init();
  }

  /** Empty the list without freeing (`INIT_LIST_HEAD`): pages not put first stay allocated, i.e. leak. */
  init(): void {
    // Setting an array's length is a runtime call; the common gather holds no pages.
    if (this.offsets.length === 0) return;
    this.pools.length = 0;
    this.offsets.length = 0;
    this.bytes.length = 0;
  }
}

/** Stand-in for ULONG_MAX, the empty gather's start. */
const GATHER_EMPTY_START = Number.POSITIVE_INFINITY;

export interface IommuIotlbGather {
  /** First byte to invalidate (ULONG_MAX when empty). */
  start: number;
  /** Last byte to invalidate, inclusive (0 when empty). */
  end: number;
  /** Page size of the gathered leaf invalidations (0 when none). */
  pgsize: number;
  /** A flush-all will follow later (flush queue): drivers skip per-page work. */
  queued: boolean;
  /** Detached table pages to free once the IOTLB has been synced. */
  readonly freelist: IommuPagesList;
}

/** A new, initialised gather. */
export function newIommuIotlbGather(queued = false): IommuIotlbGather {
  return { start: GATHER_EMPTY_START, end: 0, pgsize: 0, queued, freelist: new IommuPagesList() };
}

// @kernel: iommu_iotlb_gather_init
export function iommuIotlbGatherInit(gather: IommuIotlbGather): void {
  gather.start = GATHER_EMPTY_START;
  gather.end = 0;
  gather.pgsize = 0;
  gather.queued = false;
  gather.freelist.init();
}

// @kernel: iommu_iotlb_gather_queued
export function iommuIotlbGatherQueued(gather: IommuIotlbGather): boolean {
  return gather.queued;
}

// @kernel: iommu_iotlb_gather_is_disjoint
export function iommuIotlbGatherIsDisjoint(gather: IommuIotlbGather, iova: number, size: number): boolean {
  const end = iova + size - 1;
  return gather.end !== 0 && (end + 1 < gather.start || iova > gather.end + 1);
}

// @kernel: iommu_iotlb_gather_add_range
export function iommuIotlbGatherAddRange(gather: IommuIotlbGather, iova: number, size: number): void {
  const end = iova + size - 1;
  if (gather.start > iova) gather.start = iova;
  if (gather.end < end) gather.end = end;
}

/**
 * Add one page; sync first when its size differs from the gathered pages or
 * it is disjoint from the gathered range. `iotlbSync` is the core's
 * `iommu_iotlb_sync` for the domain: the driver's sync, then re-init.
 */
// @kernel: iommu_iotlb_gather_add_page
export function iommuIotlbGatherAddPage(
  gather: IommuIotlbGather,
  iova: number,
  size: number,
  iotlbSync: (gather: IommuIotlbGather) => void,
): void {
  if ((gather.pgsize !== 0 && gather.pgsize !== size) || iommuIotlbGatherIsDisjoint(gather, iova, size)) {
    iotlbSync(gather);
  }
  gather.pgsize = size;
  iommuIotlbGatherAddRange(gather, iova, size);
}
