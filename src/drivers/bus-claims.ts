/**
 * How the IOMMU drivers of kernels up to v6.0 claimed buses: after
 * iommu_device_register, bus_set_iommu for each bus the driver serves, in
 * its own order, with its own guard (skip a bus another driver has, or one
 * it has itself already) and its own answer to an error (unwind and fail
 * its probe, fail, or carry on). The core runs these only under
 * ops_resolution=bus-set-iommu (designs/ops-resolution.ts); each driver's
 * file gives its policy and the kernel function it follows. Retired in
 * v6.1 by the per-driver "Clean up bus_set_iommu()" commits.
 */
import type { BusType } from "../base/bus.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import type { IommuDevice } from "../iommu/iommu-device.ts";
import type { IommuOps } from "../iommu/ops.ts";
import { busSetIommu } from "../iommu/register.ts";
import type { DriverBusOps } from "../iommu/strategy-types.ts";

export interface BusClaimPolicy {
  /** The buses the driver calls bus_set_iommu for, in its order (buses the model has no devices for are left out). */
  readonly buses: readonly ("platform" | "pci" | "amba")[];
  /**
   * Which buses it leaves alone: one that has any ops (arm-smmu's
   * `!iommu_present(bus)` guard), one that already has its own ops
   * (arm-smmu-v3's and virtio-iommu's `bus->iommu_ops != ops`), or none.
   */
  readonly skip: "any-ops" | "own-ops" | "none";
  /**
   * An error from bus_set_iommu (EBUSY, or a failed replay): set the buses
   * before it in its order back to NULL and fail the probe (the Arm SMMU
   * drivers), fail the probe (virtio-iommu, amd-iommu), or ignore it
   * (intel-iommu).
   */
  readonly onError: "unwind" | "fail" | "ignore";
  /**
   * When it claims: at each instance's registration (a platform or virtio
   * driver, probed per instance), or once, after its last instance
   * registered (intel_iommu_init and amd_iommu_init_api register every
   * unit, then set the buses).
   */
  readonly when: "each-instance" | "last-instance";
  /** Its remove path: give each claimed bus that has ops NULL (arm-smmu-v3's arm_smmu_set_bus_ops(NULL)), or leave the buses. */
  readonly onRemove: "clear" | "keep";
}

/** A driver's bus claims as the core calls them (`DriverBusOps`). */
export function busClaims(k: IommuCore, ops: IommuOps, policy: BusClaimPolicy, instances: () => readonly IommuDevice[]): DriverBusOps {
  const buses = (): BusType[] => {
    const out: BusType[] = [];
    for (const name of policy.buses) {
      const bus = k.iommuBuses.find((b) => b.name === name);
      if (bus !== undefined) out.push(bus);
    }
    return out;
  };
  return {
    *claim() {
      if (policy.when === "last-instance" && !instances().every((i) => i.listed)) return 0;
      const list = buses();
      for (let i = 0; i < list.length; i++) {
        const bus = list[i]!;
        const cur = k.busIommuOps.get(bus);
        if (policy.skip === "any-ops" && cur !== undefined) continue;
        if (policy.skip === "own-ops" && cur === ops) continue;
        const err = yield* busSetIommu(k, bus, ops);
        if (err === 0 || policy.onError === "ignore") continue;
        // The unwind gives every bus before the failing one NULL, whoever set it.
        if (policy.onError === "unwind") for (let j = i - 1; j >= 0; j--) yield* busSetIommu(k, list[j]!, null);
        return err;
      }
      return 0;
    },
    *release() {
      if (policy.onRemove !== "clear") return;
      for (const bus of buses()) if (k.busIommuOps.has(bus)) yield* busSetIommu(k, bus, null);
    },
  };
}
