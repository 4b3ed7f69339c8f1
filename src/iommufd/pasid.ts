/**
 * PASID attachments of iommufd devices (device.c with a pasid other than
 * IOMMU_NO_PASID): a group's PASID is attached to one HWPT, shared by the
 * group's devices that attach to it; the core attaches the domain at that
 * PASID on the first device's attach and removes it with the last
 * device's detach. A PASID takes only a PASID-compatible HWPT (allocated
 * with IOMMU_HWPT_ALLOC_PASID), and only while the RID's HWPT is one too;
 * once a PASID is attached, the RID may only move to a compatible HWPT.
 */
import { runPath } from "../base/path.ts";
import { iommuAttachDevicePasid, iommuDetachDevicePasid, iommuReplaceDevicePasid } from "../iommu/pasid.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import type { IommufdDevice, IommufdGroup } from "./device.ts";
import { iommufdAutoResponseFaults } from "./fault.ts";
import { Hwpt, hwptPut } from "./hw-pagetable.ts";
import { IommufdIoas } from "./ioas.ts";
import type { IommufdCtx } from "./object.ts";

/** struct iommufd_attach of one PASID: its HWPT and the devices attached through it. */
interface PasidAttach {
  hwpt: Hwpt;
  readonly devices: Set<IommufdDevice>;
}

/** igroup->pasid_attach, PASIDs other than IOMMU_NO_PASID (the RID's is igroup.hwpt). */
const pasidAttach = new WeakMap<IommufdGroup, Map<number, PasidAttach>>();

function groupPasids(ig: IommufdGroup): Map<number, PasidAttach> {
  let m = pasidAttach.get(ig);
  if (m === undefined) pasidAttach.set(ig, (m = new Map()));
  return m;
}

/** The HWPT attached at `pasid` of idev's group, or null. */
export function pasidHwpt(idev: IommufdDevice, pasid: number): Hwpt | null {
  return pasidAttach.get(idev.igroup)?.get(pasid)?.hwpt ?? null;
}

/** True when the group has a PASID attached (other than the RID). */
export function groupHasPasids(ig: IommufdGroup): boolean {
  return (pasidAttach.get(ig)?.size ?? 0) > 0;
}

/** The PASIDs idev is attached at (other than the RID) and their HWPTs, by PASID. */
export function devicePasids(idev: IommufdDevice): { pasid: number; hwpt: number }[] {
  const m = pasidAttach.get(idev.igroup);
  if (m === undefined) return [];
  const out: { pasid: number; hwpt: number }[] = [];
  for (const [pasid, a] of m) if (a.devices.has(idev)) out.push({ pasid, hwpt: a.hwpt.id });
  return out.sort((a, b) => a.pasid - b.pasid);
}

/** The PASID half of the check; the RID half is in hw-pagetable.ts. */
// @kernel: iommufd_hwpt_pasid_compat
function pasidCompat(hwpt: Hwpt, idev: IommufdDevice): 0 | KError {
  if (!hwpt.pasidCompat) return kerr("EINVAL", `HWPT ${hwpt.id} was not allocated with IOMMU_HWPT_ALLOC_PASID`);
  const rid = idev.igroup.hwpt as Hwpt | null;
  if (rid !== null && !rid.pasidCompat) return kerr("EINVAL", `${idev.dev.name}'s RID is attached to HWPT ${rid.id}, which is not PASID-compatible`);
  return 0;
}

/** The HWPT pt_id names for a PASID (an IOAS gets no auto domain at a PASID). */
function pasidPt(ictx: IommufdCtx, ptId: number): Hwpt | KError {
  const pt = ictx.get(ptId, null);
  if (isErr(pt)) return pt;
  if (pt instanceof Hwpt) return pt;
  // @kernel: iommufd_device_auto_get_domain (auto domains are not PASID-compatible)
  if (pt instanceof IommufdIoas) return kerr("EINVAL", `IOAS ${ptId}: auto domains are not PASID-compatible`);
  return kerr("EINVAL", `object ${ptId} is a ${pt.type}: a device attaches to an IOAS or a HWPT`);
}

/** iommufd_device_attach(idev, pasid, pt_id) */
// @kernel: iommufd_hw_pagetable_attach
export function iommufdDevicePasidAttach(ictx: IommufdCtx, idev: IommufdDevice, pasid: number, ptId: number): number | KError {
  const hwpt = pasidPt(ictx, ptId);
  if (isErr(hwpt)) return hwpt;
  const m = groupPasids(idev.igroup);
  const attach = m.get(pasid);
  if (attach?.devices.has(idev)) return kerr("EBUSY", `${idev.dev.name} is attached at PASID ${pasid}`);
  if (attach !== undefined && attach.hwpt !== hwpt) return kerr("EINVAL", `PASID ${pasid} of ${idev.dev.name}'s group is attached to HWPT ${attach.hwpt.id}`);
  if (attach === undefined) {
    // @kernel: iommufd_hwpt_attach_device
    const rc = pasidCompat(hwpt, idev);
    if (rc !== 0) return rc;
    const r = runPath(iommuAttachDevicePasid(ictx.env.core, hwpt.domain!, idev.dev, pasid));
    if (r !== 0) return r;
    m.set(pasid, { hwpt, devices: new Set([idev]) });
  } else attach.devices.add(idev);
  hwpt.users++;
  return hwpt.id;
}

/** iommufd_device_replace(idev, pasid, pt_id) */
// @kernel: iommufd_device_do_replace
export function iommufdDevicePasidReplace(ictx: IommufdCtx, idev: IommufdDevice, pasid: number, ptId: number): number | KError {
  const hwpt = pasidPt(ictx, ptId);
  if (isErr(hwpt)) return hwpt;
  const attach = groupPasids(idev.igroup).get(pasid);
  if (attach === undefined || !attach.devices.has(idev)) return kerr("EINVAL", `${idev.dev.name} is not attached at PASID ${pasid}: nothing to replace`);
  const old = attach.hwpt;
  if (old === hwpt) return hwpt.id;
  // @kernel: iommufd_hwpt_replace_device
  const rc = pasidCompat(hwpt, idev);
  if (rc !== 0) return rc;
  const r = runPath(iommuReplaceDevicePasid(ictx.env.core, hwpt.domain!, idev.dev, pasid));
  if (r !== 0) return r;
  iommufdAutoResponseFaults(old, idev.igroup, pasid);
  attach.hwpt = hwpt;
  const n = attach.devices.size;
  hwpt.users += n;
  old.users -= n - 1;
  hwptPut(ictx, old);
  return hwpt.id;
}

/** iommufd_device_detach(idev, pasid): nothing happens when nothing is attached. */
// @kernel: iommufd_hw_pagetable_detach
export function iommufdDevicePasidDetach(ictx: IommufdCtx, idev: IommufdDevice, pasid: number): void {
  const m = groupPasids(idev.igroup);
  const attach = m.get(pasid);
  if (attach === undefined || !attach.devices.delete(idev)) return;
  if (attach.devices.size === 0) {
    // @kernel: iommufd_hwpt_detach_device
    runPath(iommuDetachDevicePasid(ictx.env.core, attach.hwpt.domain!, idev.dev, pasid));
    iommufdAutoResponseFaults(attach.hwpt, idev.igroup, pasid);
    m.delete(pasid);
  }
  hwptPut(ictx, attach.hwpt);
}
