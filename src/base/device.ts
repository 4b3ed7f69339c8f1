/**
 * struct device, as much of it as the IOMMU lifecycle touches.
 *
 * The IOMMU core's per-device state (`dev->iommu`, `dev->iommu_group`) is
 * forward-declared here, as include/linux/device.h forward-declares
 * `struct dev_iommu` and `struct iommu_group`: the driver core never looks
 * inside; iommu/ defines them and reads them through its own accessors.
 */
import type { BusType } from "./bus.ts";
import type { DeviceDriver } from "./driver.ts";
import type { FwnodeHandle } from "./fwnode.ts";
import { Mutex } from "./mutex.ts";
import type { PciDev } from "./pci/pci-dev.ts";

/** Forward declaration of struct dev_iommu (defined by iommu/). */
export interface DevIommuFwd {
  readonly kind: "dev_iommu";
}
/** Forward declaration of struct iommu_group (defined by iommu/). */
export interface IommuGroupFwd {
  readonly kind: "iommu_group";
}

/** struct device (its mutex, `device_lock`, is embedded as in the kernel). */
export class Device extends Mutex {
  /** Bound driver (`dev->driver`), set by really_probe before dma_configure. */
  driver: DeviceDriver | null = null;
  /** `device_is_bound`: the driver finished probing (knode_driver attached). */
  bound = false;
  /** `device_is_registered`: device_add completed and device_del has not run. */
  registered = false;
  /** `dev->p->dead`: device_del started. */
  dead = false;
  /** Position on its bus's device list (klist order), for walks in bus order. */
  busSeq = -1;
  /** On the deferred-probe pending or active list. */
  deferredProbe = false;
  /**
   * The supplier the last probe attempt deferred for: the firmware node of an
   * IOMMU that is not registered or not ready (set by the layer that returned
   * EPROBE_DEFER, cleared when the next attempt starts); null when the deferral
   * named none. The kernel keeps only a string (`dev->p->deferred_probe_reason`);
   * the deferred-probe index files the device under this node.
   */
  deferredProbeSupplier: FwnodeHandle | null = null;
  /** The last bind attempt's failure, for the snapshot's `probe: failed`. */
  probeError: string | null = null;

  /** `dev->iommu` (struct dev_iommu), owned by the IOMMU core. */
  iommu: DevIommuFwd | null = null;
  /** `dev->iommu_group`, owned by the IOMMU core. */
  iommuGroup: IommuGroupFwd | null = null;
  /** `dev->dma_iommu`: DMA API goes through iommu-dma. */
  dmaIommu = false;
  /** `*dev->dma_mask` as the highest address the device can DMA to (32 bits until a driver sets more). */
  dmaMask = 2 ** 32 - 1;

  /** Devices whose parent this is (`dev->p->klist_children`), allocated with the first one. */
  children: Device[] | null = null;

  constructor(
    readonly name: string,
    readonly bus: BusType,
    readonly parent: Device | null,
    /** The firmware node (`dev->fwnode`), or null for a device firmware does not describe. */
    readonly fwnode: FwnodeHandle | null,
    /** PCI function data when `bus` is the PCI bus (`to_pci_dev`). */
    readonly pci: PciDev | null = null,
  ) {
    super("device_lock");
    if (parent !== null) (parent.children ??= []).push(this);
  }

  /** `device_lock()`: the mutex embedded in struct device. */
  get lock(): Mutex {
    return this;
  }

  override get lockName(): string {
    return `device_lock(${this.name})`;
  }

  override toString(): string {
    return this.name;
  }
}

