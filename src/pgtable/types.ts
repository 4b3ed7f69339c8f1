/**
 * The io-pgtable API shared by every page-table format of the model.
 *
 * Mirrors include/linux/io-pgtable.h (`struct io_pgtable_cfg`,
 * `struct io_pgtable_ops`, `struct iommu_flush_ops`) in TypeScript casing.
 * The generic_pt formats (VT-d second stage) and the iommufd selftest mock
 * are not io-pgtable formats in the kernel; the model gives them the same
 * interface so the core can drive any of them.
 */
import type { KError } from "../lib/errno.ts";
import type { IommuIotlbGather } from "./gather.ts";
import type { PgtableMemory } from "./pool.ts";

/** Page-table formats the model implements. */
export type IoPgtableFmt =
  /** io-pgtable-arm.c, stage 1 (the SMMU's CD tables). */
  | "ARM_64_LPAE_S1"
  /** io-pgtable-arm.c, stage 2 (the SMMU's STE S2 tables). */
  | "ARM_64_LPAE_S2"
  /** generic_pt fmt/vtdss.h: Intel VT-d second-stage table. */
  | "VTDSS"
  /** drivers/iommu/iommufd/selftest.c: the mock domain's xarray of 2 KiB pages. */
  | "IOMMUFD_MOCK";

/* IOMMU_* prot bits (include/linux/iommu.h). */
export const IOMMU_READ = 1 << 0;
export const IOMMU_WRITE = 1 << 1;
export const IOMMU_CACHE = 1 << 2;
export const IOMMU_NOEXEC = 1 << 3;
export const IOMMU_MMIO = 1 << 4;
export const IOMMU_PRIV = 1 << 5;

/* IO_PGTABLE_QUIRK_* bits (include/linux/io-pgtable.h). */
export const IO_PGTABLE_QUIRK_ARM_NS = 1 << 0;
export const IO_PGTABLE_QUIRK_ARM_TTBR1 = 1 << 5;
export const IO_PGTABLE_QUIRK_ARM_OUTER_WBWA = 1 << 6;
export const IO_PGTABLE_QUIRK_ARM_HD = 1 << 7;
export const IO_PGTABLE_QUIRK_ARM_S2FWB = 1 << 8;
export const IO_PGTABLE_QUIRK_NO_WARN = 1 << 9;

/**
 * TLB maintenance callbacks (`struct iommu_flush_ops`). The kernel passes an
 * opaque cookie; here the driver closes over its own state instead.
 */
export interface IommuFlushOps {
  /** Synchronously invalidate the whole context. io-pgtable never calls it. */
  tlbFlushAll(): void;
  /** Synchronously invalidate walk-cache (intermediate) state for [iova, iova+size). */
  tlbFlushWalk(iova: number, size: number, granule: number): void;
  /** Optional: queue a leaf invalidation of one page into the core's gather. */
  tlbAddPage?(gather: IommuIotlbGather, iova: number, granule: number): void;
}

/**
 * What the model reports when a kernel WARN would fire, or when it reproduces
 * (or deliberately departs from) a kernel behaviour worth knowing about.
 */
export type PgtableFindingKind =
  /** map/unmap pgsize is not made of bitmap sizes, or pgcount is 0 (WARN_ON). */
  | "bad-pgsize"
  /** iova beyond ias or paddr beyond oas (WARN_ON, -ERANGE). */
  | "out-of-range"
  /** pgsize is in the bitmap but no level of this table has that block size (WARN_ON, -EINVAL). */
  | "unreachable-pgsize"
  /** map over an existing leaf (WARN unless IO_PGTABLE_QUIRK_NO_WARN, -EEXIST). */
  | "map-exists"
  /** a block was mapped over a table that still held live mappings; they were silently discarded. */
  | "map-discards-mappings"
  /** a table could not be allocated: the pool's memory budget is spent (ENOMEM); tables installed above stay. */
  | "table-alloc-failed"
  /** a map failed after it had torn tables down for blocks earlier in the same call; they stay torn down. */
  | "map-failed-after-teardown"
  /** a batch at the start level ran past the end of the pgd, i.e. beyond ias. */
  | "map-beyond-ias"
  /** unmap of part of a block (WARN_ONCE, returns 0, block kept). */
  | "unmap-partial-block"
  /** unmap walk met an empty entry: the kernel returns (size_t)-ENOENT, the model returns 0. */
  | "unmap-enoent"
  /** a batched unmap stopped at an empty entry (WARN unless IO_PGTABLE_QUIRK_NO_WARN). */
  | "unmap-hole"
  /** map_pages without IOMMU_READ or IOMMU_WRITE (generic_pt WARN_ON, -EINVAL). */
  | "bad-prot"
  /** generic_pt installed more than pgsize * pgcount bytes (PT_WARN_ON in map_pages). */
  | "map-overrun"
  /** generic_pt iova_to_phys outside the table: the kernel returns (phys_addr_t)-ERANGE, the model 0. */
  | "iova-to-phys-erange"
  /** mock: iova or pgsize not a multiple of MOCK_IO_PAGE_SIZE (WARN_ON). */
  | "mock-misaligned"
  /** mock: map stored over an existing entry (WARN_ON(old)). */
  | "mock-map-overwrite"
  /** mock: unmap does not start on a START or end on a LAST entry of an earlier map (WARN_ON). */
  | "mock-unmap-split"
  /** mock: iova_to_phys of an unmapped or misaligned iova (WARN_ON). */
  | "mock-iova-to-phys"
  /** mock: the domain was freed while it still held entries (WARN_ON). */
  | "mock-free-nonempty";

export type PgtableFindingHandler = (kind: PgtableFindingKind, iova: number, message: string) => void;

/** What a driver passes to `allocIoPgtableOps` (the input half of `struct io_pgtable_cfg`). */
export interface IoPgtableCfgInit {
  /** IO_PGTABLE_QUIRK_* bits. */
  quirks?: number;
  /** Page sizes the hardware can do; rewritten by the allocator. */
  pgsizeBitmap: number;
  /** Input (IOVA) address bits; rewritten by the allocator. */
  ias: number;
  /** Output (physical) address bits; rewritten by the allocator. */
  oas: number;
  /** Whether the walker snoops CPU caches (default true). */
  coherentWalk?: boolean;
  /** TLB callbacks; default: callbacks that do nothing. */
  tlb?: IommuFlushOps;
  /** Called for every finding (kernel WARN or reproduced quirk). */
  onFinding?: PgtableFindingHandler;
  /** Simulated physical address of the first table page (default TABLE_POOL_DEFAULT_BASE). */
  tableBase?: number;
  /** The memory budget the table pool draws from (default: a budget of its own, PGTABLE_MEMORY_DEFAULT_LIMIT). */
  memory?: PgtableMemory;
}

/** io-pgtable-arm stage-1 register values (`cfg->arm_lpae_s1_cfg`). */
export interface ArmLpaeS1Cfg {
  readonly ttbr: number;
  readonly tcr: {
    readonly sh: number;
    readonly irgn: number;
    readonly orgn: number;
    readonly tg: number;
    readonly ips: number;
    readonly tsz: number;
  };
  readonly mair: number;
}

/** io-pgtable-arm stage-2 register values (`cfg->arm_lpae_s2_cfg`). */
export interface ArmLpaeS2Cfg {
  readonly vttbr: number;
  readonly vtcr: {
    readonly sh: number;
    readonly irgn: number;
    readonly orgn: number;
    readonly tg: number;
    readonly ps: number;
    readonly tsz: number;
    readonly sl: number;
  };
}

/** generic_pt `struct pt_iommu_vtdss_hw_info`: what the driver writes into the context/PASID entry. */
export interface VtdssHwInfo {
  readonly ssptptr: number;
  /** Address width field: top level 2 (3-level) -> 1, 3 (4-level) -> 2. */
  readonly aw: number;
}

/** The finalised configuration, as rewritten by the allocator. */
export interface IoPgtableCfg {
  readonly quirks: number;
  readonly pgsizeBitmap: number;
  readonly ias: number;
  readonly oas: number;
  readonly coherentWalk: boolean;
  readonly tlb: IommuFlushOps;
  readonly onFinding: PgtableFindingHandler | null;
  readonly tableBase: number;
  readonly armLpaeS1Cfg?: ArmLpaeS1Cfg;
  readonly armLpaeS2Cfg?: ArmLpaeS2Cfg;
  readonly vtdssHwInfo?: VtdssHwInfo;
}

/** The kernel's `size_t *mapped` out parameter: map_pages adds to it, never zeroes it. */
export interface MappedBytes {
  bytes: number;
}

/** Page-table operations (`struct io_pgtable_ops` plus the `struct io_pgtable` it lives in). */
export interface IoPgtableOps {
  readonly fmt: IoPgtableFmt;
  readonly cfg: IoPgtableCfg;
  /** Map pgcount pages of pgsize from iova to paddr; adds the bytes mapped to `mapped.bytes`. */
  mapPages(iova: number, paddr: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError;
  /** Unmap up to pgcount pages of pgsize at iova; returns the bytes unmapped. */
  unmapPages(iova: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number;
  /** Output address for iova, 0 when nothing is mapped there. */
  iovaToPhys(iova: number): number;
  /**
   * Model only: the access the leaf translating iova grants, as IOMMU_* bits
   * decoded from the entry the way the hardware reads it (IOMMU_READ and
   * IOMMU_WRITE, and IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_CACHE, IOMMU_MMIO where
   * the format encodes them); 0 when nothing is mapped there or iova is
   * outside the table. A prot the format cannot express comes back as what
   * it became (an Arm stage-1 leaf is always readable). Device DMA reads it;
   * it is a separate walk, so iova_to_phys and map/unmap do no permission work.
   */
  iovaProt(iova: number): number;
  /**
   * `mapPages(iovaPfn * g, paddrPfn * g, ...)`, where g is the table's
   * granule (the smallest size in cfg.pgsizeBitmap, the IOVA granule of the
   * DMA layer above it): the addresses as frame numbers. Frames below 2^31
   * are V8 small integers, which a call V8 does not inline passes as they
   * are, where an address of 2^31 or more is boxed into a new heap number at
   * every such call: the core can hand the IOVA allocator's pfn and the
   * page's pfn down to the table without allocating.
   */
  mapPagesPfn(iovaPfn: number, paddrPfn: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError;
  /** `unmapPages(iovaPfn * g, ...)`, g the granule as for mapPagesPfn. */
  unmapPagesPfn(iovaPfn: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number;
  /**
   * Model only: the bytes the table's leaves map, by a walk of the whole
   * table. Not the sum of what map and unmap returned: an unmap that covers
   * a whole table returns the table's span, however little was mapped in it.
   */
  leafBytes(): number;
  /** Live table allocations (the top table counts once, even when concatenated). */
  tablePages(): number;
  /** Bytes held by live table allocations. */
  tableBytes(): number;
  /** Free every table (`free_io_pgtable_ops`); the ops must not be used afterwards. */
  free(): void;
}

/**
 * The raw descriptor met at each level of one walk (the kernel's
 * `struct arm_lpae_io_pgtable_walk_data`), as two 32-bit words: lo = bits
 * 31:0, hi = bits 63:32. Indexed by the format's own level numbers; levels
 * not walked are left untouched.
 */
export interface PgtableWalkData {
  readonly lo: Uint32Array;
  readonly hi: Uint32Array;
}

export function newPgtableWalkData(): PgtableWalkData {
  return { lo: new Uint32Array(5), hi: new Uint32Array(5) };
}

/** Flush ops that do nothing, for tables whose driver does not care. */
export const NOOP_FLUSH_OPS: IommuFlushOps = {
  tlbFlushAll() {},
  tlbFlushWalk() {},
};
