/**
 * vDEVICE objects (viommu.c): a device's identity inside a vIOMMU (its
 * virtual id, e.g. a guest-visible stream id). One per device, unique per
 * vIOMMU; it holds the vIOMMU and the device. When the device is unbound
 * first, its vDEVICE is destroyed and its id tombstoned: IOMMU_DESTROY of
 * that id is then ENOENT, and the id is not handed out again until close.
 */
import type { Device } from "../base/device.ts";
import { devIommu } from "../iommu/dev-iommu.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { getDevice, type IommufdDevice } from "./device.ts";
import { IommufdObject, type IommufdCtx } from "./object.ts";
import { ULONG_MAX, type IommuVdeviceAlloc } from "./uapi.ts";
import type { Viommu } from "./viommu.ts";

export class IommufdVdevice extends IommufdObject {
  readonly type = "VDEVICE" as const;
  constructor(
    readonly viommu: Viommu,
    readonly idev: IommufdDevice,
    readonly virtId: number,
  ) {
    super();
  }

  get dev(): Device {
    return this.idev.dev;
  }

  destroy(): void {
    // @kernel: iommufd_vdevice_destroy
    vdeviceAbort(this);
    this.idev.users--;
  }

  snapshotDetail(): unknown {
    return { viommu: this.viommu.id, dev: this.idev.id, virtId: this.virtId };
  }
}

/** The vDEVICE of each device (idev->vdev). */
const vdevOf = new WeakMap<IommufdDevice, IommufdVdevice>();

// @kernel: iommufd_vdevice_abort
function vdeviceAbort(vdev: IommufdVdevice): void {
  if (vdev.viommu.vdevs.get(vdev.virtId) === vdev) vdev.viommu.vdevs.delete(vdev.virtId);
  vdev.viommu.users--;
  vdevOf.delete(vdev.idev);
}

/** Before a device is destroyed: its vDEVICE goes, and the vDEVICE's id is tombstoned. */
// @kernel: iommufd_device_remove_vdev
export function iommufdDeviceRemoveVdev(ictx: IommufdCtx, idev: IommufdDevice): void {
  const vdev = vdevOf.get(idev);
  if (vdev === undefined) return;
  ictx.tombstone(vdev.id);
}

// @kernel: iommufd_vdevice_alloc_ioctl
export function vdeviceAllocIoctl(ictx: IommufdCtx, cmd: IommuVdeviceAlloc): 0 | KError {
  if (cmd.virt_id > ULONG_MAX) return kerr("EINVAL", "virt_id does not fit an unsigned long");
  const vo = ictx.get(cmd.viommu_id, "VIOMMU");
  if (isErr(vo)) return vo;
  const viommu = vo as Viommu;
  const idev = getDevice(ictx, cmd.dev_id);
  if (isErr(idev)) return idev;
  if (viommu.iommuDev !== (devIommu(idev.dev)?.iommuDev ?? null)) return kerr("EINVAL", `${idev.dev.name} is not behind vIOMMU ${viommu.id}'s IOMMU instance`);
  if (vdevOf.has(idev)) return kerr("EEXIST", `${idev.dev.name} already has vDEVICE ${vdevOf.get(idev)!.id}`);
  if (viommu.vdevs.has(cmd.virt_id)) return kerr("EEXIST", `virtual id 0x${cmd.virt_id.toString(16)} is taken in vIOMMU ${viommu.id}`);
  const id = ictx.alloc();
  if (typeof id !== "number") return id;
  const vdev = new IommufdVdevice(viommu, idev, cmd.virt_id);
  viommu.users++;
  idev.users++;
  vdevOf.set(idev, vdev);
  viommu.vdevs.set(cmd.virt_id, vdev);
  ictx.finalize(id, vdev);
  cmd.out_vdevice_id = id;
  return 0;
}
