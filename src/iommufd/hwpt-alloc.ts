/**
 * IOMMU_HWPT_ALLOC (hw_pagetable.c iommufd_hwpt_alloc): on an IOAS a
 * HWPT_PAGING, on a HWPT_PAGING (a nesting parent) or a vIOMMU a
 * HWPT_NESTED; anything else is EINVAL, as is a pt_id that does not exist.
 * With IOMMU_HWPT_FAULT_ID_VALID the HWPT takes a fault queue, looked up
 * after the HWPT is made (a bad one undoes it).
 */
import { devIommu } from "../iommu/dev-iommu.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { getDevice } from "./device.ts";
import { getFault } from "./fault.ts";
import { HwptPaging, hwptPagingAlloc, type Hwpt } from "./hw-pagetable.ts";
import { IommufdIoas } from "./ioas.ts";
import { hwptNestedAlloc, viommuAllocHwptNested } from "./nested.ts";
import type { IommufdCtx } from "./object.ts";
import { IOMMU_HWPT_DATA_NONE, IOMMU_HWPT_FAULT_ID_VALID, type IommuHwptAlloc } from "./uapi.ts";
import type { IommuUserData } from "./user-data.ts";
import { Viommu } from "./viommu.ts";

// @kernel: iommufd_hwpt_alloc
export function hwptAllocIoctl(ictx: IommufdCtx, cmd: IommuHwptAlloc): 0 | KError {
  if (cmd.__reserved !== 0) return kerr("EOPNOTSUPP", "__reserved must be 0");
  if ((cmd.data_type === IOMMU_HWPT_DATA_NONE && cmd.data_len !== 0) || (cmd.data_type !== IOMMU_HWPT_DATA_NONE && cmd.data_len === 0)) {
    return kerr("EINVAL", "data_type and data_len disagree");
  }
  const idev = getDevice(ictx, cmd.dev_id);
  if (isErr(idev)) return idev;
  const pt = ictx.get(cmd.pt_id, null);
  if (isErr(pt)) return kerr("EINVAL", `pt_id ${cmd.pt_id} does not exist`);
  const userData: IommuUserData = { type: cmd.data_type, uptr: cmd.data_uptr, len: cmd.data_len };
  let hwpt: Hwpt;
  /** The HWPT's id is only reserved (nested) or already published (paging). */
  let reservedId = 0;
  if (pt instanceof IommufdIoas) {
    let data: Uint8Array | null = null;
    if (cmd.data_type !== IOMMU_HWPT_DATA_NONE) {
      if (cmd.data_uptr === null) return kerr("EFAULT", "data_uptr is NULL");
      data = cmd.data_uptr;
    }
    const h = hwptPagingAlloc(ictx, pt, idev, cmd.flags, false, data);
    if (isErr(h)) return h;
    hwpt = h;
  } else if (pt instanceof HwptPaging) {
    const r = hwptNestedAlloc(ictx, pt, idev, cmd.flags, userData);
    if (isErr(r)) return r;
    [reservedId, hwpt] = r;
  } else if (pt instanceof Viommu) {
    if (pt.iommuDev !== (devIommu(idev.dev)?.iommuDev ?? null)) return kerr("EINVAL", `${idev.dev.name} is not behind vIOMMU ${pt.id}'s IOMMU instance`);
    const r = viommuAllocHwptNested(ictx, pt, cmd.flags, userData);
    if (isErr(r)) return r;
    [reservedId, hwpt] = r;
  } else {
    return kerr("EINVAL", `pt_id ${cmd.pt_id} is a ${pt.type}, not an IOAS, a HWPT_PAGING or a vIOMMU`);
  }
  if ((cmd.flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0) {
    const fault = getFault(ictx, cmd.fault_id);
    if (isErr(fault)) {
      // @kernel: iommufd_object_abort_and_destroy
      if (reservedId !== 0) {
        ictx.abort(reservedId);
        hwpt.destroy(ictx);
      } else ictx.remove(hwpt.id);
      return fault;
    }
    hwpt.fault = fault;
    fault.users++;
  }
  if (reservedId !== 0) ictx.finalize(reservedId, hwpt);
  cmd.out_hwpt_id = hwpt.id;
  return 0;
}
