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
import { kernelPath } from "../base/traced.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { devIommu, devIommuOps } from "./dev-iommu.ts";
import { devIommuFreePath, endBuild } from "./lifetime.ts";
import { iommuSetupDefaultDomain, iommuSetupDmaOps } from "./default-domain.ts";
import { iommuFwspecInitOps } from "./fwspec.ts";
import { iommuGroupPut, type IommuGroup } from "./group.ts";
import type { IommuCore } from "./iommu-core.ts";
import type { IommuDevice } from "./iommu-device.ts";
import type { IommuOps } from "./ops.ts";
import type { DriverBusOps } from "./strategy-types.ts";
import { iommuBusNotifier, iommuProbeDeviceLocked, iommuReleaseDevice, probeIndexAdd } from "./probe.ts";
import { fwspecLock, fwspecUnlock, probeCallerLock, probeCallerUnlock } from "./probe-lock.ts";

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

export const busIommuProbe = kernelPath("bus_iommu_probe", function* (k: IommuCore, bus: BusType): Path<0 | KError> {
  const groupList: IommuGroup[] = [];
  // @kernel: probe_iommu_group (for each device on the bus)
  for (const dev of walkCandidates(k, bus)) {
    if (!dev.registered) continue;
    yield* probeCallerLock(k);
    const had = devIommu(dev) !== null;
    const ret = yield* iommuProbeDeviceLocked(k, dev, groupList);
    // A refused probe frees a fwspec-only dev_iommu (one a deferral left under fwspec-carries-ops).
    if (ret !== 0 && had && devIommu(dev) === null) k.walkFreedDevIommus++;
    yield* probeCallerUnlock(k);
    if (ret !== 0 && ret.errno !== "ENODEV") {
      for (const g of groupList) g.onGroupList = false;
      return ret;
    }
  }
  for (const group of groupList) {
    yield* mutexLock(k.sched, group.mutex);
    group.onGroupList = false;
    // Model only: without the probe lock a racing path may have freed a member's dev_iommu (I34/I35 recorded it); the kernel would dereference it, the model skips the group.
    if (k.sched.points && group.devices.some((g) => devIommu(g.dev) === null)) {
      yield* mutexUnlock(k.sched, group.mutex);
      continue;
    }
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
}, (_k, bus) => bus.name);

/** What a failed registration can leave behind, counted: warnings, groups, domains, the devices of every instance. */
function registerFootprint(k: IommuCore): string {
  let n = 0;
  for (const it of k.deviceList) n += it.devices.size;
  return `${k.ctx.diag.warnings.length} ${k.groups.size} ${k.domains.size} ${n} ${k.walkFreedDevIommus}`;
}

/** The buses' ops, as one string (bus=ops, in iommu_buses order), to see whether a failed registration changed them. */
function busOpsKey(k: IommuCore): string {
  if (k.busIommuOps.size === 0) return "";
  let s = "";
  for (const bus of k.iommuBuses) {
    const ops = k.busIommuOps.get(bus);
    if (ops !== undefined) s += `${s === "" ? "" : " "}${bus.name}=${ops.name}`;
  }
  for (const [bus, ops] of k.busIommuOps) if (!k.iommuBuses.includes(bus)) s += ` ${bus.name}=${ops.name}`;
  return s;
}

/**
 * A failed registration walk was undone by iommu_device_unregister, which
 * releases only this instance's devices: what the walk did for other
 * instances, and logged, stays (a failure effect, recorded when the walk
 * probed devices for this instance or changed anything else).
 */
function registerFailed(k: IommuCore, iommu: IommuDevice, err: KError, footprint: string, probed: number, busOpsBefore: string): void {
  if (busOpsKey(k) !== busOpsBefore) k.effect("failed-register-changes-bus-ops", iommu.name, `the registration failed with ${err.errno}; the buses' ops stay as it left them (${busOpsBefore || "none"} before, ${busOpsKey(k) || "none"} now)`);
  if (probed === 0 && registerFootprint(k) === footprint) return;
  k.effect("register-walk-keeps-other-probes", iommu.name, `the bus walk failed with ${err.errno}; iommu_device_unregister released the devices it had probed for ${iommu.name}, not what it did for other instances or logged`);
}

export const iommuDeviceRegister = kernelPath("iommu_device_register", function* (k: IommuCore, iommu: IommuDevice, ops: IommuOps, hwdevFwnode: FwnodeHandle | null): Path<0 | KError> {
  // Model rule (docs/model.md): the kernel would corrupt iommu_device_list; the model refuses.
  if (iommu.listed) return kerr("EEXIST", `${iommu.name} is already on iommu_device_list`);
  // bus-ops (v6.1-v6.7): a second, different driver is refused before anything is set up.
  const admitted = k.strategy.opsResolution.admit(k, ops);
  if (admitted !== 0) return admitted;
  const footprint = registerFootprint(k);
  const busOpsBefore = busOpsKey(k);
  iommu.ops = ops;
  if (hwdevFwnode !== null) iommu.fwnode = hwdevFwnode;
  // iommu_device_list is written under iommu_device_lock (a spinlock: a point, never a wait).
  yield* access(k.sched, "write", "iommu_device_list");
  listAdd(k, iommu);
  let err: 0 | KError = 0;
  for (const bus of k.iommuBuses) {
    // Every bus since v6.1 (bus-ops gives it the ops first); none up to v6.0, where the driver's bus_set_iommu walks.
    if (!k.strategy.opsResolution.walkOnRegister(k, bus, ops)) continue;
    err = yield* busIommuProbe(k, bus);
    if (err !== 0) break;
  }
  if (err !== 0) {
    const probed = iommu.devices.size;
    yield* unregisterInstance(k, iommu);
    registerFailed(k, iommu, err, footprint, probed, busOpsBefore);
    return err;
  }
  if (k.sched.points) yield* access(k.sched, "write", `ready ${iommu.name}`);
  iommu.ready = true;
  supplierReady(k, iommu);
  return 0;
}, (_k, iommu) => iommu.name);

export const iommuDeviceUnregister = kernelPath("iommu_device_unregister", unregisterInstance, (_k, iommu) => iommu.name);

/** iommu_device_unregister's work, which a failed registration does too, without a trace record of its own. */
function* unregisterInstance(k: IommuCore, iommu: IommuDevice): Path<0 | KError> {
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

/** CONFIG_IOMMUFD_TEST: the selftest's mock instance registers for its private bus only. */
export const iommuDeviceRegisterBus = kernelPath("iommu_device_register_bus", function* (k: IommuCore, iommu: IommuDevice, ops: IommuOps, bus: BusType, swnode: boolean): Path<0 | KError> {
  // Model rule (docs/model.md): the kernel would corrupt iommu_device_list; the model refuses.
  if (iommu.listed) return kerr("EEXIST", `${iommu.name} is already on iommu_device_list`);
  const footprint = registerFootprint(k);
  const busOpsBefore = busOpsKey(k);
  iommu.ops = ops;
  const nb = iommuBusNotifier(k);
  busRegisterNotifier(bus, nb);
  iommu.busNotifier = { bus, nb };
  // v6.6-v6.7 (and the bus-ops eras generally): the private bus carries the mock's ops.
  k.strategy.opsResolution.registerPrivateBus(k, bus, ops);
  // Since v6.18 the instance gets its own software fwnode so fwspecs can name it.
  if (swnode) iommu.fwnode = fwnodeCreateSoftwareNode(`swnode:${iommu.name}`);
  // iommu_device_list is written under iommu_device_lock (a spinlock: a point, never a wait).
  yield* access(k.sched, "write", "iommu_device_list");
  listAdd(k, iommu);
  const err = yield* busIommuProbe(k, bus);
  if (err !== 0) {
    const probed = iommu.devices.size;
    yield* unregisterBusInstance(k, iommu);
    registerFailed(k, iommu, err, footprint, probed, busOpsBefore);
    return err;
  }
  if (k.sched.points) yield* access(k.sched, "write", `ready ${iommu.name}`);
  iommu.ready = true;
  supplierReady(k, iommu);
  return 0;
}, { subject: (_k, iommu) => iommu.name, detail: (_k, _iommu, _ops, bus) => bus.name });

export const iommuDeviceUnregisterBus = kernelPath("iommu_device_unregister_bus", unregisterBusInstance, (_k, iommu) => iommu.name);

/** iommu_device_unregister_bus's work, which a failed registration does too, without a trace record of its own. */
function* unregisterBusInstance(k: IommuCore, iommu: IommuDevice): Path<0 | KError> {
  // Model rule (docs/model.md): unregistering what is not registered is refused.
  if (!iommu.listed) return kerr("ENOENT", `${iommu.name} is not registered`);
  const reg = iommu.busNotifier;
  if (reg !== null) {
    busUnregisterNotifier(reg.bus, reg.nb);
    iommu.busNotifier = null;
  }
  const ret = yield* unregisterInstance(k, iommu);
  // fwnode_remove_software_node (v6.18+): the node goes (the kernel's pointer dangles until the next registration makes another; the model clears it).
  if (iommu.fwnode?.kind === "swnode") iommu.fwnode = null;
  return ret;
}

/**
 * The fwspec is installed before device_add (v6.18+: naming the instance's
 * fwnode). Under fwspec-carries-ops the fwspec carries the mock's ops as
 * well, whatever the fwnode (NULL included): the bus-code pre-allocation of
 * "iommufd/selftest: Use right iommu_ops for mock device" (v1, January 2024).
 */
export const iommuMockDeviceAdd = kernelPath("iommu_mock_device_add", function* (k: IommuCore, dev: Device, iommu: IommuDevice, ops: IommuOps): Path<0 | KError> {
  touch(k.sched, dev);
  if (dev.registered) return kerr("EEXIST", `${dev.name} is already added`);
  yield* fwspecLock(k);
  const ret = yield* iommuFwspecInitOps(k, dev, iommu.fwnode, ops);
  if (k.sched.points) yield* endBuild(k, dev, devIommu(dev));
  yield* fwspecUnlock(k);
  if (ret !== 0) return ret;
  const added = yield* deviceAdd(k.dc, dev);
  // [7.1] a failed device_add frees the whole dev->iommu, not only the fwspec.
  if (added !== 0) yield* devIommuFreePath(k, dev);
  return added;
}, { subject: (_k, dev) => dev.name, detail: (_k, _dev, iommu) => iommu.name });

/**
 * Kernels up to v6.0 (ops_resolution=bus-set-iommu): a driver gives a bus
 * its ops, and the bus replays probe over the devices already on it. A bus
 * that has ops refuses any (EBUSY, even the same ops: drivers guard the
 * call themselves); NULL clears them with no cleanup. A failed replay
 * releases every device of the bus and clears its ops again. The model
 * keeps the core's notifier on every IOMMU bus from boot (v6.1's "iommu:
 * Always register bus notifiers"); before that iommu_bus_init registered
 * it here, which changes nothing a device can see: a bus without ops
 * probes nothing.
 */
export const busSetIommu = kernelPath("bus_set_iommu", function* (k: IommuCore, bus: BusType, ops: IommuOps | null): Path<0 | KError> {
  if (ops === null) {
    k.busIommuOps.delete(bus);
    return 0;
  }
  const cur = k.busIommuOps.get(bus);
  if (cur !== undefined) return kerr("EBUSY", `bus ${bus.name} already has ${cur.name}'s iommu_ops`);
  k.busIommuOps.set(bus, ops);
  // @kernel: iommu_bus_init (bus_iommu_probe; on failure every device of the bus is released)
  const err = yield* busIommuProbe(k, bus);
  if (err === 0) return 0;
  // @kernel: remove_iommu_group (each device of the bus, whichever instance probed it)
  let released = 0;
  for (const dev of [...bus.devices]) {
    if (devIommu(dev) !== null) released++;
    yield* iommuReleaseDevice(k, dev);
    probeIndexAdd(k, dev);
  }
  k.busIommuOps.delete(bus);
  if (released > 0) k.effect("bus-set-iommu-releases-bus", bus.name, `bus_set_iommu(${ops.name}) failed with ${err.errno}: ${released} device(s) of the bus released, other instances' included`);
  return err;
}, { subject: (_k, bus) => bus.name, detail: (_k, _bus, ops) => ops?.name ?? "NULL" });

/**
 * What a driver's own registration does once its iommu_device_register
 * succeeded, as the ops-resolution strategy has it (up to v6.0: its
 * bus_set_iommu calls, which may fail its probe, the instance unregistered).
 */
export function* iommuDriverRegistered(k: IommuCore, iommu: IommuDevice, driver: DriverBusOps | null): Path<0 | KError> {
  const footprint = registerFootprint(k);
  const busOpsBefore = busOpsKey(k);
  const err = yield* k.strategy.opsResolution.driverRegistered(k, iommu, driver);
  if (err !== 0) {
    // The driver's probe fails: its error path unregisters the instance.
    const probed = iommu.devices.size;
    yield* iommuDeviceUnregister(k, iommu);
    registerFailed(k, iommu, err, footprint, probed, busOpsBefore);
    return err;
  }
  // The IOMMU driver's own successful bind (driver_bound) retriggers deferred devices.
  yield* driverDeferredProbeTrigger(k.dc);
  return 0;
}

/** What a driver's remove path does before its iommu_device_unregister (up to v6.0: arm-smmu-v3 clears the bus ops). */
export function* iommuDriverRemoving(k: IommuCore, iommu: IommuDevice, driver: DriverBusOps | null): Path<void> {
  if (iommu.listed) yield* k.strategy.opsResolution.driverRemoving(k, iommu, driver);
}
