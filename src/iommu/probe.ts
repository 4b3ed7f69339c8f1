/**
 * Device probe and release (iommu.c, reference §4): how a device gets its
 * `dev->iommu`, its instance and ops, its group and its domain, and how all
 * of that is torn down again. Any failure after `dev->iommu` was allocated
 * frees it, fwspec included, so the device is clean; whether a later probe
 * can build the fwspec again depends on who builds it (fwspec_owner).
 */
import {
  BUS_NOTIFY_ADD_DEVICE,
  BUS_NOTIFY_REMOVED_DEVICE,
  type BusNotifyAction,
  type NotifierBlock,
} from "../base/bus.ts";
import type { Device } from "../base/device.ts";
import { mutexHeld, mutexLock, mutexUnlock } from "../base/mutex.ts";
import { access, touch, type Path } from "../base/path.ts";
import { beginBuild, devGroupAccess, devIommuAccess, devIommuFreePath, endBuild, fwspecAccess } from "./lifetime.ts";
import { kernelPath } from "../base/traced.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { iommuDeviceSetDomain } from "./attach.ts";
import {
  devGroup,
  devHasIommu,
  devIommu,
  devIommuGet,
  devIommuOps,
  setDevGroup,
} from "./dev-iommu.ts";
import { iommuSetupDefaultDomain, iommuSetupDmaOps } from "./default-domain.ts";
import { iommuCreateDeviceDirectMappings } from "./direct-mapping.ts";
import { iommuDomainFree } from "./domain-alloc.ts";
import { iommuIsDmaDomain } from "./domain.ts";
import { GroupDevice, iommuGroupFirstDev, iommuGroupPut, type IommuGroup } from "./group.ts";
import type { IommuCore } from "./iommu-core.ts";
import { probeKey } from "./probe-key.ts";
import { probeCallerLock, probeCallerUnlock } from "./probe-lock.ts";
import { iommuGetResvRegions } from "./resv-region.ts";

/** The fwnode-less bus notifier callback the core registers on every IOMMU bus. */
export function iommuBusNotifier(k: IommuCore): NotifierBlock {
  return {
    name: "iommu_bus_notifier",
    actions: (1 << BUS_NOTIFY_ADD_DEVICE) | (1 << BUS_NOTIFY_REMOVED_DEVICE),
    // @kernel: iommu_bus_notifier
    *call(action: BusNotifyAction, dev: Device): Path {
      if (action === BUS_NOTIFY_ADD_DEVICE) {
        yield* iommuProbeDevice(k, dev);
        probeIndexAdd(k, dev);
      } else if (action === BUS_NOTIFY_REMOVED_DEVICE) {
        k.probeIndex.remove(dev);
        yield* iommuReleaseDevice(k, dev);
      }
    },
  };
}

export const iommuProbeDevice = kernelPath("iommu_probe_device", function* (k: IommuCore, dev: Device): Path<0 | KError> {
  yield* probeCallerLock(k);
  const ret = yield* iommuProbeDeviceLocked(k, dev, null);
  yield* probeCallerUnlock(k);
  if (ret !== 0) return ret;
  devIommu(dev)?.iommuDev?.ops?.probeFinalize?.(dev);
  return 0;
}, (_k, dev) => dev.name);

/**
 * __iommu_probe_device: called with iommu_probe_device_lock held where the
 * strategy has its callers take it (probeCallerLock), or taking the lock
 * itself (probe_serialisation probe-lock), or with no lock at all (none).
 * `groupList` is the bus walk's list of groups still waiting for a default
 * domain (null on the hotplug path, which sets the domain up at once).
 */
export function iommuProbeDeviceLocked(k: IommuCore, dev: Device, groupList: IommuGroup[] | null): Path<0 | KError> {
  return k.strategy.probeSerialisation.lockProbe === "inside" ? probeUnderStaticLock(k, dev, groupList) : probeDevice(k, dev, groupList);
}

/** v6.2-v6.6: __iommu_probe_device's function-static lock, from dev_iommu_get through the group bookkeeping. */
// @kernel: __iommu_probe_device (v6.2-v6.6: mutex_lock(&iommu_probe_device_lock) inside)
function* probeUnderStaticLock(k: IommuCore, dev: Device, groupList: IommuGroup[] | null): Path<0 | KError> {
  yield* mutexLock(k.sched, k.probeLock);
  const ret = yield* probeDevice(k, dev, groupList);
  yield* mutexUnlock(k.sched, k.probeLock);
  return ret;
}

const probeDevice = kernelPath("__iommu_probe_device", function* (k: IommuCore, dev: Device, groupList: IommuGroup[] | null): Path<0 | KError> {
  touch(k.sched, dev);
  // lockdep_assert_held (v6.7+, where the callers take the lock).
  if (k.strategy.probeSerialisation.lockProbe === "callers" && !mutexHeld(k.sched, k.probeLock)) k.warn("__iommu_probe_device", dev.name, "iommu_probe_device_lock not held");
  // Another path may have probed the device already: the check a race hinges on.
  if (k.sched.points) yield* devGroupAccess(k, "read", dev);
  if (devGroup(dev) !== null) return 0;
  const init = yield* iommuInitDevice(k, dev);
  if (init !== 0) return init;
  const built = devIommu(dev);
  k.probeIndex.remove(dev);
  if (dev.driver !== null) {
    // The WARN came with the probe-path design (v6.15); before it a probe at bind was the design.
    if (k.strategy.fwspecOwner.warnLateProbe) k.warn("__iommu_probe_device", dev.name, "late IOMMU probe at driver bind, something fishy here!");
    // In the middle of a bind (really_probe set the driver, not yet bound): the bind's dma_configure probed it.
    const p = devIommu(dev);
    if (!dev.bound && p !== null) p.probedAtBind = true;
  }

  const group = devGroup(dev);
  // Model only: with no lock another path may have released the device meanwhile (an interleaving I34/I35 report).
  if (group === null || built === null) {
    if (k.sched.points) yield* endBuild(k, dev, built);
    return kerr("ENODEV", `${dev.name} was released by another path during its probe`);
  }
  yield* mutexLock(k.sched, group.mutex);
  // The group bookkeeping reads the device's dev_iommu (its ops, require_direct): one freed meanwhile is a use after free.
  if (k.sched.points) yield* devIommuAccess(k, "read", dev, built);
  // Model only: freed meanwhile (I34 recorded it); the kernel would go on through freed memory, the model stops this probe.
  if (built.freed || devIommu(dev) !== built) {
    yield* mutexUnlock(k.sched, group.mutex);
    return kerr("ENODEV", `${dev.name}'s dev_iommu was freed by another path during its probe`);
  }
  // Model rule, no kernel check: iommu.c decides for a whole group through its first device
  // (iommu_group_first_dev), so a member with other ops would be driven with the wrong ops.
  const first = iommuGroupFirstDev(group);
  if (first !== null && devIommuOps(first) !== devIommuOps(dev)) {
    // ENODEV: the device ends with no IOMMU and a registration walk goes on.
    const err = kerr("ENODEV", `${dev.name} (${devIommuOps(dev)?.name}) would join ${group} of ${first.name} (${devIommuOps(first)?.name}): a group's devices must share ops`);
    k.warn("__iommu_probe_device", dev.name, err.message);
    return yield* probeUnwind(k, dev, group, err);
  }
  // The device must be on the group's list before default-domain setup looks at the members.
  const gdev = new GroupDevice(dev);
  group.addDevice(gdev);
  // After the late-probe WARN above: a DMA-API driver bound before the device had a group was never counted
  // by iommu_device_use_default_domain (a replay from the binding's own dma_configure is counted after this).
  if (dev.bound && !dev.driver!.driverManagedDma) group.ownerCntStale = true;
  if (group.defaultDomain !== null && group.domain === null) {
    k.warn("__iommu_probe_device", dev.name, `${group} has a default domain but no current domain`);
  }
  if (group.defaultDomain !== null) iommuCreateDeviceDirectMappings(k, group.defaultDomain, dev);

  let ret: 0 | KError = 0;
  if (group.domain !== null) {
    ret = iommuDeviceSetDomain(k, group, dev, group.domain, null, 0);
  } else if (group.defaultDomain === null && groupList === null) {
    ret = iommuSetupDefaultDomain(k, group, 0);
  } else if (group.defaultDomain === null && !group.onGroupList) {
    group.onGroupList = true;
    groupList!.push(group);
  }
  if (ret !== 0) {
    // @kernel: __iommu_probe_device (err_remove_gdev, then iommu_deinit_device)
    group.devices.splice(group.devices.indexOf(gdev), 1);
    // Nothing on the way out unmaps what iommu_create_device_direct_mappings mapped above.
    if (group.defaultDomain !== null && iommuIsDmaDomain(group.defaultDomain) && iommuGetResvRegions(dev).some((r) => r.type === "direct" || r.type === "direct-relaxable")) {
      k.effect("probe-keeps-direct-mappings", dev.name, `the probe failed with ${ret.errno} after ${dev.name}'s direct regions were mapped into ${group.defaultDomain}; they stay mapped`);
    }
    return yield* probeUnwind(k, dev, group, ret);
  }
  if (group.defaultDomain !== null) iommuSetupDmaOps(dev, group.defaultDomain);
  // The device is probed: other tasks may read its dev_iommu now.
  if (k.sched.points) yield* endBuild(k, dev, built);
  yield* mutexUnlock(k.sched, group.mutex);
  return 0;
}, (_k, dev) => dev.name);

/** __iommu_probe_device's error exit (group->mutex held): the device leaves its group and waits in the probe index again. */
// @kernel: iommu_deinit_device
function* probeUnwind(k: IommuCore, dev: Device, group: IommuGroup, err: KError): Path<KError> {
  yield* iommuDeinitDevice(k, dev, group);
  yield* mutexUnlock(k.sched, group.mutex);
  iommuGroupPut(k, group);
  probeIndexAdd(k, dev);
  return err;
}

/**
 * An added device on an IOMMU bus that has no group (never probed, its probe
 * failed, or its instance went away) waits in the probe index for the
 * instance its firmware names.
 */
export function probeIndexAdd(k: IommuCore, dev: Device): void {
  if (dev.registered && devGroup(dev) === null && k.iommuBuses.includes(dev.bus)) k.probeIndex.add(dev, probeKey(dev));
}

/** Called under __iommu_probe_device (with iommu_probe_device_lock held, where the strategy takes it). */
const iommuInitDevice = kernelPath("iommu_init_device", function* (k: IommuCore, dev: Device): Path<0 | KError> {
  // dev_iommu_get: allocates and publishes dev->iommu, or takes the one there (a fwspec's).
  if (k.sched.points) yield* devIommuAccess(k, "write", dev);
  let param = devIommuGet(dev);
  // fwspec_owner: only the probe-path design parses firmware here; the others built the fwspec (or not) before.
  if (k.strategy.fwspecOwner.fwspecAtInitDevice && param.fwspec === null && dev.driver === null && dev.bus.dmaConfigure !== null) {
    // The bus parses firmware (taking the probe lock itself, where the strategy has it); its result is ignored.
    const held = mutexHeld(k.sched, k.probeLock);
    if (held) yield* mutexUnlock(k.sched, k.probeLock);
    yield* dev.bus.dmaConfigure(dev);
    if (held) yield* mutexLock(k.sched, k.probeLock);
    // Another prober may have finished the job (or failed and freed dev->iommu) meanwhile.
    if (devIommu(dev) === null || devGroup(dev) !== null) {
      return kerr("ENODEV", `${dev.name} was probed (or released) by another path while its firmware was parsed`);
    }
    param = devIommu(dev)!;
  }
  // From the ops lookup on, this task fills the dev_iommu in (iommu_fwspec_ops(dev->iommu->fwspec), then probe_device).
  // A write: the probe starts filling the dev_iommu in (priv, iommu_dev), which other tasks' reads must be ordered against.
  if (k.sched.points) yield* devIommuAccess(k, "write", dev, param);
  // Model only: without a lock another task may have freed it meanwhile (the kernel dereferences freed memory; I34 recorded it).
  if (param.freed) return kerr("ENODEV", `${dev.name}'s dev_iommu was freed by another path during its probe`);
  beginBuild(k, param, "__iommu_probe_device: probing it");
  if (k.sched.points) yield* fwspecAccess(k, "read", dev, param.fwspec);
  if (k.sched.points) yield* access(k.sched, "read", "iommu_device_list");
  if (param.freed || devIommu(dev) !== param) return kerr("ENODEV", `${dev.name}'s dev_iommu was freed by another path during its probe`);
  const target = k.strategy.opsResolution.probe(k, dev);
  if (isErr(target)) {
    yield* devIommuFreePath(k, dev);
    return target;
  }
  const { ops, iommuDev } = target;
  const p = param;
  p.iommuDev = iommuDev;
  iommuDev.devices.add(dev);
  // @kernel: iommu_device_link (sysfs links only)
  let group = ops.deviceGroup(dev);
  if (group === null) {
    k.warn("iommu_init_device", dev.name, `${ops.name} device_group returned NULL`);
    group = kerr("EINVAL", `${ops.name} returned no group for ${dev.name}`);
  }
  if (isErr(group)) {
    ops.releaseDevice?.(dev);
    iommuDev.devices.delete(dev);
    yield* devIommuFreePath(k, dev);
    return group;
  }
  if (k.sched.points) yield* devGroupAccess(k, "write", dev);
  setDevGroup(dev, group);
  // Then the dev_iommu's remaining fields: one freed meanwhile (a release without the probe lock) is a use after free.
  if (k.sched.points) yield* devIommuAccess(k, "write", dev, p);
  p.maxPasids = devIommuGetMaxPasids(dev, iommuDev.maxPasids);
  if (ops.isAttachDeferred) p.attachDeferred = ops.isAttachDeferred(dev);
  if (k.tracing) k.note("probe_device", dev.name, `${ops.name} -> ${iommuDev.name}, ${group}`);
  return 0;
}, (_k, dev) => dev.name);

// @kernel: dev_iommu_get_max_pasids
function devIommuGetMaxPasids(dev: Device, instanceMax: number): number {
  let max = 0;
  if (dev.pci !== null) {
    max = dev.pci.maxPasids > 0 ? dev.pci.maxPasids : 0;
  } else {
    const bits = dev.fwnode?.props.get("pasid-num-bits");
    if (typeof bits === "number") max = 2 ** bits;
  }
  return Math.min(max, instanceMax);
}

// @kernel: iommu_deinit_device (group->mutex held)
export function* iommuDeinitDevice(k: IommuCore, dev: Device, group: IommuGroup): Path {
  const p = devIommu(dev);
  // Model only: freed by another path already (an interleaving without the probe lock; I34/I35 report it).
  if (p === null || p.iommuDev === null) {
    setDevGroup(dev, null);
    return;
  }
  const iommuDev = p.iommuDev!;
  const ops = iommuDev.ops!;
  // @kernel: iommu_deinit_device (park on the release domain before release_device)
  if (!p.attachDeferred && ops.releaseDomain) {
    let release = ops.releaseDomain;
    // A device needing its direct mappings is not parked on a blocking domain.
    if (p.requireDirect && ops.identityDomain && release === ops.blockedDomain) release = ops.identityDomain;
    if (release.ops.attachDev(release, dev, group.domain) === 0) p.domain = release;
  }
  ops.releaseDevice?.(dev);
  // An empty group frees its domains before the driver module reference is dropped.
  if (group.devices.length === 0) {
    const def = group.defaultDomain;
    const blk = group.blockingDomain;
    group.defaultDomain = null;
    group.blockingDomain = null;
    group.domain = null;
    if (def !== null) iommuDomainFree(k, def);
    if (blk !== null && blk !== def) iommuDomainFree(k, blk);
  }
  iommuDev.devices.delete(dev);
  if (k.sched.points) yield* devGroupAccess(k, "write", dev);
  setDevGroup(dev, null);
  yield* devIommuFreePath(k, dev, "iommu_deinit_device");
  dev.dmaIommu = false;
}

// @kernel: __iommu_group_remove_device
function* iommuGroupRemoveDevice(k: IommuCore, dev: Device): Path {
  const group = devGroup(dev)!;
  yield* mutexLock(k.sched, group.mutex);
  const i = group.devices.findIndex((g) => g.dev === dev);
  if (i >= 0) {
    group.devices.splice(i, 1);
    // The member's count stays in owner_cnt: its driver's unbind finds no group to uncount it from.
    if (group.devices.length > 0 && dev.bound && !dev.driver!.driverManagedDma && dev.bus.dmaConfigure !== null && group.ownerCnt > 0) {
      group.ownerCntStale = true;
      if (k.tracing) k.note("__iommu_group_remove_device", dev.name, `released while its DMA-API driver stays bound: ${group} keeps owner_cnt=${group.ownerCnt}`);
    }
    // @kernel: __iommu_group_free_device
    if (group.devices.length === 0 && (group.ownerCnt !== 0 || group.domain !== group.defaultDomain)) {
      k.warn(
        "__iommu_group_free_device",
        dev.name,
        `${group} became empty while owner_cnt=${group.ownerCnt} or not on its default domain`,
      );
      if (group.ownerCnt !== 0) group.ownerCntStale = true;
    }
  }
  if (devHasIommu(dev)) yield* iommuDeinitDevice(k, dev, group);
  else setDevGroup(dev, null);
  yield* mutexUnlock(k.sched, group.mutex);
  iommuGroupPut(k, group);
}

export const iommuReleaseDevice = kernelPath("iommu_release_device", function* (k: IommuCore, dev: Device): Path {
  touch(k.sched, dev);
  if (devGroup(dev) !== null) yield* iommuGroupRemoveDevice(k, dev);
  // A fwspec-only dev->iommu (never probed) is freed too.
  if (devIommu(dev) !== null) yield* devIommuFreePath(k, dev, "iommu_release_device");
}, (_k, dev) => dev.name);
