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
import { getDevice, type IommufdDevice } from "./device.ts";
import { IommufdIoas } from "./ioas.ts";
import { IommufdObject, type IommufdCtx } from "./object.ts";
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_FAULT_ID_VALID,
  type IommuHwptAlloc,
} from "./uapi.ts";

export { IOMMU_CAP_DIRTY_TRACKING };

export class HwptPaging extends IommufdObject {
  readonly type = "HWPT_PAGING" as const;
  autoDomain = false;
  domain: IommuDomain | null = null;
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
    if (this.domain !== null) iommuDomainFree(ictx.env.core, this.domain);
    this.domain = null;
    this.ioas.users--;
  }
}

/** Attaches idev's group to hwpt (the first device of the group does the core attach). */
// @kernel: iommufd_hw_pagetable_attach
export function hwptAttach(ictx: IommufdCtx, hwpt: HwptPaging, idev: IommufdDevice): 0 | KError {
  const ig = idev.igroup;
  if (ig.hwpt !== null && ig.hwpt !== hwpt) return kerr("EINVAL", `${idev.dev.name}'s group is attached to HWPT ${ig.hwpt.id}; replace it instead`);
  // iopt_table_enforce_dev_resv_regions: the mock has no reserved regions; its injection point stays.
  if (ictx.shouldFail()) return kerr("EINVAL", "fault injection: reserved-region enforcement");
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
export function hwptDetach(ictx: IommufdCtx, idev: IommufdDevice): HwptPaging | null {
  const ig = idev.igroup;
  const hwpt = ig.hwpt as HwptPaging | null;
  if (hwpt === null || !idev.attached) return null;
  ig.devices.splice(ig.devices.indexOf(idev), 1);
  if (ig.devices.length === 0) {
    iommuGroupSetCoreDomain(ictx.env.core, ig.group);
    ig.hwpt = null;
  }
  return hwpt;
}

/** Drops an attachment's reference; an auto domain goes with its last user. */
// @kernel: iommufd_hw_pagetable_put
export function hwptPut(ictx: IommufdCtx, hwpt: HwptPaging): void {
  ictx.put(hwpt, hwpt.autoDomain);
}

/** Moves idev's group from its HWPT to `hwpt`; returns the old HWPT to put (null: nothing changed). */
// @kernel: iommufd_device_do_replace
export function hwptReplace(ictx: IommufdCtx, hwpt: HwptPaging, idev: IommufdDevice): HwptPaging | null | KError {
  const ig = idev.igroup;
  const old = ig.hwpt as HwptPaging | null;
  if (old === null || !idev.attached) return kerr("EINVAL", `${idev.dev.name} is not attached: nothing to replace`);
  if (old === hwpt) return null;
  const rc = iommuGroupSetDomain(ictx.env.core, ig.group, hwpt.domain!);
  if (rc !== 0) return rc;
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
  if (pt instanceof IommufdIoas) {
    let data: Uint8Array | null = null;
    if (cmd.data_type !== IOMMU_HWPT_DATA_NONE) {
      if (cmd.data_uptr === null) return kerr("EFAULT", "data_uptr is NULL");
      data = cmd.data_uptr;
    }
    const hwpt = hwptPagingAlloc(ictx, pt, idev, cmd.flags, false, data);
    if (isErr(hwpt)) return hwpt;
    cmd.out_hwpt_id = hwpt.id;
    return 0;
  }
  if (pt instanceof HwptPaging) return kerr("EOPNOTSUPP", "nested HWPTs are not modelled yet");
  return kerr("EINVAL", `pt_id ${cmd.pt_id} is a ${pt.type}, not an IOAS or HWPT`);
}
