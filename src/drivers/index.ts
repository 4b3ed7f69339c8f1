/** The IOMMU drivers of the model, by the names scenarios use. */
import { createAmdIommu } from "./amd-iommu.ts";
import { createArmSmmu } from "./arm-smmu.ts";
import { createArmSmmuV3 } from "./arm-smmu-v3.ts";
import type { IommuDriverFactory } from "./driver.ts";
import { createIntelIommu } from "./intel-iommu.ts";
import { createIommufdMock } from "./iommufd-mock.ts";
import { createVirtioIommu } from "./virtio-iommu.ts";

export const IOMMU_DRIVERS: Readonly<Record<string, IommuDriverFactory>> = {
  "arm-smmu": createArmSmmu,
  "arm-smmu-v3": createArmSmmuV3,
  "intel-iommu": createIntelIommu,
  "amd-iommu": createAmdIommu,
  "virtio-iommu": createVirtioIommu,
  mock: createIommufdMock,
};

export type { DriverEnv, DriverQuirks, IommuDriver, IommuDriverFactory, IommuInstanceDesc } from "./driver.ts";
