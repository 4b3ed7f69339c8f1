/**
 * IO page-table formats: the layer under the IOMMU drivers. Depends only on
 * src/lib. See docs/pgtable.md for what each format models.
 */
import type { KError } from "../lib/errno.ts";
import { allocArmLpaePgtable, armLpaePgdFootprint } from "./lpae.ts";
import { SZ_4K } from "./sizes.ts";
import { allocMockPgtable } from "./mock.ts";
import type { IoPgtableCfgInit, IoPgtableFmt, IoPgtableOps } from "./types.ts";
import { allocVtdssPgtable } from "./vtdss.ts";

/** Allocate a page table of format fmt; the ops carry the finalised cfg. */
// @kernel: alloc_io_pgtable_ops
export function allocIoPgtableOps(fmt: IoPgtableFmt, cfg: IoPgtableCfgInit): IoPgtableOps | KError {
  switch (fmt) {
    case "ARM_64_LPAE_S1":
    case "ARM_64_LPAE_S2":
      return allocArmLpaePgtable(fmt, cfg);
    case "VTDSS":
      return allocVtdssPgtable(cfg);
    case "IOMMUFD_MOCK":
      return allocMockPgtable(cfg);
  }
}

/**
 * The top table a page table of this format and configuration starts with,
 * as its tablePages() and tableBytes() count it: LPAE's pgd (concatenated
 * for stage 2 where it must be), the VT-d top table, nothing for the mock
 * (an empty xarray holds no nodes). For a domain whose table is not built yet.
 */
export function ioPgtableTopFootprint(fmt: IoPgtableFmt, cfg: IoPgtableCfgInit): { pages: number; bytes: number } | KError {
  switch (fmt) {
    case "ARM_64_LPAE_S1":
    case "ARM_64_LPAE_S2":
      return armLpaePgdFootprint(fmt, cfg);
    case "VTDSS":
      return { pages: 1, bytes: SZ_4K };
    case "IOMMUFD_MOCK":
      return { pages: 0, bytes: 0 };
  }
}

export * from "./types.ts";
export * from "./sizes.ts";
export * from "./gather.ts";
export { TABLE_POOL_DEFAULT_BASE, TablePool } from "./pool.ts";
export { allocArmLpaePgtable, type ArmLpaeFmt, type ArmLpaeIoPgtable } from "./lpae.ts";
export type { ArmLpaeGeometry } from "./lpae-geometry.ts";
export { allocVtdssPgtable, domainSuperPgsizeBitmap, type VtdssIoPgtable } from "./vtdss.ts";
export {
  IOMMU_DIRTY_NO_CLEAR,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_IO_PAGE_SIZE,
  allocMockPgtable,
  type MockIoPgtable,
} from "./mock.ts";
