/**
 * struct iommu_device: one hardware IOMMU instance as the core sees it.
 * Registration puts it on `iommu_device_list`; `fwnode` is how client
 * fwspecs find it (NULL for the scope-based "global" drivers).
 */
import type { BusType, NotifierBlock } from "../base/bus.ts";
import type { Device } from "../base/device.ts";
import type { FwnodeHandle } from "../base/fwnode.ts";
import type { IommuGroup } from "./group.ts";
import type { IommuOps } from "./ops.ts";

export class IommuDevice {
  /** Set by iommu_device_register. */
  ops: IommuOps | null = null;
  /** Firmware node clients' fwspecs point at; null for a "global" instance. */
  fwnode: FwnodeHandle | null;
  /** Set once iommu_device_register has finished its bus walk successfully. */
  ready = false;
  /** On iommu_device_list (registered or registering). */
  listed = false;
  /** generic_single_device_group's group for this instance. */
  singletonGroup: IommuGroup | null = null;
  /** Instance PASID limit (`iommu->max_pasids`). */
  maxPasids: number;
  /** Devices probed against this instance (`dev->iommu->iommu_dev == this`), a model index. */
  readonly devices = new Set<Device>();
  /** The bus and notifier iommu_device_register_bus registered (selftest only). */
  busNotifier: { bus: BusType; nb: NotifierBlock } | null = null;

  constructor(
    /** The instance's name (`iommu_device_sysfs_add` fmt, /sys/class/iommu/<name>). */
    readonly name: string,
    fwnode: FwnodeHandle | null,
    maxPasids = 0,
    /** Driver-private instance data (struct arm_smmu_device, struct intel_iommu, ...). */
    readonly priv: unknown = null,
  ) {
    this.fwnode = fwnode;
    this.maxPasids = maxPasids;
  }

  toString(): string {
    return this.name;
  }
}
