/**
 * fwspec helpers and instance lookup (iommu.c): how a firmware node finds
 * its IOMMU instance and ops, and how a device's fwspec is created.
 */
import type { Device } from "../base/device.ts";
import type { FwnodeHandle } from "../base/fwnode.ts";
import { access, type Path } from "../base/path.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { devIommu, devIommuFwspecGet, devIommuGet, IommuFwspec } from "./dev-iommu.ts";
import { devIommuAccess, fwspecAccess } from "./lifetime.ts";
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

// @kernel: iommu_fwspec_ops (v6.11+: the instance the fwnode names; under fwspec-carries-ops see FwspecOps.opsOf)
export function iommuFwspecOps(k: IommuCore, fwspec: IommuFwspec | null): IommuOps | null {
  return iommuOpsFromFwnode(k, fwspec?.iommuFwnode ?? null);
}

// @kernel: driver_deferred_probe_check_state (modules enabled, before the timeout)
export function deferredProbeCheckState(dev: Device, fwnode: FwnodeHandle | null): KError {
  dev.deferredProbeSupplier = fwnode;
  return kerr("EPROBE_DEFER", `the IOMMU ${fwnode?.name ?? "(none)"} names is not registered yet`);
}

/**
 * iommu_fwspec_init's gate on a registering instance: a device not being
 * probed waits until the instance's bus walk is done. Only the
 * probe_serialisation design with iommu_device.ready (v6.16+) looks at it.
 */
export function iommuFwspecNotReadyNow(k: IommuCore, dev: Device, fwnode: FwnodeHandle | null, iommu: IommuDevice): KError | null {
  if (!k.strategy.probeSerialisation.checkReady || devIommu(dev) !== null || iommu.ready) return null;
  dev.deferredProbeSupplier = fwnode;
  return kerr("EPROBE_DEFER", `${dev.name}: IOMMU ${iommu.name} is registering but not ready yet`);
}

/** The same gate, stepped: dev->iommu is read, then `ready` (with points on). */
export function* iommuFwspecNotReady(k: IommuCore, dev: Device, fwnode: FwnodeHandle | null, iommu: IommuDevice): Path<KError | null> {
  if (!k.strategy.probeSerialisation.checkReady) return null;
  yield* devIommuAccess(k, "read", dev);
  if (devIommu(dev) === null && k.sched.points) yield* access(k.sched, "read", `ready ${iommu.name}`);
  return iommuFwspecNotReadyNow(k, dev, fwnode, iommu);
}

/** iommu_from_fwnode as a point: the lookup reads iommu_device_list (under iommu_device_lock, a spinlock: a point, never a wait). */
export function* iommuFromFwnodePath(k: IommuCore, fwnode: FwnodeHandle | null): Path<IommuDevice | null> {
  yield* access(k.sched, "read", "iommu_device_list");
  return iommuFromFwnode(k, fwnode);
}

/**
 * iommu_fwspec_init as the fwspec_ops strategy in force makes it (caller
 * holds iommu_probe_device_lock), for of_iommu_xlate: the ops-carrying form
 * is passed the ops of the instance with that fwnode, as of_iommu_xlate
 * looked them up. Stepped (points on); iommuFwspecInitNow is the same in
 * one step.
 */
// @kernel: iommu_fwspec_init
export function* iommuFwspecInit(k: IommuCore, dev: Device, fwnode: FwnodeHandle | null): Path<0 | KError> {
  const iommu = yield* iommuFromFwnodePath(k, fwnode);
  return yield* k.strategy.fwspecOps.init(k, dev, fwnode, iommu?.ops ?? null);
}

export function iommuFwspecInitNow(k: IommuCore, dev: Device, fwnode: FwnodeHandle | null): 0 | KError {
  return k.strategy.fwspecOps.initNow(k, dev, fwnode, iommuOpsFromFwnode(k, fwnode));
}

/** iommu_fwspec_init with the ops a caller of the ops-carrying form passes (iommu_mock_device_add: the mock's). */
export function iommuFwspecInitOps(k: IommuCore, dev: Device, fwnode: FwnodeHandle | null, ops: IommuOps | null): Path<0 | KError> {
  return k.strategy.fwspecOps.init(k, dev, fwnode, ops);
}

/** An existing fwspec is kept when it stands for `ops`, EINVAL otherwise; null when there is none. */
export function fwspecExistingNow(k: IommuCore, dev: Device, ops: IommuOps | null, describe: (fw: IommuFwspec) => string): 0 | KError | null {
  const fw = devIommuFwspecGet(dev);
  if (fw === null) return null;
  return k.strategy.fwspecOps.opsOf(k, fw) === ops ? 0 : kerr("EINVAL", `${dev.name} already has a fwspec for ${describe(fw)}`);
}

/** The same, stepped: dev->iommu read, then the fwspec's contents. */
export function* fwspecExisting(k: IommuCore, dev: Device, ops: IommuOps | null, describe: (fw: IommuFwspec) => string): Path<0 | KError | null> {
  yield* devIommuAccess(k, "read", dev);
  yield* fwspecAccess(k, "read", dev, devIommuFwspecGet(dev));
  return fwspecExistingNow(k, dev, ops, describe);
}

// @kernel: dev_iommu_fwspec_set (and dev_iommu_get)
export function fwspecInstallNow(dev: Device, fwnode: FwnodeHandle | null, ops: IommuOps | null): void {
  devIommuGet(dev).fwspec = new IommuFwspec(fwnode, ops);
}

/**
 * The same, stepped: the new fwspec goes into dev->iommu (allocated if need
 * be) after a point, and the running task builds it until its firmware
 * parse ends (endBuild).
 */
export function* fwspecInstall(k: IommuCore, dev: Device, fwnode: FwnodeHandle | null, ops: IommuOps | null): Path {
  yield* devIommuAccess(k, "write", dev);
  const fresh = devIommu(dev) === null;
  fwspecInstallNow(dev, fwnode, ops);
  if (k.sched.points) {
    const p = devIommu(dev)!;
    p.fwspec!.builder = k.sched.current;
    if (fresh) {
      p.builder = k.sched.current;
      p.building = "iommu_fwspec_init: allocated for the fwspec being built";
    }
  }
}

/**
 * v6.11+ (fwspec_ops=from-fwnode, "iommu: Resolve fwspec ops automatically"):
 * the fwspec names a registered instance by fwnode and carries no ops; none
 * registered defers, and no fwspec is left behind.
 */
// @kernel: iommu_fwspec_init (caller holds iommu_probe_device_lock)
export function iommuFwspecInitFromFwnodeNow(k: IommuCore, dev: Device, fwnode: FwnodeHandle | null): 0 | KError {
  const iommu = iommuFromFwnode(k, fwnode);
  if (iommu === null) return deferredProbeCheckState(dev, fwnode);
  const notReady = iommuFwspecNotReadyNow(k, dev, fwnode, iommu);
  if (notReady !== null) return notReady;
  const existing = fwspecExistingNow(k, dev, iommu.ops, () => `other ops than ${iommu.name}'s`);
  if (existing !== null) return existing;
  fwspecInstallNow(dev, fwnode, null);
  return 0;
}

/** The same, stepped. */
export function* iommuFwspecInitFromFwnode(k: IommuCore, dev: Device, fwnode: FwnodeHandle | null): Path<0 | KError> {
  const iommu = iommuFromFwnode(k, fwnode);
  if (iommu === null) return deferredProbeCheckState(dev, fwnode);
  const notReady = yield* iommuFwspecNotReady(k, dev, fwnode, iommu);
  if (notReady !== null) return notReady;
  const existing = yield* fwspecExisting(k, dev, iommu.ops, () => `other ops than ${iommu.name}'s`);
  if (existing !== null) return existing;
  yield* fwspecInstall(k, dev, fwnode, null);
  return 0;
}

/**
 * Whether a fwnode driver's probe_device refuses `fwspec` as another
 * driver's: in the bus-ops eras (up to v6.7) the bus's ops are asked about
 * every device on the bus, and such drivers checked `fwspec->ops !=
 * &their_ops` (ENODEV; under from-fwnode the ops its fwnode names). "iommu:
 * Clean up open-coded ownership checks" (v6.8) removed the checks once the
 * core picks ops per device: false when the core does.
 */
export function iommuFwspecForOtherOps(k: IommuCore, fwspec: IommuFwspec, ops: IommuOps): boolean {
  return k.strategy.opsResolution.driversCheckFwspec && k.strategy.fwspecOps.opsOf(k, fwspec) !== ops;
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
  if (p === null || p.fwspec === null) return;
  p.fwspec.freed = true;
  p.fwspec = null;
}
