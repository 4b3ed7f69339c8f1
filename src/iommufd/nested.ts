/**
 * HWPT_NESTED objects (hw_pagetable.c): a user-managed stage-1 domain on
 * a NEST_PARENT HWPT_PAGING, allocated through the device's driver, or
 * through a vIOMMU (whose parent it then shares). A nested HWPT holds its
 * parent, or its vIOMMU, until it is destroyed.
 */
import { adoptDomain } from "../iommu/domain-alloc.ts";
import { IOMMU_DOMAIN_NESTED, type IommuDomain } from "../iommu/domain.ts";
import { devIommuOps } from "../iommu/dev-iommu.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import type { IommufdDevice } from "./device.ts";
import { Hwpt, hwptDestroyCommon, type HwptPaging } from "./hw-pagetable.ts";
import type { IommufdCtx } from "./object.ts";
import { IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_FAULT_ID_VALID } from "./uapi.ts";
import type { IommuUserData } from "./user-data.ts";
import type { Viommu } from "./viommu.ts";

export class HwptNested extends Hwpt {
  readonly type = "HWPT_NESTED" as const;
  constructor(
    readonly parent: HwptPaging,
    /** The vIOMMU it was allocated through (which it holds instead of the parent), or null. */
    readonly viommu: Viommu | null,
  ) {
    super();
  }

  destroy(ictx: IommufdCtx): void {
    // @kernel: iommufd_hwpt_nested_destroy
    hwptDestroyCommon(ictx, this);
    if (this.viommu !== null) this.viommu.users--;
    else this.parent.users--;
  }

  snapshotDetail(): unknown {
    return { parent: this.parent.id, viommu: this.viommu?.id ?? 0, domain: this.domain?.id ?? 0, fault: this.fault?.id ?? 0, pasidCompat: this.pasidCompat };
  }
}

/** Publishes the domain the driver made (owner, id) or aborts the object. */
function finishNested(ictx: IommufdCtx, id: number, hwpt: HwptNested, d: IommuDomain | KError, flags: number): HwptNested | KError {
  const abort = (e: KError): KError => {
    ictx.abort(id);
    hwpt.destroy(ictx);
    return e;
  };
  if (isErr(d)) return abort(d);
  if (d.type !== IOMMU_DOMAIN_NESTED) return abort(kerr("EINVAL", "the driver returned a domain that is not nested"));
  d.owner = hwpt.parent.domain!.owner;
  hwpt.domain = adoptDomain(ictx.env.core, d);
  hwpt.pasidCompat = (flags & IOMMU_HWPT_ALLOC_PASID) !== 0;
  return hwpt;
}

/** A nested HWPT on `parent` for idev's driver; the object is reserved, not yet published. */
// @kernel: iommufd_hwpt_nested_alloc
export function hwptNestedAlloc(ictx: IommufdCtx, parent: HwptPaging, idev: IommufdDevice, flags: number, userData: IommuUserData): [number, HwptNested] | KError {
  const ops = devIommuOps(idev.dev);
  if ((flags & ~(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID)) !== 0 || userData.len === 0 || ops?.domainAllocNested === undefined) {
    return kerr("EOPNOTSUPP", `nested flags 0x${flags.toString(16)}, no data, or ${idev.dev.name}'s driver has no nested domains`);
  }
  if (parent.autoDomain || !parent.nestParent || parent.domain?.owner !== ops) {
    return kerr("EINVAL", `HWPT ${parent.id} is an auto domain, not a nesting parent, or of another driver`);
  }
  const id = ictx.alloc();
  if (typeof id !== "number") return id;
  const hwpt = new HwptNested(parent, null);
  parent.users++;
  const d = ops.domainAllocNested(idev.dev, parent.domain, flags & ~IOMMU_HWPT_FAULT_ID_VALID, userData);
  const r = finishNested(ictx, id, hwpt, d, flags);
  return isErr(r) ? r : [id, r];
}

/** A nested HWPT through a vIOMMU; the object is reserved, not yet published. */
// @kernel: iommufd_viommu_alloc_hwpt_nested
export function viommuAllocHwptNested(ictx: IommufdCtx, viommu: Viommu, flags: number, userData: IommuUserData): [number, HwptNested] | KError {
  if ((flags & ~(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID)) !== 0) return kerr("EOPNOTSUPP", `nested flags 0x${flags.toString(16)}`);
  if (userData.len === 0) return kerr("EOPNOTSUPP", "a nested HWPT needs driver data");
  const alloc = viommu.ops?.allocDomainNested;
  if (alloc === undefined) return kerr("EOPNOTSUPP", `vIOMMU ${viommu.id} cannot allocate nested domains`);
  const id = ictx.alloc();
  if (typeof id !== "number") return id;
  const hwpt = new HwptNested(viommu.hwpt, viommu);
  viommu.users++;
  const d = alloc(viommu, flags & ~IOMMU_HWPT_FAULT_ID_VALID, userData);
  const r = finishNested(ictx, id, hwpt, d, flags);
  return isErr(r) ? r : [id, r];
}
