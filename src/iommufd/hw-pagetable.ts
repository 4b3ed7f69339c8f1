/**
 * HWPT_PAGING objects and attaching devices to them (hw_pagetable.c and
 * the attach half of device.c): a paging domain on an IOAS, added to the
 * IOAS's io_pagetable (which fills it with every area and reserves what
 * lies outside its aperture); auto domains, made by attaching a device to
 * an IOAS, die with their last device.
 */
import { runPath } from "../base/path.ts";
import { iommuAttachGroup, iommuGroupSetCoreDomain, iommuGroupSetDomain } from "../iommu/attach.ts";
import { devIommuOps } from "../iommu/dev-iommu.ts";
import { IOMMU_CAP_DIRTY_TRACKING } from "../iommu/ops.ts";
import { adoptDomain, iommuDomainFree, iommuPagingDomainAllocFlags } from "../iommu/domain-alloc.ts";
import type { IommuDomain } from "../iommu/domain.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import type { IommufdDevice } from "./device.ts";
import { iommufdAutoResponseFaults } from "./fault.ts";
import { groupHasPasids } from "./pasid.ts";
import type { IommufdIoas } from "./ioas.ts";
import { IommufdObject, type IommufdCtx } from "./object.ts";
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_FAULT_ID_VALID,
} from "./uapi.ts";

export { IOMMU_CAP_DIRTY_TRACKING };

/** What a HWPT routes its I/O page faults to (an iommufd_fault). */
export interface HwptFaultQueue extends IommufdObject {
  readonly type: "FAULT";
}

/** struct iommufd_hw_pagetable: what HWPT_PAGING and HWPT_NESTED share. */
export abstract class Hwpt extends IommufdObject {
  abstract override readonly type: "HWPT_PAGING" | "HWPT_NESTED";
  autoDomain = false;
  domain: IommuDomain | null = null;
  /** IOMMU_HWPT_FAULT_ID_VALID: the fault queue taking this HWPT's I/O page faults (a reference is held). */
  fault: HwptFaultQueue | null = null;
  /** Allocated with IOMMU_HWPT_ALLOC_PASID (`pasid_compat`). */
  pasidCompat = false;
}

/** Frees the domain and drops the fault queue (what every HWPT's destroy does first). */
// @kernel: __iommufd_hwpt_destroy
export function hwptDestroyCommon(ictx: IommufdCtx, hwpt: Hwpt): void {
  if (hwpt.domain !== null) iommuDomainFree(ictx.env.core, hwpt.domain);
  hwpt.domain = null;
  if (hwpt.fault !== null) hwpt.fault.users--;
  hwpt.fault = null;
}

export class HwptPaging extends Hwpt {
  readonly type = "HWPT_PAGING" as const;
  constructor(
    readonly ioas: IommufdIoas,
    readonly nestParent: boolean,
    readonly flags: number,
  ) {
    super();
  }

  destroy(ictx: IommufdCtx): void {
    // @kernel: iommufd_hwpt_paging_destroy
    const list = this.ioas.hwptList;
    const i = list.indexOf(this);
    if (i >= 0) {
      list.splice(i, 1);
      if (this.domain !== null) this.ioas.iopt.removeDomain(this.domain);
    }
    hwptDestroyCommon(ictx, this);
    this.ioas.users--;
  }
}

/** The RID half of iommufd_hwpt_pasid_compat: with a PASID attached, the RID takes only a PASID-compatible HWPT. */
// @kernel: iommufd_hwpt_pasid_compat
function ridPasidCompat(hwpt: Hwpt, idev: IommufdDevice): 0 | KError {
  if (hwpt.pasidCompat || !groupHasPasids(idev.igroup)) return 0;
  return kerr("EINVAL", `${idev.dev.name}'s group has PASIDs attached, and HWPT ${hwpt.id} is not PASID-compatible`);
}

/** Attaches idev's group to hwpt (the first device of the group does the core attach). */
// @kernel: iommufd_hw_pagetable_attach
export function hwptAttach(ictx: IommufdCtx, hwpt: Hwpt, idev: IommufdDevice): 0 | KError {
  const ig = idev.igroup;
  if (ig.hwpt !== null && ig.hwpt !== hwpt) return kerr("EINVAL", `${idev.dev.name}'s group is attached to HWPT ${ig.hwpt.id}; replace it instead`);
  if (ig.devices.length === 0) {
    const rc = ridPasidCompat(hwpt, idev);
    if (rc !== 0) return rc;
  }
  // iopt_table_enforce_dev_resv_regions (paging HWPTs only): the mock has no reserved regions; its injection point stays.
  if (hwpt instanceof HwptPaging && ictx.shouldFail()) return kerr("EINVAL", "fault injection: reserved-region enforcement");
  if (ig.devices.length === 0) {
    const rc = runPath(iommuAttachGroup(ictx.env.core, hwpt.domain!, ig.group));
    if (rc !== 0) return rc;
  }
  ig.hwpt = hwpt;
  ig.devices.push(idev);
  hwpt.users++;
  return 0;
}

/** Detaches idev; the group leaves the HWPT with its last device. Returns the HWPT to put. */
// @kernel: iommufd_hw_pagetable_detach
export function hwptDetach(ictx: IommufdCtx, idev: IommufdDevice): Hwpt | null {
  const ig = idev.igroup;
  const hwpt = ig.hwpt as Hwpt | null;
  if (hwpt === null || !idev.attached) return null;
  ig.devices.splice(ig.devices.indexOf(idev), 1);
  if (ig.devices.length === 0) {
    // @kernel: iommufd_hwpt_detach_device
    iommuGroupSetCoreDomain(ictx.env.core, ig.group);
    iommufdAutoResponseFaults(hwpt, ig, 0);
    ig.hwpt = null;
  }
  return hwpt;
}

/** Drops an attachment's reference; an auto domain goes with its last user. */
// @kernel: iommufd_hw_pagetable_put
export function hwptPut(ictx: IommufdCtx, hwpt: Hwpt): void {
  ictx.put(hwpt, hwpt.autoDomain);
}

/** Moves idev's group from its HWPT to `hwpt`; returns the old HWPT to put (null: nothing changed). */
// @kernel: iommufd_device_do_replace
export function hwptReplace(ictx: IommufdCtx, hwpt: Hwpt, idev: IommufdDevice): Hwpt | null | KError {
  const ig = idev.igroup;
  const old = ig.hwpt as Hwpt | null;
  if (old === null || !idev.attached) return kerr("EINVAL", `${idev.dev.name} is not attached: nothing to replace`);
  if (old === hwpt) return null;
  const compat = ridPasidCompat(hwpt, idev);
  if (compat !== 0) return compat;
  const rc = iommuGroupSetDomain(ictx.env.core, ig.group, hwpt.domain!);
  if (rc !== 0) return rc;
  // @kernel: iommufd_hwpt_replace_device
  iommufdAutoResponseFaults(old, ig, 0);
  ig.hwpt = hwpt;
  const n = ig.devices.length;
  hwpt.users += n;
  // The caller puts one reference; the others go now.
  old.users -= n - 1;
  return old;
}

/** Allocates a HWPT_PAGING on ioas for idev's IOMMU; with `immediateAttach` (auto domains) the device is attached before the domain is added. */
// @kernel: iommufd_hwpt_paging_alloc
export function hwptPagingAlloc(
  ictx: IommufdCtx,
  ioas: IommufdIoas,
  idev: IommufdDevice,
  flags: number,
  immediateAttach: boolean,
  userData: Uint8Array | null,
): HwptPaging | KError {
  const valid = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID;
  if ((flags & ~valid) !== 0) return kerr("EOPNOTSUPP", `unsupported HWPT flags 0x${flags.toString(16)}`);
  if ((flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0 && (flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0) return kerr("EOPNOTSUPP", "a nesting parent cannot take faults");
  const ops = devIommuOps(idev.dev);
  if ((flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0 && !(ops?.capable?.(idev.dev, IOMMU_CAP_DIRTY_TRACKING) ?? false)) {
    return kerr("EOPNOTSUPP", `${idev.dev.name} cannot track dirty pages`);
  }
  const id = ictx.alloc();
  if (typeof id !== "number") return id;
  const hwpt = new HwptPaging(ioas, (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0, flags);
  hwpt.pasidCompat = (flags & IOMMU_HWPT_ALLOC_PASID) !== 0;
  ioas.users++;
  const k = ictx.env.core;
  const abort = (e: KError): KError => {
    ictx.abort(id);
    hwpt.destroy(ictx);
    return e;
  };
  let d: IommuDomain | KError;
  const f = flags & ~IOMMU_HWPT_FAULT_ID_VALID;
  if (userData !== null) {
    d = ops?.domainAllocPagingFlags?.(idev.dev, f, userData) ?? kerr("EOPNOTSUPP", "the driver takes no user data");
    if (!isErr(d)) adoptDomain(k, d);
  } else {
    d = iommuPagingDomainAllocFlags(k, idev.dev, f);
  }
  if (isErr(d)) return abort(d);
  hwpt.domain = d;
  if (ictx.shouldFail()) return abort(kerr("ENOMEM", "fault injection: HWPT allocation"));
  if (immediateAttach) {
    const rc = hwptAttach(ictx, hwpt, idev);
    if (rc !== 0) return abort(rc);
  }
  const rc = ioas.iopt.addDomain(d);
  if (rc !== 0) {
    if (immediateAttach) {
      hwptDetach(ictx, idev);
      hwpt.users--;
    }
    return abort(rc);
  }
  ioas.hwptList.push(hwpt);
  ictx.finalize(id, hwpt);
  return hwpt;
}
