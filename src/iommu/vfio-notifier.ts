/**
 * VFIO's side of DMA ownership up to v5.18 (drivers/vfio/vfio.c, before
 * "vfio: Remove use of vfio_group_viable()" and "vfio: Remove iommu group
 * notifier", v5.19): user space gets a group only while it is viable (every
 * device driverless, bound to a VFIO driver or an allowed one, or a PCI
 * bridge), and VFIO learns of a driver binding into a group it uses only
 * from the IOMMU group notifier, after that driver's probe has run, where
 * all it can do is BUG. Only the `notifier` strategy of the dma_ownership
 * axis uses this (designs/dma-ownership.ts).
 *
 * In the model a `driver_managed_dma` driver stands for VFIO's own drivers
 * (vfio-pci: the device is one of the VFIO group's) and the allowed list
 * (`vfio_driver_allowed[] = { "pci-stub" }`), the drivers v5.19 gave the
 * flag to.
 */
import { BUS_NOTIFY_BOUND_DRIVER, type NotifierBlock } from "../base/bus.ts";
import type { Device } from "../base/device.ts";
import { NO_POINT } from "../base/path.ts";
import { devGroup } from "./dev-iommu.ts";
import type { IommuGroup } from "./group.ts";
import type { IommuCore } from "./iommu-core.ts";

// @kernel: vfio_dev_driver_allowed (a PCI device whose header is not PCI_HEADER_TYPE_NORMAL: a bridge)
export function vfioDevDriverAllowed(dev: Device): boolean {
  return dev.pci !== null && dev.pci.isBridge;
}

// @kernel: vfio_dev_viable
export function vfioDevViable(dev: Device): boolean {
  const drv = dev.driver;
  return drv === null || drv.driverManagedDma || vfioDevDriverAllowed(dev);
}

// @kernel: vfio_group_viable (the first device that is not viable, or null)
export function vfioGroupUnviableDevice(group: IommuGroup): Device | null {
  for (const gd of group.devices) if (!vfioDevViable(gd.dev)) return gd.dev;
  return null;
}

/**
 * vfio_iommu_group_notifier's IOMMU_GROUP_NOTIFY_BOUND_DRIVER case, sent
 * from driver_bound() through iommu_bus_notifier: in a group VFIO has
 * handed to user space, a device bound to a driver that is not allowed is
 * BUG_ON(vfio_group_nb_verify(group, dev)). The driver's probe has run and
 * it stays bound; the kernel stops here, the model records the BUG (the
 * diagnostics' `bugs`, and the trace) and carries on.
 */
// @kernel: vfio_iommu_group_notifier (IOMMU_GROUP_NOTIFY_BOUND_DRIVER)
export function vfioIommuGroupNotifyBound(k: IommuCore, dev: Device): void {
  const group = devGroup(dev);
  // @kernel: vfio_group_nb_verify ("We don't care what happens when the group isn't in use")
  if (group === null || group.owner === null || vfioDevViable(dev)) return;
  k.ctx.bug(
    "vfio_iommu_group_notifier",
    dev.name,
    `BUG_ON(vfio_group_nb_verify()): ${dev.driver!.name} is bound to ${dev.name}, its probe already run, in ${group}, which user space owns (isolation is lost; the kernel stops here)`,
  );
}

/**
 * The group notifier VFIO registers (vfio_create_group), as one notifier on
 * every IOMMU bus: iommu_bus_notifier re-published BUS_NOTIFY_BOUND_DRIVER
 * on the group's chain as IOMMU_GROUP_NOTIFY_BOUND_DRIVER. A group nobody
 * claimed is one VFIO does not use (no container users): nothing happens.
 * VFIO's other cases (a device added to a live group: a dev_WARN; the
 * bind, unbind and unbound notifications: debug prints) are not modelled.
 */
export function vfioIommuGroupNotifier(k: IommuCore): NotifierBlock {
  return {
    name: "vfio_iommu_group_notifier",
    actions: 1 << BUS_NOTIFY_BOUND_DRIVER,
    call(_action, dev) {
      vfioIommuGroupNotifyBound(k, dev);
      return NO_POINT;
    },
  };
}
