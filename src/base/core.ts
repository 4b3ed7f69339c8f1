/**
 * device_add / device_del (drivers/base/core.c) and the bus side of them
 * (drivers/base/bus.c): a device joins its bus's list, the bus notifier
 * chain hears about it (the IOMMU core probes it there), and then drivers
 * get a chance to bind.
 */
import { kerr, type KError } from "../lib/errno.ts";
import {
  BUS_NOTIFY_ADD_DEVICE,
  BUS_NOTIFY_DEL_DEVICE,
  BUS_NOTIFY_REMOVED_DEVICE,
  busNotify,
} from "./bus.ts";
import { deviceReleaseDriver, busProbeDevice, driverDeferredProbeDel } from "./dd.ts";
import type { Device } from "./device.ts";
import type { DriverCore } from "./driver-core.ts";
import { mutexLock, mutexUnlock } from "./mutex.ts";
import { touch, type Path } from "./path.ts";
import { kernelPath } from "./traced.ts";

export const deviceAdd = kernelPath("device_add", function* (dc: DriverCore, dev: Device): Path<0 | KError> {
  touch(dc.sched, dev);
  if (dev.registered) return kerr("EEXIST", `${dev.name} is already added to bus ${dev.bus.name}`);
  if (dev.parent !== null && !dev.parent.registered) {
    return kerr("ENODEV", `${dev.name}: its parent ${dev.parent.name} is not added`);
  }
  dev.dead = false;
  dev.probeError = null;
  // @kernel: bus_add_device (klist_add_tail on the bus)
  dev.bus.devices.push(dev);
  dev.busSeq = dc.nextBusSeq();
  if (dev.pci !== null) dev.pci.bus.devices.push(dev);
  dev.registered = true;
  yield* busNotify(dev.bus, BUS_NOTIFY_ADD_DEVICE, dev);
  yield* busProbeDevice(dc, dev);
  return 0;
}, (_dc, dev) => dev.name);

export const deviceDel = kernelPath("device_del", function* (dc: DriverCore, dev: Device): Path<0 | KError> {
  if (!dev.registered) return kerr("ENODEV", `${dev.name} is not on bus ${dev.bus.name}: nothing to delete`);
  // Model rule (docs/model.md): the kernel leaves children to their bus code; deleting a parent first is refused.
  const child = firstRegisteredChild(dev);
  if (child !== null) {
    return kerr("EBUSY", `${dev.name} still has child ${child.name}; remove the children first`);
  }
  // @kernel: kill_device (under device_lock)
  yield* mutexLock(dc.sched, dev.lock);
  dev.dead = true;
  yield* mutexUnlock(dc.sched, dev.lock);
  yield* busNotify(dev.bus, BUS_NOTIFY_DEL_DEVICE, dev);
  // @kernel: bus_remove_device (klist_del, then device_release_driver)
  removeFrom(dev.bus.devices, dev);
  if (dev.pci !== null) removeFrom(dev.pci.bus.devices, dev);
  yield* deviceReleaseDriver(dc, dev);
  yield* driverDeferredProbeDel(dc, dev);
  yield* busNotify(dev.bus, BUS_NOTIFY_REMOVED_DEVICE, dev);
  dev.registered = false;
  dev.probeError = null;
  return 0;
}, (_dc, dev) => dev.name);

function removeFrom(list: Device[], dev: Device): void {
  const i = list.indexOf(dev);
  if (i >= 0) list.splice(i, 1);
}

function firstRegisteredChild(dev: Device): Device | null {
  for (const d of dev.children ?? []) if (d.registered) return d;
  return null;
}
