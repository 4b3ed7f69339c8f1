/**
 * What a driver answers from the scenario's tables (DriverEnv): the
 * reserved regions firmware reports for a device, and the driver's own
 * def_domain_type quirks.
 */
import type { Device } from "../base/device.ts";
import type { IommuResvRegion } from "../iommu/resv-region.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../pgtable/index.ts";
import type { DriverEnv } from "./driver.ts";

/** Reserved regions firmware reports for a device (RMRR, IORT RMR, DT iommu-addresses). */
// @kernel: iommu_dma_get_resv_regions (the firmware part)
export function firmwareResvRegions(env: DriverEnv, dev: Device): IommuResvRegion[] {
  const fw = env.firmware.resvRegions.get(dev.name);
  if (fw === undefined) return [];
  return fw.map((r) => ({ start: r.start, length: r.length, prot: IOMMU_READ | IOMMU_WRITE, type: r.kind }));
}

/** The driver's def_domain_type answer from its quirk table (0: no preference). */
export function quirkDefDomainType(env: DriverEnv, dev: Device): number {
  return env.quirks.defDomainType.get(dev.name) ?? 0;
}
