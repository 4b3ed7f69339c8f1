/**
 * The hardware units of a scope-based driver (VT-d DRHDs, AMD-Vi IVHDs):
 * their firmware scopes in table order, and how a device finds its unit.
 * These drivers register without a fwnode; their clients carry no fwspec.
 */
import type { Device } from "../base/device.ts";
import { dmarFindMatchedUnit, type DmarUnitScope } from "../firmware/dmar.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import type { IommuDevice } from "../iommu/iommu-device.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { enablePasidAtProbe } from "./pasid-enable.ts";

export class DmarUnits {
  private readonly units: { scope: DmarUnitScope; iommu: IommuDevice }[] = [];

  constructor(
    /** What the firmware calls a unit, for messages ("DMAR unit", "IVHD"). */
    private readonly what: string,
  ) {}

  add(scope: DmarUnitScope, iommu: IommuDevice): void {
    this.units.push({ scope, iommu });
  }

  /** The unit whose firmware scope covers `dev` (registered or not). */
  unitOf(dev: Device): IommuDevice | null {
    return dmarFindMatchedUnit(this.units, dev)?.iommu ?? null;
  }

  /** The unit a domain allocated with no device is set up on: the first registered one. */
  firstRegistered(): IommuDevice | null {
    return this.units.find((u) => u.iommu.listed)?.iommu ?? null;
  }

  /**
   * probe_device's lookup: the unit whose scope covers `dev`, if it is
   * registered (a unit not registered yet has no ops), with the device's
   * PASID capability enabled for it.
   */
  // @kernel: device_lookup_iommu
  // @kernel: rlookup_amd_iommu
  probe(k: IommuCore, dev: Device): IommuDevice | KError {
    const u = dmarFindMatchedUnit(this.units, dev);
    if (u === null) return kerr("ENODEV", `no ${this.what}'s device scope covers ${dev.name}`);
    if (!u.iommu.listed) return kerr("ENODEV", `${this.what} ${u.iommu.name} covering ${dev.name} is not registered`);
    enablePasidAtProbe(k, dev, u.iommu);
    return u.iommu;
  }
}
