/**
 * Driver binding and deferred probe, in drivers/base/dd.c's order:
 * really_probe sets `dev->driver`, runs the bus `dma_configure` step (which
 * may return EPROBE_DEFER or refuse DMA ownership), then the driver's probe;
 * a successful bind retriggers every deferred device.
 */
import { kerr, type KError } from "../lib/errno.ts";
import {
  BUS_NOTIFY_BIND_DRIVER,
  BUS_NOTIFY_BOUND_DRIVER,
  BUS_NOTIFY_DRIVER_NOT_BOUND,
  BUS_NOTIFY_UNBIND_DRIVER,
  BUS_NOTIFY_UNBOUND_DRIVER,
  busNotify,
} from "./bus.ts";
import type { SkipSummary } from "./deferred-lists.ts";
import type { Device } from "./device.ts";
import type { DeviceDriver } from "./driver.ts";
import type { FwnodeHandle } from "./fwnode.ts";
import type { DriverCore } from "./driver-core.ts";
import { mutexLock, mutexUnlock } from "./mutex.ts";
import { touch, type Path } from "./path.ts";
import { kernelPath } from "./traced.ts";

/**
 * A failed bind. `fromDriverProbe` tells the kernel's two conventions apart:
 * an error from the driver's own probe is returned inverted (positive) and
 * the next driver may try; an error before it (dma_configure, deferral) is
 * negative and stops the search.
 */
export class ProbeFailure {
  constructor(
    readonly err: KError,
    readonly fromDriverProbe: boolean,
  ) {}
}

export type ProbeRet = 0 | ProbeFailure;

function isDefer(r: ProbeRet): boolean {
  return r !== 0 && r.err.errno === "EPROBE_DEFER";
}

const reallyProbe = kernelPath("really_probe", function* (dc: DriverCore, dev: Device, drv: DeviceDriver): Path<ProbeRet> {
  // A new attempt: whatever the last one waited for is moot until this one defers.
  dev.deferredProbeSupplier = null;
  // @kernel: device_set_driver
  dev.driver = drv;
  const bus = dev.bus;
  if (bus.dmaConfigure !== null) {
    const ret = yield* bus.dmaConfigure(dev);
    if (ret !== 0) {
      // @kernel: really_probe (pinctrl_bind_failed: device_unbind_cleanup)
      dev.driver = null;
      return new ProbeFailure(ret, false);
    }
  }
  // @kernel: driver_sysfs_add
  yield* busNotify(bus, BUS_NOTIFY_BIND_DRIVER, dev);
  const ret = drv.probe(dev);
  if (ret !== 0) {
    // @kernel: really_probe (probe_failed: notify, dma_cleanup, unbind cleanup)
    yield* busNotify(bus, BUS_NOTIFY_DRIVER_NOT_BOUND, dev);
    if (bus.dmaCleanup !== null) yield* bus.dmaCleanup(dev);
    dev.driver = null;
    return new ProbeFailure(ret, true);
  }
  yield* driverBound(dc, dev);
  return 0;
}, { subject: (_dc, dev) => dev.name, detail: (_dc, _dev, drv) => drv.name });

// @kernel: driver_bound
function* driverBound(dc: DriverCore, dev: Device): Path {
  const drv = dev.driver!;
  dev.bound = true;
  dev.probeError = null;
  drv.devices.add(dev);
  yield* driverDeferredProbeDel(dc, dev);
  yield* driverDeferredProbeTrigger(dc);
  yield* busNotify(dev.bus, BUS_NOTIFY_BOUND_DRIVER, dev);
}

// @kernel: __driver_probe_device
function* driverProbeDeviceLocked(dc: DriverCore, drv: DeviceDriver, dev: Device, sysfs = false): Path<ProbeRet> {
  if (dev.dead || !dev.registered) return new ProbeFailure(kerr("ENODEV", `${dev.name} is not registered`), false);
  if (dev.driver !== null) {
    return new ProbeFailure(kerr("EBUSY", `${dev.name} is already bound to ${dev.driver.name}`), false);
  }
  const prevError = dev.probeError;
  const ret = yield* reallyProbe(dc, dev, drv);
  dev.probeError = ret === 0 || isDefer(ret) ? null : ret.err.errno;
  // A sysfs bind's failure is its writer's errno: the device keeps no trace of it.
  if (sysfs && ret !== 0) dev.probeError = prevError;
  return ret;
}

// @kernel: driver_probe_device
function* driverProbeDevice(dc: DriverCore, drv: DeviceDriver, dev: Device): Path<ProbeRet> {
  const triggerCount = dc.deferredTriggerCount;
  const wakes = dc.supplierWakes;
  const ret = yield* driverProbeDeviceLocked(dc, drv, dev);
  if (isDefer(ret)) {
    yield* driverDeferredProbeAdd(dc, dev, wakes);
    // Did a trigger occur while probing? Then retrigger, or the device could be stuck.
    if (triggerCount !== dc.deferredTriggerCount) yield* driverDeferredProbeTrigger(dc);
  }
  return ret;
}

// @kernel: __device_attach (and __device_attach_driver for each driver on the bus)
export function* deviceAttach(dc: DriverCore, dev: Device): Path<0 | 1 | KError> {
  yield* mutexLock(dc.sched, dev.lock);
  let ret: 0 | 1 | KError = 0;
  if (!dev.dead) {
    if (dev.driver !== null) {
      ret = dev.bound ? 1 : 0;
    } else {
      for (const drv of [...dev.bus.drivers]) {
        if (!drv.matches(dev)) continue;
        const r = yield* driverProbeDevice(dc, drv, dev);
        if (r === 0) {
          ret = 1;
          break;
        }
        if (!r.fromDriverProbe) {
          ret = r.err;
          break;
        }
      }
    }
  }
  yield* mutexUnlock(dc.sched, dev.lock);
  return ret;
}

// @kernel: bus_probe_device (device_initial_probe: drivers_autoprobe is always on in the model)
export function* busProbeDevice(dc: DriverCore, dev: Device): Path {
  yield* deviceAttach(dc, dev);
}

/** A sysfs bind: no deferred-list handling, -EAGAIN for a deferral. */
export const deviceDriverAttach = kernelPath("device_driver_attach", function* (dc: DriverCore, drv: DeviceDriver, dev: Device): Path<0 | KError> {
  // @kernel: bind_store (the driver must match the device)
  if (!drv.matches(dev)) return kerr("ENODEV", `driver ${drv.name} does not match ${dev.name}`);
  yield* mutexLock(dc.sched, dev.lock);
  const ret = yield* driverProbeDeviceLocked(dc, drv, dev, true);
  yield* mutexUnlock(dc.sched, dev.lock);
  if (ret === 0) return 0;
  if (isDefer(ret)) return kerr("EAGAIN", `${ret.err.message} (sysfs bind reports a deferral as EAGAIN)`);
  return ret.err;
}, { subject: (_dc, _drv, dev) => dev.name, detail: (_dc, drv) => drv.name });

/** bus_add_driver, then driver_attach. */
export const driverRegister = kernelPath("driver_register", function* (dc: DriverCore, drv: DeviceDriver): Path<0 | KError> {
  if (drv.registered) return kerr("EBUSY", `driver ${drv.name} is already registered`);
  drv.bus.drivers.push(drv);
  drv.registered = true;
  // @kernel: driver_attach (__driver_attach for each device on the bus)
  for (const dev of [...drv.bus.devices]) {
    if (!drv.matches(dev)) continue;
    yield* mutexLock(dc.sched, dev.lock);
    yield* driverProbeDevice(dc, drv, dev);
    yield* mutexUnlock(dc.sched, dev.lock);
  }
  return 0;
}, (_dc, drv) => drv.name);

/** driver_detach, then bus_remove_driver. */
export const driverUnregister = kernelPath("driver_unregister", function* (dc: DriverCore, drv: DeviceDriver): Path<0 | KError> {
  if (!drv.registered) return kerr("ENODEV", `driver ${drv.name} is not registered`);
  for (const dev of [...drv.devices]) yield* deviceReleaseDriver(dc, dev);
  const i = drv.bus.drivers.indexOf(drv);
  drv.bus.drivers.splice(i, 1);
  drv.registered = false;
  // A deferred device this driver matched may find no driver, or another one, when it is retried.
  dc.supplierWakes++;
  dc.deferred.wakeAll();
  return 0;
}, (_dc, drv) => drv.name);

/** __device_release_driver under device_lock. */
export const deviceReleaseDriver = kernelPath("device_release_driver", function* (dc: DriverCore, dev: Device): Path<0 | KError> {
  yield* mutexLock(dc.sched, dev.lock);
  const drv = dev.driver;
  if (drv !== null) {
    yield* busNotify(dev.bus, BUS_NOTIFY_UNBIND_DRIVER, dev);
    // @kernel: device_remove (drv->remove), then bus->dma_cleanup
    if (dev.bus.dmaCleanup !== null) yield* dev.bus.dmaCleanup(dev);
    dev.driver = null;
    dev.bound = false;
    drv.devices.delete(dev);
    yield* busNotify(dev.bus, BUS_NOTIFY_UNBOUND_DRIVER, dev);
  }
  yield* mutexUnlock(dc.sched, dev.lock);
  return 0;
}, (_dc, dev) => dev.name);

// @kernel: driver_deferred_probe_add
export function* driverDeferredProbeAdd(dc: DriverCore, dev: Device, wakesAtProbe = dc.supplierWakes): Path {
  touch(dc.sched, dev);
  yield* mutexLock(dc.sched, dc.deferredProbeMutex);
  // A supplier became ready since the probe began (another task): its wake may have missed this deferral.
  if (wakesAtProbe !== dc.supplierWakes) dev.deferredProbeSupplier = null;
  dc.deferred.add(dev);
  yield* mutexUnlock(dc.sched, dc.deferredProbeMutex);
}

// @kernel: driver_deferred_probe_del
export function* driverDeferredProbeDel(dc: DriverCore, dev: Device): Path {
  touch(dc.sched, dev);
  yield* mutexLock(dc.sched, dc.deferredProbeMutex);
  dc.deferred.del(dev);
  yield* mutexUnlock(dc.sched, dc.deferredProbeMutex);
}

/**
 * A supplier named by deferred devices (an IOMMU instance's firmware node)
 * was registered or became ready. No kernel counterpart: the kernel retries
 * every deferred device at the trigger that follows; the model's index
 * retries those whose wait may have ended (deferred-index.ts). fw_devlink
 * keys a consumer's suppliers by the same firmware node.
 */
export function deferredProbeSupplierReady(dc: DriverCore, supplier: FwnodeHandle): void {
  dc.supplierWakes++;
  dc.deferred.wake(supplier);
}

// @kernel: driver_deferred_probe_trigger
export function* driverDeferredProbeTrigger(dc: DriverCore): Path {
  if (!dc.driverDeferredProbeEnable) return;
  yield* mutexLock(dc.sched, dc.deferredProbeMutex);
  dc.deferredTriggerCount++;
  // list_splice_tail_init(&deferred_probe_pending_list, &deferred_probe_active_list)
  dc.deferred.splice();
  yield* mutexUnlock(dc.sched, dc.deferredProbeMutex);
  // @kernel: queue_work(deferred_wq, &deferred_probe_work)
  dc.deferredWorkQueued = true;
}

export const deferredProbeWorkFunc = kernelPath("deferred_probe_work_func", function* (dc: DriverCore): Path {
  yield* mutexLock(dc.sched, dc.deferredProbeMutex);
  dc.deferred.beginRun();
  for (;;) {
    const dev = dc.deferred.next();
    if (dev === null) break;
    yield* mutexUnlock(dc.sched, dc.deferredProbeMutex);
    yield* busProbeDevice(dc, dev);
    yield* mutexLock(dc.sched, dc.deferredProbeMutex);
  }
  const skipped = dc.deferred.endRun();
  yield* mutexUnlock(dc.sched, dc.deferredProbeMutex);
  if (skipped !== null && skipped.skipped > 0 && dc.ctx.tracing) {
    dc.ctx.note("deferred_probe_work_func", "", skipSummaryText(skipped));
  }
}, (_dc) => "");

/** The trace line for the retries the index skipped in one run of the work item. */
function skipSummaryText(s: SkipSummary): string {
  const waits = [...s.bySupplier].map(([fw, n]) => `${n} for ${fw}`);
  const keyless = s.skipped - [...s.bySupplier.values()].reduce((a, b) => a + b, 0);
  if (keyless > 0) waits.push(`${keyless} outside this trigger's active list`);
  return `skipped the retries of ${s.skipped} deferred device(s) whose wait has not ended (the kernel retries each; each would defer again unchanged): ${waits.join(", ")}`;
}

/** Runs the deferred-probe work item until nothing re-queues it (the workqueue draining). */
export function* flushDeferredProbeWork(dc: DriverCore): Path {
  while (dc.deferredWorkQueued) {
    dc.deferredWorkQueued = false;
    yield* deferredProbeWorkFunc(dc);
  }
}

// @kernel: deferred_probe_initcall (late_initcall: enable, trigger, flush)
export function* deferredProbeInitcall(dc: DriverCore): Path {
  dc.driverDeferredProbeEnable = true;
  yield* driverDeferredProbeTrigger(dc);
  yield* flushDeferredProbeWork(dc);
}
