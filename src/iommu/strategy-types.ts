/**
 * The design axes as the IOMMU core sees them (DESIGN.md "Design axes are
 * seams"): an interface per contested decision, which the core calls where
 * the designs differ. The implementations live above the core, in
 * src/designs/ (one file per axis); the machine hands the chosen ones to
 * the core (`IommuCore.strategy`), which imports none of them.
 */
import type { Device } from "../base/device.ts";
import type { KError } from "../lib/errno.ts";
import type { IommuDomain } from "./domain.ts";
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

/** The strategies in force on one machine, one per axis. */
export interface IommuStrategies {
  opsResolution: OpsResolution;
  domainAllocation: DomainAllocation;
}
