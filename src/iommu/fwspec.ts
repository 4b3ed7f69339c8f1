/**
 * fwspec helpers and instance lookup (iommu.c): how a firmware node finds
 * its IOMMU instance and ops, and how a device's fwspec is created.
 */
import type { Device } from "../base/device.ts";
import type { FwnodeHandle } from "../base/fwnode.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { devIommu, devIommuGet, IommuFwspec } from "./dev-iommu.ts";
import type { IommuCore } from "./iommu-core.ts";
import type { IommuDevice } from "./iommu-device.ts";
import type { IommuOps } from "./ops.ts";

// @kernel: iommu_from_fwnode (first instance on iommu_device_list with that fwnode)
export function iommuFromFwnode(k: IommuCore, fwnode: FwnodeHandle | null): IommuDevice | null {
  return k.firstByFwnode(fwnode);
}

// @kernel: iommu_ops_from_fwnode
export function iommuOpsFromFwnode(k: IommuCore, fwnode: FwnodeHandle | null): IommuOps | null {
  return iommuFromFwnode(k, fwnode)?.ops ?? null;
}

// @kernel: iommu_fwspec_ops
export function iommuFwspecOps(k: IommuCore, fwspec: IommuFwspec | null): IommuOps | null {
  return iommuOpsFromFwnode(k, fwspec?.iommuFwnode ?? null);
}

// @kernel: driver_deferred_probe_check_state (modules enabled, before the timeout)
function deferredProbeCheckState(dev: Device, fwnode: FwnodeHandle | null): KError {
  dev.deferredProbeSupplier = fwnode;
  return kerr("EPROBE_DEFER", `the IOMMU ${fwnode?.name ?? "(none)"} names is not registered yet`);
}

// @kernel: iommu_fwspec_init (caller holds iommu_probe_device_lock)
export function iommuFwspecInit(k: IommuCore, dev: Device, fwnode: FwnodeHandle | null): 0 | KError {
  const iommu = iommuFromFwnode(k, fwnode);
  if (iommu === null) return deferredProbeCheckState(dev, fwnode);
  const param = devIommu(dev);
  // probe_serialisation: only the design with iommu_device.ready (v6.16+) looks at it.
  if (param === null && !iommu.ready && k.strategy.probeSerialisation.checkReady) {
    dev.deferredProbeSupplier = fwnode;
    return kerr("EPROBE_DEFER", `${dev.name}: IOMMU ${iommu.name} is registering but not ready yet`);
  }
  if (param?.fwspec) {
    return iommuFwspecOps(k, param.fwspec) === iommu.ops
      ? 0
      : kerr("EINVAL", `${dev.name} already has a fwspec for other ops than ${iommu.name}'s`);
  }
  devIommuGet(dev).fwspec = new IommuFwspec(fwnode);
  return 0;
}

// @kernel: iommu_fwspec_add_ids
export function iommuFwspecAddIds(dev: Device, ids: readonly number[]): 0 | KError {
  const fwspec = devIommu(dev)?.fwspec;
  if (!fwspec) return kerr("EINVAL", `${dev.name} has no fwspec to add ids to`);
  fwspec.ids = fwspec.ids.length === 0 ? ids.slice() : fwspec.ids.concat(ids);
  return 0;
}

// @kernel: iommu_fwspec_free
export function iommuFwspecFree(dev: Device): void {
  const p = devIommu(dev);
  if (p !== null) p.fwspec = null;
}
