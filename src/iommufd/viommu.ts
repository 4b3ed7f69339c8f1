/**
 * vIOMMU objects (viommu.c) and user cache invalidation (hw_pagetable.c
 * iommufd_hwpt_invalidate): a vIOMMU stands for a slice of one physical
 * IOMMU instance given to a guest, on a NEST_PARENT HWPT_PAGING it holds;
 * nested HWPTs, vDEVICEs, vEVENTQs and HW queues hang off it and keep it
 * busy. Invalidation goes to a nested HWPT's domain or to a vIOMMU.
 */
import type { Device } from "../base/device.ts";
import { devIommu } from "../iommu/dev-iommu.ts";
import type { IommuDevice } from "../iommu/iommu-device.ts";
import type { IommuDomain } from "../iommu/domain.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { getDevice } from "./device.ts";
import type { HwQueue } from "./hw-queue.ts";
import { HwptPaging } from "./hw-pagetable.ts";
import { domainCacheInvalidateUser } from "./mock-nested.ts";
import { mockGetViommuSize, mockViommuInit } from "./mock-viommu.ts";
import { HwptNested } from "./nested.ts";
import { IommufdObject, type IommufdCtx } from "./object.ts";
import { IOMMU_VIOMMU_TYPE_DEFAULT, type IommuHwptInvalidate, type IommuViommuAlloc } from "./uapi.ts";
import type { IommuUserData, IommuUserDataArray } from "./user-data.ts";

/** What a vIOMMU's vDEVICE is to it (struct iommufd_vdevice). */
export interface ViommuVdevice extends IommufdObject {
  readonly virtId: number;
  readonly dev: Device;
}

/** struct iommufd_viommu_ops */
export interface ViommuOps {
  destroy?(ictx: IommufdCtx, v: Viommu): void;
  allocDomainNested?(v: Viommu, flags: number, data: IommuUserData): IommuDomain | KError;
  cacheInvalidate?(v: Viommu, array: IommuUserDataArray): 0 | KError;
  getHwQueueSize?(v: Viommu, type: number): number;
  hwQueueInitPhys?(q: HwQueue, index: number, basePa: number): 0 | KError;
}

export class Viommu extends IommufdObject {
  readonly type = "VIOMMU" as const;
  /** vdevs: vDEVICEs by virtual id. */
  readonly vdevs = new Map<number, ViommuVdevice>();
  /** veventqs: one per event type. */
  readonly veventqs = new Map<number, IommufdObject>();
  ops: ViommuOps | null = null;
  /** The driver's part of the object. */
  priv: unknown = null;
  constructor(
    readonly viommuType: number,
    readonly hwpt: HwptPaging,
    readonly iommuDev: IommuDevice | null,
  ) {
    super();
  }

  /** The device bound under virtual id `virtId` (iommufd_viommu_find_dev). */
  // @kernel: iommufd_viommu_find_dev
  findDev(virtId: number): Device | null {
    return this.vdevs.get(virtId)?.dev ?? null;
  }

  /** The virtual id of dev's vDEVICE here (iommufd_viommu_get_vdev_id), null when it has none. */
  // @kernel: iommufd_viommu_get_vdev_id
  vdevIdOf(dev: Device): number | null {
    for (const v of this.vdevs.values()) if (v.dev === dev) return v.virtId;
    return null;
  }

  destroy(ictx: IommufdCtx): void {
    // @kernel: iommufd_viommu_destroy
    this.ops?.destroy?.(ictx, this);
    this.hwpt.users--;
  }

  snapshotDetail(): unknown {
    return { viommuType: this.viommuType, hwpt: this.hwpt.id, vdevs: [...this.vdevs.keys()], veventqs: [...this.veventqs.values()].map((q) => q.id) };
  }
}

// @kernel: iommufd_viommu_alloc_ioctl
export function viommuAllocIoctl(ictx: IommufdCtx, cmd: IommuViommuAlloc): 0 | KError {
  if (cmd.flags !== 0 || cmd.type === IOMMU_VIOMMU_TYPE_DEFAULT) return kerr("EOPNOTSUPP", "flags must be 0 and the type not DEFAULT");
  const idev = getDevice(ictx, cmd.dev_id);
  if (isErr(idev)) return idev;
  if (mockGetViommuSize(idev.dev, cmd.type) === 0) return kerr("EOPNOTSUPP", `the driver of ${idev.dev.name} has no vIOMMU of type 0x${cmd.type.toString(16)}`);
  const hwpt = ictx.get(cmd.hwpt_id, "HWPT_PAGING");
  if (isErr(hwpt)) return hwpt;
  const parent = hwpt as HwptPaging;
  if (!parent.nestParent) return kerr("EINVAL", `HWPT ${cmd.hwpt_id} was not allocated with IOMMU_HWPT_ALLOC_NEST_PARENT`);
  const id = ictx.alloc();
  if (typeof id !== "number") return id;
  const v = new Viommu(cmd.type, parent, devIommu(idev.dev)?.iommuDev ?? null);
  parent.users++;
  const data: IommuUserData | null = cmd.data_len !== 0 ? { type: cmd.type, uptr: cmd.data_uptr, len: cmd.data_len } : null;
  const rc = mockViommuInit(ictx, v, data);
  if (rc !== 0) {
    ictx.abort(id);
    parent.users--;
    return rc;
  }
  ictx.finalize(id, v);
  cmd.out_viommu_id = id;
  return 0;
}

// @kernel: iommufd_hwpt_invalidate
export function hwptInvalidateIoctl(ictx: IommufdCtx, cmd: IommuHwptInvalidate): 0 | KError {
  let done = 0;
  let rc: 0 | KError;
  if (cmd.__reserved !== 0) rc = kerr("EOPNOTSUPP", "__reserved must be 0");
  else if (cmd.entry_num !== 0 && (cmd.data_uptr === null || cmd.entry_len === 0)) rc = kerr("EINVAL", "entries without data or an entry length");
  else {
    const o = ictx.get(cmd.hwpt_id, null);
    const array: IommuUserDataArray = { type: cmd.data_type, uptr: cmd.data_uptr, entryLen: cmd.entry_len, entryNum: cmd.entry_num };
    if (isErr(o)) rc = o;
    else if (o instanceof HwptNested) {
      const inv = domainCacheInvalidateUser(o.domain!);
      rc = inv === null ? kerr("EOPNOTSUPP", `HWPT ${o.id}'s domain has no user cache invalidation`) : inv(o.domain!, array);
      if (inv !== null) done = array.entryNum;
    } else if (o instanceof Viommu) {
      const inv = o.ops?.cacheInvalidate;
      rc = inv === undefined ? kerr("EOPNOTSUPP", `vIOMMU ${o.id} has no cache invalidation`) : inv(o, array);
      if (inv !== undefined) done = array.entryNum;
    } else rc = kerr("EINVAL", `object ${cmd.hwpt_id} is a ${o.type}: only a nested HWPT or a vIOMMU takes invalidations`);
  }
  // entry_num goes back as the entries handled, even on failure.
  cmd.entry_num = done;
  return rc;
}
