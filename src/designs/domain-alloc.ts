/**
 * The domain_alloc axis (docs/design-axes.md): how a caller (VFIO, a
 * driver) gets an UNMANAGED domain meant for a device.
 */
import { iommuDomainAllocBus, iommuDomainAllocBusOps, iommuPagingDomainAlloc } from "../iommu/domain-alloc.ts";
import type { DomainAllocation } from "../iommu/strategy-types.ts";
import { axis } from "./axis.ts";

/** Current kernels (v6.11+): through the device's ops, finalised for the instance serving it. */
export const deviceOpsDomainAllocation: DomainAllocation = {
  name: "device-ops",
  // @kernel: iommu_paging_domain_alloc
  alloc: (k, dev) => iommuPagingDomainAlloc(k, dev),
};

/**
 * Kernels up to v6.12: iommu_domain_alloc(dev->bus) — ops from the bus and
 * no device, so the driver cannot know which instance the domain is for:
 * the Arm drivers leave it unfinalised until its first attach decides
 * (docs/design-axes.md). Where buses carry ops (ops_resolution bus-set-iommu
 * and bus-ops, up to v6.7) the bus's own ops allocate it, NULL for a bus
 * without them; since v6.8 (b4c0497169d5 "iommu: Decouple
 * iommu_domain_alloc() from bus ops") the ops of the bus's devices, EBUSY
 * when two drivers serve them.
 */
export const busNullDeviceDomainAllocation: DomainAllocation = {
  name: "bus-null-device",
  alloc(k, dev) {
    const busOps = k.strategy.opsResolution.busOps;
    return busOps === undefined ? iommuDomainAllocBus(k, dev.bus) : iommuDomainAllocBusOps(k, dev.bus, busOps(k, dev.bus));
  },
};

/** The domain_alloc axis. */
export const DOMAIN_ALLOC = axis({
  field: "domainAllocation",
  doc: "how domain_alloc events allocate: through the device's ops (default) or the pre-6.13 bus path with a NULL device",
  implementations: {
    "device-ops": deviceOpsDomainAllocation,
    "bus-null-device": busNullDeviceDomainAllocation,
  },
  default: "device-ops",
});
