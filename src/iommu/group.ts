/**
 * struct iommu_group: the unit of isolation. Devices join through
 * `ops->device_group`, which hands back a referenced group; ids are the
 * lowest free integers, reused after release, as /sys/kernel/iommu_groups
 * shows them.
 */
import type { Device, IommuGroupFwd } from "../base/device.ts";
import { Mutex } from "../base/mutex.ts";
import type { IommuDomain } from "./domain.ts";
import type { IommuCore } from "./iommu-core.ts";
import type { IommuDevice } from "./iommu-device.ts";

/** struct group_device */
export class GroupDevice {
  constructor(readonly dev: Device) {}
}

/** A pasid_array entry: the domain attached at that PASID (no iommufd attach handles are modelled). */
export interface PasidEntry {
  domain: IommuDomain;
}

/** struct iommu_group (its `mutex` is embedded, as in the kernel). */
export class IommuGroup extends Mutex implements IommuGroupFwd {
  readonly kind = "iommu_group" as const;
  /** Members (`group->devices`); see addDevice. */
  devices: GroupDevice[] = [];
  defaultDomain: IommuDomain | null = null;
  blockingDomain: IommuDomain | null = null;
  /** The RID domain currently attached. */
  domain: IommuDomain | null = null;
  ownerCnt = 0;
  /** The DMA owner cookie (user ownership), or null. */
  owner: unknown = null;
  /**
   * Model only: `owner_cnt` is out of step with the drivers bound in this group for good, as the
   * kernel leaves it: after a WARN (the kernel warns and carries on), or after a member was
   * released while its DMA-API driver stayed bound (iommu_release_device says nothing; the count
   * leaks with the group). The invariant checker then stops counting them (docs/invariants.md).
   */
  ownerCntStale = false;
  /**
   * Model only: a member's attach failed in a switch the core cannot fail (IOMMU_SET_DOMAIN_MUST_SUCCEED,
   * whose callers WARN but one), so members may translate through other domains than `domain`.
   */
  domainWarned = false;
  private pasids: Map<number, PasidEntry> | null = null;
  /** `pasid_array`: PASID -> attached domain (allocated on first use). */
  get pasidArray(): Map<number, PasidEntry> {
    return (this.pasids ??= new Map());
  }
  /** Puts a member on the list; the first gets an exactly sized list, as most groups keep one device. */
  addDevice(gdev: GroupDevice): void {
    if (this.devices.length === 0) this.devices = [gdev];
    else this.devices.push(gdev);
  }
  /** `!xa_empty(&group->pasid_array)` */
  get hasPasids(): boolean {
    return this.pasids !== null && this.pasids.size > 0;
  }
  /** References (`devices_kobj`): one per member plus external holders. */
  refcount = 1;
  /** Queued on a bus_iommu_probe group_list awaiting its default domain (`group->entry`). */
  onGroupList = false;
  released = false;

  constructor(readonly id: number) {
    super("group->mutex");
  }

  /** `group->mutex` */
  get mutex(): Mutex {
    return this;
  }

  override get lockName(): string {
    return `group->mutex(${this.id})`;
  }

  override toString(): string {
    return `group ${this.id}`;
  }
}

// @kernel: iommu_group_alloc
export function iommuGroupAlloc(k: IommuCore): IommuGroup {
  const g = new IommuGroup(k.groupIda.alloc());
  k.groups.add(g);
  return g;
}

// @kernel: iommu_group_ref_get
export function iommuGroupRefGet(g: IommuGroup): IommuGroup {
  g.refcount++;
  return g;
}

// @kernel: iommu_group_put (the last put releases: iommu_group_release)
export function iommuGroupPut(k: IommuCore, g: IommuGroup): void {
  if (g.refcount <= 0) {
    k.warn("iommu_group_put", g.toString(), "reference count underflow");
    return;
  }
  if (--g.refcount > 0) return;
  // @kernel: iommu_group_release
  if (g.defaultDomain !== null || g.blockingDomain !== null) {
    k.warn("iommu_group_release", g.toString(), "released with a default or blocking domain still set");
  }
  g.released = true;
  k.groups.delete(g);
  k.groupIda.free(g.id);
}

// @kernel: iommu_group_first_dev
export function iommuGroupFirstDev(g: IommuGroup): Device | null {
  return g.devices[0]?.dev ?? null;
}

// @kernel: generic_device_group
export function genericDeviceGroup(k: IommuCore): IommuGroup {
  return iommuGroupAlloc(k);
}

// @kernel: generic_single_device_group (one group per IOMMU instance, held by the instance too)
export function genericSingleDeviceGroup(k: IommuCore, iommu: IommuDevice): IommuGroup {
  if (iommu.singletonGroup === null) iommu.singletonGroup = iommuGroupAlloc(k);
  return iommuGroupRefGet(iommu.singletonGroup);
}
