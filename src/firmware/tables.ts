/**
 * Firmware tables that are not properties of one device node: reserved
 * memory regions firmware keeps using or wants left alone (DMAR RMRR, IORT
 * RMR, DT reserved-memory with `iommu-addresses`), per client device.
 */

export type FwResvKind = "direct" | "direct-relaxable" | "reserved";

export interface FwResvRegion {
  start: number;
  length: number;
  kind: FwResvKind;
}

export class FirmwareTables {
  /** Reserved regions by client device name. */
  readonly resvRegions = new Map<string, FwResvRegion[]>();
}
