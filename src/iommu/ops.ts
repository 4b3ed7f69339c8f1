/**
 * struct iommu_ops and struct iommu_domain_ops (include/linux/iommu.h),
 * current shape: ops come per device (no bus ops), domains are allocated
 * through a device, and static identity/blocked domains live in the ops.
 */
import type { Device } from "../base/device.ts";
import type { KError } from "../lib/errno.ts";
import type { IommuDomain } from "./domain.ts";
import type { IommuGroup } from "./group.ts";
import type { IommuDevice } from "./iommu-device.ts";
import type { IommuResvRegion } from "./resv-region.ts";
import type { IommuIotlbGather } from "../pgtable/gather.ts";
import type { MappedBytes } from "../pgtable/types.ts";

export interface IommuOps {
  /** The driver's name (what the snapshot shows as a device's `ops`). */
  readonly name: string;
  probeDevice(dev: Device): IommuDevice | KError;
  releaseDevice?(dev: Device): void;
  probeFinalize?(dev: Device): void;
  /** Mandatory: returns a referenced group. */
  deviceGroup(dev: Device): IommuGroup | KError | null;
  ofXlate?(dev: Device, args: readonly number[]): 0 | KError;
  isAttachDeferred?(dev: Device): boolean;
  /** IOMMU_DOMAIN_IDENTITY, IOMMU_DOMAIN_DMA or 0 (no preference). */
  defDomainType?(dev: Device): number;
  getResvRegions?(dev: Device): IommuResvRegion[];
  /** `dev` is NULL only on the legacy bus allocation path (iommu_domain_alloc, before v6.13). */
  domainAllocPaging?(dev: Device | null): IommuDomain | KError;
  domainAllocPagingFlags?(dev: Device | null, flags: number, userData: unknown): IommuDomain | KError;
  domainAllocIdentity?(dev: Device): IommuDomain | KError;
  /** domain_alloc_nested: a user-managed stage-1 domain on `parent` from the driver's `userData` (iommufd's); absent, iommufd refuses nesting. */
  domainAllocNested?(dev: Device, parent: IommuDomain, flags: number, userData: unknown): IommuDomain | KError;
  /** Static domains. */
  identityDomain?: IommuDomain;
  blockedDomain?: IommuDomain;
  releaseDomain?: IommuDomain;
  /** Legacy: forces this domain as every group's default. */
  defaultDomain?: IommuDomain;
  capable?(dev: Device, cap: number): boolean;
  /** iommufd's IOMMU_GET_HW_INFO: the driver's info type and its bytes. */
  hwInfo?(dev: Device): { type: number; data: Uint8Array };
}

export type { MappedBytes };
export type { IommuIotlbGather };

/** What one recorded IOTLB invalidation covered: the whole IOTLB, a table's walk caches (and leaves under it), or a gathered range at iotlb_sync. */
export type TlbInvalidationKind = "flush_all" | "flush_walk" | "sync";

/** One recorded invalidation; iova and size are null for a flush of the whole IOTLB. */
export interface TlbInvalidation {
  kind: TlbInvalidationKind;
  iova: number | null;
  size: number | null;
}

/** The invalidations a domain's driver issued: counts per callback, and the most recent ones, oldest first. */
export interface TlbStats {
  flushAll: number;
  flushWalk: number;
  addPage: number;
  sync: number;
  /** The last invalidations the driver kept (oldest first). */
  invalidations: TlbInvalidation[];
  /** Invalidations recorded since the domain was created (more than `invalidations` holds once its record wrapped). */
  invalidationsTotal: number;
}

/** What a driver reports about a domain for the snapshot (model only). */
export interface IommuDomainStats {
  /** Bytes the page table's leaves map (a walk of the table). */
  mappedBytes: number;
  /** Table pages and bytes: the top table counts from finalisation on, even before the model builds it. */
  tablePages: number;
  tableBytes: number;
  tlb: TlbStats;
  /** Kernel WARNs and quirks its page table reported. */
  findings: string[];
}

/** enum iommu_cap, the capabilities iommufd asks about through `capable`. */
export const IOMMU_CAP_CACHE_COHERENCY = 0;
export const IOMMU_CAP_DIRTY_TRACKING = 5;

export interface IommuDomainOps {
  /** `old` is the domain being replaced (null on a first attach). */
  attachDev(domain: IommuDomain, dev: Device, old: IommuDomain | null): 0 | KError;
  setDevPasid?(domain: IommuDomain, dev: Device, pasid: number, old: IommuDomain | null): 0 | KError;
  mapPages?(domain: IommuDomain, iova: number, paddr: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError;
  unmapPages?(domain: IommuDomain, iova: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number;
  /**
   * Model only: map_pages / unmap_pages with addresses given as frames of the
   * domain's smallest page, so hot paths pass small integers (no boxed
   * numbers per call). Same semantics as the address forms.
   */
  mapPagesPfn?(domain: IommuDomain, iovaPfn: number, paddrPfn: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError;
  unmapPagesPfn?(domain: IommuDomain, iovaPfn: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number;
  iovaToPhys?(domain: IommuDomain, iova: number): number;
  /**
   * Model only: the IOMMU_* permissions (IOMMU_READ, IOMMU_WRITE, ...) the
   * leaf translating iova grants, 0 when nothing is mapped (the page
   * table's iovaProt). Device DMA checks the access against it; a domain
   * without the op translates without permission checks.
   */
  iovaProt?(domain: IommuDomain, iova: number): number;
  iotlbSyncMap?(domain: IommuDomain, iova: number, size: number): 0 | KError;
  iotlbSync?(domain: IommuDomain, gather: IommuIotlbGather): void;
  flushIotlbAll?(domain: IommuDomain): void;
  free?(domain: IommuDomain): void;
  /** struct iommu_dirty_ops (a domain allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING): turn tracking on or off. */
  setDirtyTracking?(domain: IommuDomain, enable: boolean): 0 | KError;
  /** iommu_dirty_ops.read_and_clear_dirty: `record(iova, length)` each dirty range (iommu_dirty_bitmap_record); flags IOMMU_DIRTY_NO_CLEAR. */
  readAndClearDirty?(domain: IommuDomain, iova: number, size: number, flags: number, record: (iova: number, length: number) => void): 0 | KError;
  /** Model only: the iommufd selftest's IOMMU_TEST_OP_DIRTY setting the mock's DIRTY bit at iova; false if nothing is mapped there. */
  testSetDirty?(domain: IommuDomain, iova: number): boolean;
  /** Model only: page-table memory and the invalidations the driver issued for this domain. */
  stats?(domain: IommuDomain): IommuDomainStats;
}
