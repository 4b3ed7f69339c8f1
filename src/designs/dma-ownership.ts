/**
 * The dma_ownership axis (docs/design-axes.md): how a kernel driver doing
 * DMA through the DMA API and user space (VFIO, iommufd) are kept out of
 * each other's IOMMU groups.
 */
import type { DmaOwnership } from "../iommu/strategy-types.ts";
import { vfioGroupUnviableDevice, vfioDevDriverAllowed, vfioIommuGroupNotifier } from "../iommu/vfio-notifier.ts";
import { kerr } from "../lib/errno.ts";
import { axis } from "./axis.ts";

/**
 * v5.19 and later: the driver core asks the IOMMU layer before a driver's
 * probe. really_probe → bus dma_configure → iommu_device_use_default_domain
 * counts a DMA-API driver in the group's owner_cnt, or refuses the bind with
 * EBUSY (the group is owned by user space, off its default domain, or has
 * PASIDs attached) so the driver's probe never runs; dma_cleanup uncounts
 * it. User space claims with iommu_group_claim_dma_owner /
 * iommu_device_claim_dma_owner, EPERM while owner_cnt is not 0. Lu Baolu's
 * "Fix BUG_ON in vfio_iommu_group_notifier()" series (1ea2a07a532b "iommu:
 * Add DMA ownership management interfaces", 512881eacfa7 "bus:
 * platform,amba,fsl-mc,PCI: Add device DMA ownership management",
 * 70693f470848 "vfio: Set DMA ownership for VFIO devices", 3b86f317c9c7
 * "vfio: Remove iommu group notifier"), from the RFC "iommu: Add
 * iommu_device_init[exit]_user_dma interfaces" (September 2021).
 */
export const driverCoreDmaOwnership: DmaOwnership = {
  name: "driver-core",
  useDefaultDomainAtBind: true,
  claim: () => 0,
  groupNotifier: () => null,
  allowedInUserGroup: () => false,
};

/**
 * Up to v5.18: nothing counts kernel DMA. The bus dma_configure configures
 * firmware and DMA ops only; user ownership is VFIO's. A claim stands for
 * VFIO handing the group to user space (VFIO_GROUP_SET_CONTAINER, then a
 * device fd), which needs the group viable (vfio_group_viable: every device
 * driverless, bound to a VFIO or allowed driver, or a PCI bridge): EINVAL
 * otherwise. A kernel driver binding into that group later is not stopped:
 * its probe runs, and only driver_bound's notification reaches VFIO's group
 * notifier, which hits BUG_ON(vfio_group_nb_verify()). The model records
 * the BUG and carries on with the driver bound (the kernel would stop).
 */
export const notifierDmaOwnership: DmaOwnership = {
  name: "notifier",
  useDefaultDomainAtBind: false,
  claim(_k, group) {
    // @kernel: vfio_group_get_device_fd / vfio_group_add_container_user (!vfio_group_viable(group): -EINVAL)
    const bad = vfioGroupUnviableDevice(group);
    if (bad === null) return 0;
    return kerr("EINVAL", `${group} is not viable for user space: ${bad.name} is bound to ${bad.driver!.name}, which is neither a VFIO driver nor allowed (vfio_group_viable)`);
  },
  groupNotifier: (k) => vfioIommuGroupNotifier(k),
  allowedInUserGroup: vfioDevDriverAllowed,
};

/** The dma_ownership axis. */
export const DMA_OWNERSHIP = axis({
  field: "dmaOwnership",
  doc: "how kernel DMA drivers and user space share a group: the driver core refuses the bind before the driver's probe (default driver-core, v5.19+), or VFIO's group notifier finds it after (notifier, up to v5.18)",
  implementations: {
    "driver-core": driverCoreDmaOwnership,
    notifier: notifierDmaOwnership,
  },
  default: "driver-core",
});
