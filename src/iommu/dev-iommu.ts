/**
 * struct dev_iommu and struct iommu_fwspec: the IOMMU core's per-device
 * state (`dev->iommu`), with the accessors the core uses. Lifetime follows
 * reference §4.6: NONE -> FW_ONLY (fwspec only) -> PROBED (iommu_dev set),
 * and back to NONE on release or any probe failure.
 */
import type { Device, DevIommuFwd, IommuGroupFwd } from "../base/device.ts";
import type { FwnodeHandle } from "../base/fwnode.ts";
import type { Task } from "../base/path.ts";
import type { IommuGroup } from "./group.ts";
import type { IommuDomain } from "./domain.ts";
import type { IommuDevice } from "./iommu-device.ts";
import type { IommuOps } from "./ops.ts";

const NO_IDS: readonly number[] = Object.freeze([]);

/** struct iommu_fwspec */
export class IommuFwspec {
  /** Replaced, never grown in place: a fwspec usually holds one id, so its array is sized exactly. */
  ids: readonly number[] = NO_IDS;
  /** Model only: kfree'd (iommu_fwspec_free, dev_iommu_free); a task still holding it uses freed memory (I34). */
  freed = false;
  /** Model only, with points on: who freed it and where ("T2 in dev_iommu_free"), for the message. */
  freedBy: string | null = null;
  /** Model only: the task building it (from iommu_fwspec_init to the end of the firmware parse), or null once complete (I35). */
  builder: Task | null = null;
  constructor(
    readonly iommuFwnode: FwnodeHandle | null,
    /**
     * `fwspec->ops` (kernels up to v6.10, fwspec_ops=fwspec-carries-ops): the
     * ops the fwspec was made for, NULL in the "otherwise empty" fwspec left
     * while its IOMMU is not registered. Always null under from-fwnode, whose
     * fwspec has no ops (the fwnode's instance gives them).
     */
    readonly ops: IommuOps | null = null,
  ) {}
}

/** struct dev_iommu */
export class DevIommu implements DevIommuFwd {
  readonly kind = "dev_iommu" as const;
  fwspec: IommuFwspec | null = null;
  /** The instance this device was probed against; non-null means the device has an IOMMU. */
  iommuDev: IommuDevice | null = null;
  /** Driver private data (`dev_iommu_priv_set`). */
  priv: unknown = null;
  maxPasids = 0;
  attachDeferred = false;
  pci32bitWorkaround = false;
  requireDirect = false;
  /** Model only: probed by the dma_configure step of a driver bind (a late probe), which a failing bind does not undo. */
  probedAtBind = false;
  /** The RID domain the driver has this device attached to (the driver's view, set by attach_dev). */
  domain: IommuDomain | null = null;
  /** Model only: kfree'd by dev_iommu_free; a task still holding it uses freed memory (I34). */
  freed = false;
  /** Model only, with points on: who freed it and where, for the message. */
  freedBy: string | null = null;
  /**
   * Model only: the task filling it in, or null while it is in a state other
   * tasks may read (empty, fwspec only, probed): set by the fwspec's builder
   * when iommu_fwspec_init allocated it, and by __iommu_probe_device from the
   * ops lookup until the probe ends (I35).
   */
  builder: Task | null = null;
  /** What `builder` is doing (the kernel function), for the message. */
  building = "";
}

export function devIommu(dev: Device): DevIommu | null {
  return dev.iommu as DevIommu | null;
}

// @kernel: dev_iommu_fwspec_get
export function devIommuFwspecGet(dev: Device): IommuFwspec | null {
  return devIommu(dev)?.fwspec ?? null;
}

// @kernel: dev_iommu_get
export function devIommuGet(dev: Device): DevIommu {
  let p = devIommu(dev);
  if (p === null) {
    p = new DevIommu();
    dev.iommu = p;
  }
  return p;
}

// @kernel: dev_iommu_free (frees the fwspec with it)
export function devIommuFree(dev: Device): void {
  const p = devIommu(dev);
  dev.iommu = null;
  if (p === null) return;
  p.freed = true;
  if (p.fwspec !== null) p.fwspec.freed = true;
}

// @kernel: dev_has_iommu
export function devHasIommu(dev: Device): boolean {
  return devIommu(dev)?.iommuDev != null;
}

// @kernel: dev_iommu_ops (valid only for a probed device)
export function devIommuOps(dev: Device): IommuOps | null {
  return devIommu(dev)?.iommuDev?.ops ?? null;
}

// @kernel: iommu_group_get (without the reference)
export function devGroup(dev: Device): IommuGroup | null {
  return dev.iommuGroup as IommuGroup | null;
}

export function setDevGroup(dev: Device, group: IommuGroup | null): void {
  dev.iommuGroup = group as IommuGroupFwd | null;
}
