/**
 * Which of the model's IOMMU drivers a device-tree IOMMU node's
 * `compatible` selects, as the drivers' of_match tables list them (v6.18).
 * A node with `#iommu-cells` whose compatible is in none of them is
 * reported by the importer, never guessed.
 */
import type { IommuDriverName } from "../../drivers/index.ts";

export const DT_IOMMU_COMPATIBLES: ReadonlyMap<string, IommuDriverName> = new Map<string, IommuDriverName>([
  // drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c: arm_smmu_of_match[]
  ["arm,smmu-v3", "arm-smmu-v3"],
  // drivers/iommu/arm/arm-smmu/arm-smmu.c: arm_smmu_of_match[]
  ["arm,smmu-v1", "arm-smmu"],
  ["arm,smmu-v2", "arm-smmu"],
  ["arm,mmu-400", "arm-smmu"],
  ["arm,mmu-401", "arm-smmu"],
  ["arm,mmu-500", "arm-smmu"],
  ["cavium,smmu-v2", "arm-smmu"],
  ["nvidia,smmu-500", "arm-smmu"],
  ["qcom,smmu-v2", "arm-smmu"],
  // drivers/iommu/virtio-iommu.c binds a virtio device: in DT, a virtio-mmio node or a PCI function
  // (virtio_pci's vendor 0x1af4, device 0x1057) with #iommu-cells.
  ["virtio,mmio", "virtio-iommu"],
  ["pci1af4,1057", "virtio-iommu"],
]);

/** The driver the first listed compatible the tables know selects (of_match_node), or null. */
export function dtIommuDriver(compatible: readonly string[]): { driver: IommuDriverName; compatible: string } | null {
  for (const c of compatible) {
    const d = DT_IOMMU_COMPATIBLES.get(c);
    if (d !== undefined) return { driver: d, compatible: c };
  }
  return null;
}
