/**
 * What an IOMMU driver of the model provides: its `iommu_ops` (one table
 * per driver, as in the kernel) and a constructor for the `iommu_device`
 * of each hardware unit a scenario describes.
 */
import type { BusType } from "../base/bus.ts";
import type { FwnodeHandle } from "../base/fwnode.ts";
import type { DmarUnitScope } from "../firmware/dmar.ts";
import type { FirmwareTables } from "../firmware/tables.ts";
import type { ErrnoName } from "../lib/errno.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import type { IommuDevice } from "../iommu/iommu-device.ts";
import type { IommuDomain } from "../iommu/domain.ts";
import type { IommuOps } from "../iommu/ops.ts";
import type { DriverBusOps } from "../iommu/strategy-types.ts";
import type { PgtableMemory } from "../pgtable/pool.ts";

/** One hardware unit as a scenario describes it. */
export interface IommuInstanceDesc {
  name: string;
  /** Firmware node clients' fwspecs name (DT/IORT drivers); null for scope-based drivers. */
  fwnode: FwnodeHandle | null;
  /** DMAR/IVRS scope (intel-iommu, amd-iommu). */
  scope?: DmarUnitScope;
  /** Page sizes the hardware supports, as a bitmap number (sums of powers of two). */
  pgsizeBitmap?: number;
  /** Input (IOVA) address bits. */
  ias?: number;
  /** StreamID width (SMMU). */
  sidBits?: number;
  /** PASID / SubstreamID width; 0 for none. */
  pasidBits?: number;
  /** arm-smmu: number of stream-mapping groups (SMR/S2CR pairs). */
  streamMapEntries?: number;
}

/** Buses and machine facts a driver may need. */
/**
 * Per-device answers a driver gives from its own tables (intel's IS_AZALIA,
 * arm-smmu-qcom's client list) and faults to inject, as a scenario sets them.
 */
export interface DriverQuirks {
  /** What `def_domain_type` returns for a device (IOMMU_DOMAIN_IDENTITY or IOMMU_DOMAIN_DMA). */
  readonly defDomainType: Map<string, number>;
  /** attach_dev of an UNMANAGED domain to this device fails with this errno (fault injection). */
  readonly failAttach: Map<string, ErrnoName>;
  /** probe_device would take this device: it fails with `errno` instead while `left` > 0, counting down (fault injection; machine state). */
  readonly failProbe: Map<string, { readonly errno: ErrnoName; left: number }>;
}

export interface DriverEnv {
  /** The iommufd selftest's private bus (`iommufd_mock`). */
  mockBus: BusType | null;
  /** Firmware tables (reserved regions). */
  firmware: FirmwareTables;
  quirks: DriverQuirks;
  /** Where page-table findings go as they happen (the machine's diagnostics and trace); optional. */
  report?: (domain: IommuDomain, finding: string) => void;
  /** The memory budget the machine's page tables draw from (default: one of their own each). */
  pgtableMemory?: PgtableMemory;
}

export interface IommuDriver {
  readonly name: string;
  readonly ops: IommuOps;
  /** Whether its instances register with iommu_device_register_bus on a private bus (the selftest mock). */
  readonly registerBus: BusType | null;
  /** Its bus_set_iommu calls around its registration (kernels up to v6.0; bus-claims.ts); none for the selftest mock. */
  readonly busClaims: DriverBusOps | null;
  newInstance(desc: IommuInstanceDesc): IommuDevice;
  /**
   * The instance's own probe, just before it registers (the SMMU's
   * hw_probe): where drivers that keep state across their instances
   * (`ops->pgsize_bitmap`) take this one's into account.
   */
  hwProbe?(iommu: IommuDevice): void;
}

export type IommuDriverFactory = (k: IommuCore, env: DriverEnv) => IommuDriver;
