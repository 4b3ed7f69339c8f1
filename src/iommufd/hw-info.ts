/**
 * IOMMU_GET_HW_INFO (device.c, iommufd_get_hw_info): the driver's info
 * blob copied into the user buffer (truncated, or zero-filled past the
 * driver's length), its type and length, the capabilities, and the PASID
 * width the device has.
 */
import { devIommu, devIommuOps } from "../iommu/dev-iommu.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { getDevice } from "./device.ts";
import { IOMMU_CAP_DIRTY_TRACKING } from "./hw-pagetable.ts";
import type { IommufdCtx } from "./object.ts";
import { IOMMU_HW_CAP_DIRTY_TRACKING, type IommuHwInfo } from "./uapi.ts";

/** IOMMU_HW_INFO_TYPE_NONE */
export const IOMMU_HW_INFO_TYPE_NONE = 0;

// @kernel: iommufd_get_hw_info
export function getHwInfoIoctl(ictx: IommufdCtx, cmd: IommuHwInfo): 0 | KError {
  if (cmd.flags !== 0 || cmd.__reserved !== 0) return kerr("EOPNOTSUPP", "unknown flags or a non-zero __reserved");
  const idev = getDevice(ictx, cmd.dev_id);
  if (isErr(idev)) return idev;
  const ops = devIommuOps(idev.dev);
  const info = ops?.hwInfo?.(idev.dev) ?? { type: IOMMU_HW_INFO_TYPE_NONE, data: new Uint8Array(0) };
  if (cmd.data_len !== 0) {
    if (cmd.data_uptr === null) return kerr("EFAULT", "data_uptr is NULL");
    const n = Math.min(cmd.data_len, info.data.length);
    cmd.data_uptr.set(info.data.subarray(0, n));
    if (cmd.data_len > info.data.length) cmd.data_uptr.fill(0, info.data.length, cmd.data_len);
  }
  cmd.data_len = info.data.length;
  cmd.out_data_type = info.type;
  cmd.out_capabilities = 0;
  if (ops?.capable?.(idev.dev, IOMMU_CAP_DIRTY_TRACKING) ?? false) cmd.out_capabilities |= IOMMU_HW_CAP_DIRTY_TRACKING;
  const max = devIommu(idev.dev)?.maxPasids ?? 0;
  cmd.out_max_pasid_log2 = max > 0 ? Math.log2(max) : 0;
  return 0;
}
