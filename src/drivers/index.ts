/** The IOMMU drivers of the model, by the names scenarios use. */
import { createAmdIommu } from "./amd-iommu.ts";
import { createArmSmmu } from "./arm-smmu.ts";
import { createArmSmmuV3 } from "./arm-smmu-v3.ts";
import type { IommuDriverFactory } from "./driver.ts";
import { createIntelIommu } from "./intel-iommu.ts";
import { createIommufdMock } from "./iommufd-mock.ts";
import { createVirtioIommu } from "./virtio-iommu.ts";

export const IOMMU_DRIVERS = {
  "arm-smmu-v3": createArmSmmuV3,
  "arm-smmu": createArmSmmu,
  "intel-iommu": createIntelIommu,
  "amd-iommu": createAmdIommu,
  "virtio-iommu": createVirtioIommu,
  mock: createIommufdMock,
} as const satisfies Record<string, IommuDriverFactory>;
export type IommuDriverName = keyof typeof IOMMU_DRIVERS;
export const IOMMU_DRIVER_NAMES = Object.keys(IOMMU_DRIVERS) as [IommuDriverName, ...IommuDriverName[]];

export type { DriverEnv, DriverQuirks, IommuDriver, IommuDriverFactory, IommuInstanceDesc } from "./driver.ts";
