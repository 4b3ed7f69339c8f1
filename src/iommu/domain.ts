/**
 * struct iommu_domain: a translation context. It carries the ops of the
 * driver that allocated it (`owner`), the instance its page table was
 * finalised for, its page sizes and aperture.
 */
import type { Device } from "../base/device.ts";
import type { FailureEffectSink } from "../lib/failure-effects.ts";
import type { IommuDevice } from "./iommu-device.ts";
import type { IommuIotlb } from "./iotlb.ts";
import type { IommuDomainOps, IommuOps } from "./ops.ts";

// include/linux/iommu.h: domain type bits
export const __IOMMU_DOMAIN_PAGING = 1 << 0;
export const __IOMMU_DOMAIN_DMA_API = 1 << 1;
export const __IOMMU_DOMAIN_PT = 1 << 2;
export const __IOMMU_DOMAIN_DMA_FQ = 1 << 3;
export const __IOMMU_DOMAIN_SVA = 1 << 4;
export const __IOMMU_DOMAIN_PLATFORM = 1 << 5;
export const __IOMMU_DOMAIN_NESTED = 1 << 6;

export const IOMMU_DOMAIN_BLOCKED = 0;
export const IOMMU_DOMAIN_IDENTITY = __IOMMU_DOMAIN_PT;
export const IOMMU_DOMAIN_UNMANAGED = __IOMMU_DOMAIN_PAGING;
export const IOMMU_DOMAIN_DMA = __IOMMU_DOMAIN_PAGING | __IOMMU_DOMAIN_DMA_API;
export const IOMMU_DOMAIN_DMA_FQ = __IOMMU_DOMAIN_PAGING | __IOMMU_DOMAIN_DMA_API | __IOMMU_DOMAIN_DMA_FQ;
export const IOMMU_DOMAIN_SVA = __IOMMU_DOMAIN_SVA;
export const IOMMU_DOMAIN_PLATFORM = __IOMMU_DOMAIN_PLATFORM;
export const IOMMU_DOMAIN_NESTED = __IOMMU_DOMAIN_NESTED;

/** The words /sys/kernel/iommu_groups/N/type uses (iommu_group_show_type). */
export function domainTypeName(type: number): string {
  switch (type) {
    case IOMMU_DOMAIN_BLOCKED:
      return "blocked";
    case IOMMU_DOMAIN_IDENTITY:
      return "identity";
    case IOMMU_DOMAIN_UNMANAGED:
      return "unmanaged";
    case IOMMU_DOMAIN_DMA:
      return "DMA";
    case IOMMU_DOMAIN_DMA_FQ:
      return "DMA-FQ";
    case IOMMU_DOMAIN_SVA:
      return "SVA";
    case IOMMU_DOMAIN_NESTED:
      return "nested";
    case IOMMU_DOMAIN_PLATFORM:
      return "platform";
    default:
      return "unknown";
  }
}

// @kernel: iommu_is_dma_domain
export function iommuIsDmaDomain(d: IommuDomain): boolean {
  return (d.type & __IOMMU_DOMAIN_DMA_API) !== 0;
}

export interface IommuDomainGeometry {
  apertureStart: number;
  /** Last valid IOVA (inclusive). */
  apertureEnd: number;
  forceAperture: boolean;
}

/**
 * iommu_fault_handler_t: (domain, dev, iova, flags, token), flags
 * IOMMU_FAULT_READ or IOMMU_FAULT_WRITE; returns 0 when handled, an error
 * code otherwise (-ENOSYS asks the driver for its default behaviour).
 */
export type IommuFaultHandler = (domain: IommuDomain, dev: Device, iova: number, flags: number, token: unknown) => number;

/** Not frozen, as no domain's page sizes are: V8 indexes frozen arrays through a slow generic path. */
const NO_PGSIZES: readonly number[] = [];
const NO_GEOMETRY: IommuDomainGeometry = Object.freeze({ apertureStart: 0, apertureEnd: 0, forceAperture: false });

export class IommuDomain {
  /** Model id shown in snapshots; 0 until the core first holds the domain (adoptDomain). */
  id = 0;
  /** The driver ops whose allocator produced it (`domain->owner`); null for static domains. */
  owner: IommuOps | null = null;
  /** The instance the page table was finalised for; null for instance-independent static domains. */
  iommu: IommuDevice | null;
  /** Supported page sizes, ascending (`pgsize_bitmap` as a list: sizes above 2^31 do not fit JS bitwise ops). */
  pgsizes: readonly number[];
  geometry: IommuDomainGeometry;
  /** Driver-private state (its page table). */
  priv: unknown;
  /** Freed by iommu_domain_free. */
  freed = false;
  /** The driver lets this domain serve several instances (VT-d: compatible units share a domain). */
  spansInstances = false;
  /** The IO page-table format of a paging domain (for display), null for static domains. */
  pgtableFormat: string | null = null;
  /** The domain's cookie (`domain->iova_cookie`): owned by the DMA layer for DMA-API domains. */
  cookie: unknown = null;
  /** The IOTLB model for this domain's translations, created by the first device DMA. */
  iotlb: IommuIotlb | null = null;
  /** `domain->handler`, installed by iommu_set_fault_handler; report_iommu_fault returns -ENOSYS without one. */
  faultHandler: IommuFaultHandler | null = null;
  /** `domain->handler_token`: passed back to the handler. */
  faultHandlerToken: unknown = null;
  /** Model only: where failures that leave state on this domain record it (the core that holds it). */
  effects: FailureEffectSink | null = null;

  constructor(
    public type: number,
    readonly ops: IommuDomainOps,
    /** A driver's static domain (`ops->identity_domain`, `blocked_domain`, ...). */
    readonly isStatic: boolean,
    iommu: IommuDevice | null = null,
    pgsizes: readonly number[] = NO_PGSIZES,
    geometry: IommuDomainGeometry = NO_GEOMETRY,
    priv: unknown = null,
  ) {
    this.iommu = iommu;
    this.pgsizes = pgsizes;
    this.geometry = geometry;
    this.priv = priv;
  }

  toString(): string {
    return `domain ${this.id} (${domainTypeName(this.type)})`;
  }
}

/**
 * The bytes a domain's page table maps, by the driver's walk of it (0 for a
 * domain without one). Not a running sum of what iommu_map and iommu_unmap
 * returned: an unmap over a whole table returns the table's span, as the
 * kernel's does, however little was mapped in it.
 */
export function iommuDomainMappedBytes(d: IommuDomain): number {
  return d.ops.stats?.(d).mappedBytes ?? 0;
}
