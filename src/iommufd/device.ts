/**
 * iommufd devices (device.c): binding a device claims DMA ownership of it
 * for the context through the core (iommu_device_claim_dma_owner), and
 * devices of one iommu group share an iommufd_group that records which
 * HWPT the group is attached to.
 */
import type { Device } from "../base/device.ts";
import { runPath } from "../base/path.ts";
import { devGroup } from "../iommu/dev-iommu.ts";
import type { IommuGroup } from "../iommu/group.ts";
import { iommuDeviceClaimDmaOwner, iommuDeviceReleaseDmaOwner } from "../iommu/ownership.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { IommufdObject, type IommufdCtx } from "./object.ts";
import { iommufdDeviceRemoveVdev } from "./vdevice.ts";

/** What an iommufd_group can be attached to (a HWPT). */
export interface GroupHwpt extends IommufdObject {
  readonly autoDomain: boolean;
}

/** struct iommufd_group: one per iommu group per context. */
export class IommufdGroup {
  hwpt: GroupHwpt | null = null;
  readonly devices: IommufdDevice[] = [];
  /** References from devices bound in it. */
  refs = 0;
  constructor(readonly group: IommuGroup) {}
}

export class IommufdDevice extends IommufdObject {
  readonly type = "DEVICE" as const;
  /** Attached to its group's HWPT: on igroup->device_list. */
  get attached(): boolean {
    return this.igroup.devices.includes(this);
  }
  constructor(
    readonly dev: Device,
    readonly igroup: IommufdGroup,
  ) {
    super();
  }

  destroy(ictx: IommufdCtx): void {
    // @kernel: iommufd_device_destroy
    runPath(iommuDeviceReleaseDmaOwner(ictx.env.core, this.dev));
    if (--this.igroup.refs === 0) ictx.groups.delete(this.igroup.group);
  }
}

export function getDevice(ictx: IommufdCtx, id: number): IommufdDevice | KError {
  return ictx.get(id, "DEVICE") as IommufdDevice | KError;
}

// @kernel: iommufd_device_bind
export function iommufdDeviceBind(ictx: IommufdCtx, dev: Device): IommufdDevice | KError {
  const group = devGroup(dev);
  if (group === null) return kerr("ENODEV", `${dev.name} has no IOMMU group`);
  // @kernel: iommufd_get_group
  let igroup = ictx.groups.get(group) as IommufdGroup | undefined;
  const fresh = igroup === undefined;
  igroup ??= new IommufdGroup(group);
  const rc = runPath(iommuDeviceClaimDmaOwner(ictx.env.core, dev, ictx));
  if (rc !== 0) return rc;
  const id = ictx.alloc();
  if (typeof id !== "number") {
    runPath(iommuDeviceReleaseDmaOwner(ictx.env.core, dev));
    return id;
  }
  if (fresh) ictx.groups.set(group, igroup);
  igroup.refs++;
  const idev = new IommufdDevice(dev, igroup);
  // The binding driver's reference: IOMMU_DESTROY of a device is always EBUSY.
  idev.users++;
  ictx.finalize(id, idev);
  return idev;
}

/** Drops the driver's reference and destroys the device (it must be detached). */
// @kernel: iommufd_device_unbind
export function iommufdDeviceUnbind(ictx: IommufdCtx, idev: IommufdDevice): void {
  idev.users--;
  // @kernel: iommufd_device_pre_destroy
  iommufdDeviceRemoveVdev(ictx, idev);
  ictx.remove(idev.id);
}
