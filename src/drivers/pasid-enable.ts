/**
 * PASID at probe and release, as the PASID-capable drivers do it.
 */
import type { Device } from "../base/device.ts";
import { pciDisablePasid, pciEnablePasid } from "../base/pci/ats.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import type { IommuDevice } from "../iommu/iommu-device.ts";

/**
 * What the PASID-capable drivers do in probe_device (arm_smmu_enable_pasid,
 * intel and amd alike): enable PASID on a PCI function whose capability
 * the instance can use. A failure (no ACS isolation) is logged, not fatal:
 * the device just cannot take PASID domains.
 */
export function enablePasidAtProbe(k: IommuCore, dev: Device, iommu: IommuDevice): void {
  if (dev.pci === null || dev.pci.maxPasids === 0 || iommu.maxPasids === 0 || dev.pci.pasidEnabled) return;
  const r = pciEnablePasid(dev);
  if (r !== 0) k.warn("pci_enable_pasid", dev.name, `Failed to enable PASID: ${r.message}`);
}

export function disablePasidAtRelease(dev: Device): void {
  if (dev.pci !== null) pciDisablePasid(dev);
}
