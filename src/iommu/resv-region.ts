/**
 * struct iommu_resv_region: reserved IOVA regions a device reports
 * (`get_resv_regions`) and their merged per-group view.
 */

import type { Device } from "../base/device.ts";
import { devIommuOps } from "./dev-iommu.ts";

export type IommuResvType = "direct" | "direct-relaxable" | "reserved" | "msi" | "sw-msi";

// IOMMU_RESV_* in include/linux/iommu.h order (the tie-break order of the group list)
export const RESV_TYPE_ORDER: Readonly<Record<IommuResvType, number>> = {
  direct: 0,
  "direct-relaxable": 1,
  reserved: 2,
  msi: 3,
  "sw-msi": 4,
};

export interface IommuResvRegion {
  start: number;
  length: number;
  prot: number;
  type: IommuResvType;
}

// @kernel: iommu_get_resv_regions
export function iommuGetResvRegions(dev: Device): IommuResvRegion[] {
  return devIommuOps(dev)?.getResvRegions?.(dev) ?? [];
}
