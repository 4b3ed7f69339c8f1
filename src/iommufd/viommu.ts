/**
 * The nested-translation ioctls, as far as the model goes today: their
 * argument checks and lookups in the kernel's order (hw_pagetable.c
 * iommufd_hwpt_invalidate, viommu.c iommufd_viommu_alloc_ioctl and
 * iommufd_vdevice_alloc_ioctl). Nested HWPTs, vIOMMUs and vDEVICEs
 * themselves are not modelled: the mock driver reports no vIOMMU type.
 */
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { getDevice } from "./device.ts";
import type { IommufdCtx } from "./object.ts";
import { IOMMU_VIOMMU_TYPE_DEFAULT, ULONG_MAX, type IommuHwptInvalidate, type IommuVdeviceAlloc, type IommuViommuAlloc } from "./uapi.ts";

// @kernel: iommufd_hwpt_invalidate
export function hwptInvalidateIoctl(ictx: IommufdCtx, cmd: IommuHwptInvalidate): 0 | KError {
  if (cmd.__reserved !== 0) return kerr("EOPNOTSUPP", "__reserved must be 0");
  if (cmd.entry_num !== 0 && (cmd.data_uptr === null || cmd.entry_len === 0)) return kerr("EINVAL", "entries without data or an entry length");
  const o = ictx.get(cmd.hwpt_id, null);
  if (isErr(o)) return o;
  // entry_num goes back as the entries handled, even on failure: none.
  cmd.entry_num = 0;
  return kerr("EINVAL", `object ${cmd.hwpt_id} is a ${o.type}: only a nested HWPT or a vIOMMU takes invalidations`);
}

// @kernel: iommufd_viommu_alloc_ioctl
export function viommuAllocIoctl(ictx: IommufdCtx, cmd: IommuViommuAlloc): 0 | KError {
  if (cmd.flags !== 0 || cmd.type === IOMMU_VIOMMU_TYPE_DEFAULT) return kerr("EOPNOTSUPP", "flags must be 0 and the type not DEFAULT");
  const idev = getDevice(ictx, cmd.dev_id);
  if (isErr(idev)) return idev;
  return kerr("EOPNOTSUPP", `the driver of ${idev.dev.name} has no vIOMMU of type 0x${cmd.type.toString(16)} in the model`);
}

// @kernel: iommufd_vdevice_alloc_ioctl
export function vdeviceAllocIoctl(ictx: IommufdCtx, cmd: IommuVdeviceAlloc): 0 | KError {
  if (cmd.virt_id >= ULONG_MAX) return kerr("EINVAL", "virt_id does not fit an unsigned long");
  const v = ictx.get(cmd.viommu_id, "VIOMMU");
  if (isErr(v)) return v;
  return kerr("ENOENT", "no vIOMMU objects exist in the model");
}
