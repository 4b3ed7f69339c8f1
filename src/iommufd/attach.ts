/**
 * Attach, replace and detach of a bound device by pt_id (device.c,
 * iommufd_device_change_pt): a HWPT directly, or an IOAS through an auto
 * domain: the first auto HWPT of the IOAS that takes the device (EINVAL
 * means "incompatible, try the next"), else a new one.
 */
import { isErr, kerr, type KError } from "../lib/errno.ts";
import type { IommufdDevice } from "./device.ts";
import { Hwpt, HwptPaging, hwptAttach, hwptDetach, hwptPagingAlloc, hwptPut, hwptReplace } from "./hw-pagetable.ts";
import { IommufdIoas } from "./ioas.ts";
import type { IommufdCtx } from "./object.ts";

type Mode = "attach" | "replace";

/** Attaches or replaces onto hwpt; the old HWPT (replace) is put here. */
function doChange(ictx: IommufdCtx, idev: IommufdDevice, hwpt: Hwpt, mode: Mode): 0 | KError {
  if (mode === "attach") return hwptAttach(ictx, hwpt, idev);
  const old = hwptReplace(ictx, hwpt, idev);
  if (isErr(old)) return old;
  if (old !== null) hwptPut(ictx, old);
  return 0;
}

// @kernel: iommufd_device_auto_get_domain
function autoGetDomain(ictx: IommufdCtx, idev: IommufdDevice, ioas: IommufdIoas, mode: Mode): number | KError {
  for (const h of [...ioas.hwptList]) {
    if (!h.autoDomain) continue;
    const hwpt = h as HwptPaging;
    const rc = doChange(ictx, idev, hwpt, mode);
    if (rc === 0) return hwpt.id;
    if (rc.errno === "EINVAL") continue;
    return rc;
  }
  if (mode === "replace" && (idev.igroup.hwpt === null || !idev.attached)) return kerr("EINVAL", `${idev.dev.name} is not attached: nothing to replace`);
  const hwpt = hwptPagingAlloc(ictx, ioas, idev, 0, mode === "attach", null);
  if (isErr(hwpt)) return hwpt;
  hwpt.autoDomain = true;
  if (mode === "replace") {
    const rc = doChange(ictx, idev, hwpt, mode);
    if (rc !== 0) {
      ictx.remove(hwpt.id);
      return rc;
    }
    // The table's reference stays; the auto domain now lives by its users.
  }
  return hwpt.id;
}

// @kernel: iommufd_device_change_pt
function changePt(ictx: IommufdCtx, idev: IommufdDevice, ptId: number, mode: Mode): number | KError {
  const pt = ictx.get(ptId, null);
  if (isErr(pt)) return pt;
  if (pt instanceof Hwpt) {
    const rc = doChange(ictx, idev, pt, mode);
    return rc === 0 ? pt.id : rc;
  }
  if (pt instanceof IommufdIoas) return autoGetDomain(ictx, idev, pt, mode);
  return kerr("EINVAL", `object ${ptId} is a ${pt.type}: a device attaches to an IOAS or a HWPT`);
}

/** Attaches idev to pt_id; the id of the HWPT it ended up on. */
// @kernel: iommufd_device_attach
export function iommufdDeviceAttach(ictx: IommufdCtx, idev: IommufdDevice, ptId: number): number | KError {
  return changePt(ictx, idev, ptId, "attach");
}

// @kernel: iommufd_device_replace
export function iommufdDeviceReplace(ictx: IommufdCtx, idev: IommufdDevice, ptId: number): number | KError {
  return changePt(ictx, idev, ptId, "replace");
}

// @kernel: iommufd_device_detach
export function iommufdDeviceDetach(ictx: IommufdCtx, idev: IommufdDevice): void {
  const hwpt = hwptDetach(ictx, idev);
  if (hwpt !== null) hwptPut(ictx, hwpt);
}
