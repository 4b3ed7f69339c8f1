/**
 * The design axes as the IOMMU core sees them (DESIGN.md "Design axes are
 * seams"): an interface per contested decision, which the core calls where
 * the designs differ. The implementations live above the core, in
 * src/designs/ (one file per axis); the machine hands the chosen ones to
 * the core (`IommuCore.strategy`), which imports none of them.
 */
import type { NotifierBlock } from "../base/bus.ts";
import type { Device } from "../base/device.ts";
import type { KError } from "../lib/errno.ts";
import type { IommuDomain } from "./domain.ts";
import type { IommuGroup } from "./group.ts";
import type { IommuCore } from "./iommu-core.ts";
import type { IommuDevice } from "./iommu-device.ts";
import type { IommuOps } from "./ops.ts";

/** The ops that serve a device, and the instance whose driver's probe_device accepted it. */
export interface ProbeTarget {
  ops: IommuOps;
  iommuDev: IommuDevice;
}

/** Which ops serve a device, and so which driver's probe_device decides whether it is theirs (iommu_init_device). */
export interface OpsResolution {
  readonly name: string;
  probe(k: IommuCore, dev: Device): ProbeTarget | KError;
}

/** How a caller (VFIO, a driver) gets an UNMANAGED domain meant for a device. */
export interface DomainAllocation {
  readonly name: string;
  alloc(k: IommuCore, dev: Device): IommuDomain | KError;
}

/**
 * DMA ownership: how kernel DMA-API drivers and user space (VFIO, iommufd)
 * are kept out of each other's groups — refused by the driver core before a
 * driver's probe, or found out by VFIO's group notifier after it.
 */
export interface DmaOwnership {
  readonly name: string;
  /**
   * Whether a bus dma_configure counts a binding DMA-API driver in the group's owner_cnt before the
   * driver's probe (iommu_device_use_default_domain, which refuses a user-owned group with EBUSY),
   * and dma_cleanup uncounts it. If not, owner_cnt counts the user's claims only.
   */
  readonly useDefaultDomainAtBind: boolean;
  /** The design's own check before a user claim takes the group (called under group->mutex): 0, or the errno. */
  claim(k: IommuCore, group: IommuGroup): 0 | KError;
  /** The notifier the design has the core register on every IOMMU bus at iommu_subsys_init (VFIO's group notifier), or null. */
  groupNotifier(k: IommuCore): NotifierBlock | null;
  /** Whether a device bound to a DMA-API driver may stay so in a user-owned group (VFIO's allowed devices: PCI bridges). */
  allowedInUserGroup(dev: Device): boolean;
}

/** The strategies in force on one machine, one per axis. */
export interface IommuStrategies {
  opsResolution: OpsResolution;
  domainAllocation: DomainAllocation;
  dmaOwnership: DmaOwnership;
}
