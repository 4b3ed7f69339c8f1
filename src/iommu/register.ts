/**
 * IOMMU instance registration (iommu.c, reference §2): an instance joins
 * iommu_device_list, then probe is replayed over every IOMMU bus; a failure
 * in that walk unregisters the whole instance. Unregistering releases
 * exactly the devices the instance serves.
 */
import { busRegisterNotifier, busUnregisterNotifier, type BusType } from "../base/bus.ts";
import { deviceAdd } from "../base/core.ts";
import { deferredProbeSupplierReady, driverDeferredProbeTrigger } from "../base/dd.ts";
import type { Device } from "../base/device.ts";
import { fwnodeCreateSoftwareNode, type FwnodeHandle } from "../base/fwnode.ts";
import { mutexLock, mutexUnlock } from "../base/mutex.ts";
import { access, touch, type Path } from "../base/path.ts";
import { traced } from "../base/traced.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { devIommuFree, devIommuOps } from "./dev-iommu.ts";
import { iommuSetupDefaultDomain, iommuSetupDmaOps } from "./default-domain.ts";
import { iommuFwspecInit } from "./fwspec.ts";
import { iommuGroupPut, type IommuGroup } from "./group.ts";
import type { IommuCore } from "./iommu-core.ts";
import type { IommuDevice } from "./iommu-device.ts";
import type { IommuOps } from "./ops.ts";
import { iommuBusNotifier, iommuProbeDeviceLocked, iommuReleaseDevice, probeIndexAdd } from "./probe.ts";

function listAdd(k: IommuCore, iommu: IommuDevice): void {
  k.deviceList.push(iommu);
  iommu.listed = true;
  k.listChanged();
  supplierReady(k, iommu);
}

/** Devices deferred for this instance (not registered, or not ready) may probe at the next trigger. */
function supplierReady(k: IommuCore, iommu: IommuDevice): void {
  if (iommu.fwnode !== null) deferredProbeSupplierReady(k.dc, iommu.fwnode);
}

function listDel(k: IommuCore, iommu: IommuDevice): void {
  // Whatever still points at the instance now points at an unregistered one.
  for (const dev of iommu.devices) touch(k.sched, dev);
  const i = k.deviceList.indexOf(iommu);
  if (i >= 0) k.deviceList.splice(i, 1);
  iommu.listed = false;
  iommu.ready = false;
  k.listChanged();
}

/**
 * The devices a registration walk of `bus` visits: every device (literal),
 * or the unprobed devices whose ops could now resolve (see probe-index.ts).
 */
function walkCandidates(k: IommuCore, bus: BusType): Device[] {
  if (k.probeWalk === "literal" || !k.iommuBuses.includes(bus)) return [...bus.devices];
  const anyGlobal = k.firstByFwnode(null) !== null;
  return k.probeIndex.select(bus, anyGlobal ? null : (key) => key !== null && k.firstByFwnode(key) !== null);
}

// @kernel: bus_iommu_probe
export function busIommuProbe(k: IommuCore, bus: BusType): Path<0 | KError> {
  return traced(k, "bus_iommu_probe", bus.name, busIommuProbeBody(k, bus));
}

function* busIommuProbeBody(k: IommuCore, bus: BusType): Path<0 | KError> {
  const groupList: IommuGroup[] = [];
  // @kernel: probe_iommu_group (for each device on the bus)
  for (const dev of walkCandidates(k, bus)) {
    if (!dev.registered) continue;
    yield* mutexLock(k.sched, k.probeLock);
    const ret = yield* iommuProbeDeviceLocked(k, dev, groupList);
    yield* mutexUnlock(k.sched, k.probeLock);
    if (ret !== 0 && ret.errno !== "ENODEV") {
      for (const g of groupList) g.onGroupList = false;
      return ret;
    }
  }
  for (const group of groupList) {
    yield* mutexLock(k.sched, group.mutex);
    group.onGroupList = false;
    const ret = iommuSetupDefaultDomain(k, group, 0);
    if (ret !== 0) {
      yield* mutexUnlock(k.sched, group.mutex);
      return ret;
    }
    for (const gdev of group.devices) iommuSetupDmaOps(gdev.dev, group.defaultDomain!);
    yield* mutexUnlock(k.sched, group.mutex);
    // @kernel: iommu_group_do_probe_finalize (outside the group lock)
    for (const gdev of group.devices) devIommuOps(gdev.dev)?.probeFinalize?.(gdev.dev);
  }
  return 0;
}

/** What a failed registration can leave behind, counted: warnings, groups, domains, the devices of every instance. */
function registerFootprint(k: IommuCore): string {
  let n = 0;
  for (const it of k.deviceList) n += it.devices.size;
  return `${k.dc.trace.warnings.length} ${k.groups.size} ${k.domains.size} ${n}`;
}

/**
 * A failed registration walk was undone by iommu_device_unregister, which
 * releases only this instance's devices: what the walk did for other
 * instances, and logged, stays (a failure effect, recorded when the walk
 * probed devices for this instance or changed anything else).
 */
function registerFailed(k: IommuCore, iommu: IommuDevice, err: KError, footprint: string, probed: number): void {
  if (probed === 0 && registerFootprint(k) === footprint) return;
  k.effect("register-walk-keeps-other-probes", iommu.name, `the bus walk failed with ${err.errno}; iommu_device_unregister released the devices it had probed for ${iommu.name}, not what it did for other instances or logged`);
}

// @kernel: iommu_device_register
export function iommuDeviceRegister(k: IommuCore, iommu: IommuDevice, ops: IommuOps, hwdevFwnode: FwnodeHandle | null): Path<0 | KError> {
  return traced(k, "iommu_device_register", iommu.name, registerBody(k, iommu, ops, hwdevFwnode));
}

function* registerBody(k: IommuCore, iommu: IommuDevice, ops: IommuOps, hwdevFwnode: FwnodeHandle | null): Path<0 | KError> {
  // Model rule (docs/model.md): the kernel would corrupt iommu_device_list; the model refuses.
  if (iommu.listed) return kerr("EEXIST", `${iommu.name} is already on iommu_device_list`);
  const footprint = registerFootprint(k);
  iommu.ops = ops;
  if (hwdevFwnode !== null) iommu.fwnode = hwdevFwnode;
  // iommu_device_list is written under iommu_device_lock (a spinlock: a point, never a wait).
  yield* access(k.sched, "write", "iommu_device_list");
  listAdd(k, iommu);
  let err: 0 | KError = 0;
  for (const bus of k.iommuBuses) {
    err = yield* busIommuProbe(k, bus);
    if (err !== 0) break;
  }
  if (err !== 0) {
    const probed = iommu.devices.size;
    yield* iommuDeviceUnregisterBody(k, iommu);
    registerFailed(k, iommu, err, footprint, probed);
    return err;
  }
  iommu.ready = true;
  supplierReady(k, iommu);
  // The IOMMU driver's own successful bind retriggers deferred devices.
  yield* driverDeferredProbeTrigger(k.dc);
  return 0;
}

// @kernel: iommu_device_unregister
export function iommuDeviceUnregister(k: IommuCore, iommu: IommuDevice): Path<0 | KError> {
  return traced(k, "iommu_device_unregister", iommu.name, iommuDeviceUnregisterBody(k, iommu));
}

function* iommuDeviceUnregisterBody(k: IommuCore, iommu: IommuDevice): Path<0 | KError> {
  // Model rule (docs/model.md): unregistering what is not registered is refused.
  if (!iommu.listed) return kerr("ENOENT", `${iommu.name} is not registered`);
  // @kernel: remove_iommu_group (for each device of each IOMMU bus served by this instance)
  const busIndex = new Map(k.iommuBuses.map((b, i) => [b, i] as const));
  const victims = [...iommu.devices]
    .filter((d) => busIndex.has(d.bus))
    .sort((a, b) => busIndex.get(a.bus)! - busIndex.get(b.bus)! || a.busSeq - b.busSeq);
  for (const dev of victims) {
    yield* iommuReleaseDevice(k, dev);
    probeIndexAdd(k, dev);
  }
  yield* access(k.sched, "write", "iommu_device_list");
  listDel(k, iommu);
  if (iommu.singletonGroup !== null) {
    const g = iommu.singletonGroup;
    iommu.singletonGroup = null;
    iommuGroupPut(k, g);
  }
  return 0;
}

// @kernel: iommu_device_register_bus (CONFIG_IOMMUFD_TEST)
export function iommuDeviceRegisterBus(k: IommuCore, iommu: IommuDevice, ops: IommuOps, bus: BusType, swnode: boolean): Path<0 | KError> {
  return traced(k, "iommu_device_register_bus", iommu.name, registerBusBody(k, iommu, ops, bus, swnode), bus.name);
}

function* registerBusBody(k: IommuCore, iommu: IommuDevice, ops: IommuOps, bus: BusType, swnode: boolean): Path<0 | KError> {
  // Model rule (docs/model.md): the kernel would corrupt iommu_device_list; the model refuses.
  if (iommu.listed) return kerr("EEXIST", `${iommu.name} is already on iommu_device_list`);
  const footprint = registerFootprint(k);
  iommu.ops = ops;
  const nb = iommuBusNotifier(k);
  busRegisterNotifier(bus, nb);
  iommu.busNotifier = { bus, nb };
  // Since v6.18 the instance gets its own software fwnode so fwspecs can name it.
  if (swnode) iommu.fwnode = fwnodeCreateSoftwareNode(`swnode:${iommu.name}`);
  // iommu_device_list is written under iommu_device_lock (a spinlock: a point, never a wait).
  yield* access(k.sched, "write", "iommu_device_list");
  listAdd(k, iommu);
  const err = yield* busIommuProbe(k, bus);
  if (err !== 0) {
    const probed = iommu.devices.size;
    yield* unregisterBusBody(k, iommu);
    registerFailed(k, iommu, err, footprint, probed);
    return err;
  }
  iommu.ready = true;
  supplierReady(k, iommu);
  return 0;
}

// @kernel: iommu_device_unregister_bus
export function iommuDeviceUnregisterBus(k: IommuCore, iommu: IommuDevice): Path<0 | KError> {
  return traced(k, "iommu_device_unregister_bus", iommu.name, unregisterBusBody(k, iommu));
}

function* unregisterBusBody(k: IommuCore, iommu: IommuDevice): Path<0 | KError> {
  // Model rule (docs/model.md): unregistering what is not registered is refused.
  if (!iommu.listed) return kerr("ENOENT", `${iommu.name} is not registered`);
  const reg = iommu.busNotifier;
  if (reg !== null) {
    busUnregisterNotifier(reg.bus, reg.nb);
    iommu.busNotifier = null;
  }
  return yield* iommuDeviceUnregisterBody(k, iommu);
}

// @kernel: iommu_mock_device_add (the fwspec is installed before device_add)
export function iommuMockDeviceAdd(k: IommuCore, dev: Device, iommu: IommuDevice): Path<0 | KError> {
  return traced(k, "iommu_mock_device_add", dev.name, mockDeviceAddBody(k, dev, iommu), iommu.name);
}

function* mockDeviceAddBody(k: IommuCore, dev: Device, iommu: IommuDevice): Path<0 | KError> {
  touch(k.sched, dev);
  if (dev.registered) return kerr("EEXIST", `${dev.name} is already added`);
  yield* mutexLock(k.sched, k.probeLock);
  const ret = iommuFwspecInit(k, dev, iommu.fwnode);
  yield* mutexUnlock(k.sched, k.probeLock);
  if (ret !== 0) return ret;
  const added = yield* deviceAdd(k.dc, dev);
  // [7.1] a failed device_add frees the whole dev->iommu, not only the fwspec.
  if (added !== 0) devIommuFree(dev);
  return added;
}
