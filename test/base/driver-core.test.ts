import { describe, expect, it } from "vitest";
import { BUS_NOTIFY_ADD_DEVICE, busRegisterNotifier, type BusNotifyAction } from "../../src/base/bus.ts";
import { deviceAdd, deviceDel } from "../../src/base/core.ts";
import { deferredProbeInitcall, deviceDriverAttach, deviceReleaseDriver, driverRegister, flushDeferredProbeWork } from "../../src/base/dd.ts";
import { Device } from "../../src/base/device.ts";
import { DeviceDriver } from "../../src/base/driver.ts";
import { busRegister, DriverCore } from "../../src/base/driver-core.ts";
import { callPath, DeadlockError, runPath, type Path } from "../../src/base/path.ts";
import { mutexLock } from "../../src/base/mutex.ts";
import { kerr, type KError } from "../../src/lib/errno.ts";

/** A bus whose dma_configure answers from a table, recording the order of calls. */
function setup() {
  const dc = new DriverCore();
  const bus = busRegister(dc, "platform");
  const log: string[] = [];
  const dmaResult = new Map<string, 0 | KError>();
  bus.dmaConfigure = (dev) =>
    callPath(() => {
      log.push(`dma_configure ${dev.name} driver=${dev.driver?.name ?? "none"}`);
      return dmaResult.get(dev.name) ?? 0;
    });
  bus.dmaCleanup = (dev) =>
    callPath(() => {
      log.push(`dma_cleanup ${dev.name}`);
    });
  busRegisterNotifier(bus, {
    name: "log",
    actions: 1 << BUS_NOTIFY_ADD_DEVICE,
    call: (action: BusNotifyAction, dev: Device) =>
      callPath(() => {
        if (action === BUS_NOTIFY_ADD_DEVICE) log.push(`notify add ${dev.name}`);
      }),
  });
  const drv = (name: string, match: string[], probe: (d: Device) => 0 | KError = () => 0) =>
    new DeviceDriver(bus, {
      name,
      match,
      probeResult: (d) => {
        log.push(`probe ${name} ${d.name}`);
        return probe(d);
      },
    });
  return { dc, bus, log, dmaResult, drv };
}

describe("the driver core", () => {
  it("device_add notifies the bus, then binds a matching driver: dma_configure runs before probe", () => {
    const { dc, bus, log, drv } = setup();
    runPath(driverRegister(dc, drv("d", ["a"])));
    const a = new Device("a", bus, null, null);
    expect(runPath(deviceAdd(dc, a))).toBe(0);
    expect(log).toEqual(["notify add a", "dma_configure a driver=d", "probe d a"]);
    expect(a.bound && a.driver?.name === "d").toBe(true);
  });

  it("EPROBE_DEFER from dma_configure puts the device on the deferred list, and a later bind retriggers it", () => {
    const { dc, bus, dmaResult, drv } = setup();
    runPath(deferredProbeInitcall(dc));
    runPath(driverRegister(dc, drv("d", ["a", "b"])));
    const a = new Device("a", bus, null, null);
    const b = new Device("b", bus, null, null);
    dmaResult.set("a", kerr("EPROBE_DEFER", "waiting"));
    runPath(deviceAdd(dc, a));
    expect(a.deferredProbe).toBe(true);
    expect(a.driver).toBeNull();
    expect(dc.deferred.devices()).toEqual([a]);
    dmaResult.delete("a");
    // Any successful bind retriggers the deferred devices; the work item retries them.
    runPath(deviceAdd(dc, b));
    expect(b.bound).toBe(true);
    expect(dc.deferredWorkQueued).toBe(true);
    runPath(flushDeferredProbeWork(dc));
    expect(a.bound).toBe(true);
    expect(a.deferredProbe).toBe(false);
  });

  it("deferred devices wait for late_initcall before the first retry", () => {
    const { dc, bus, dmaResult, drv } = setup();
    runPath(driverRegister(dc, drv("d", ["a", "b"])));
    const a = new Device("a", bus, null, null);
    dmaResult.set("a", kerr("EPROBE_DEFER", "waiting"));
    runPath(deviceAdd(dc, a));
    runPath(deviceAdd(dc, new Device("b", bus, null, null)));
    expect(dc.deferredWorkQueued).toBe(false);
    dmaResult.delete("a");
    runPath(deferredProbeInitcall(dc));
    expect(a.bound).toBe(true);
  });

  it("a failing driver probe undoes dma_configure with dma_cleanup and tries the next driver", () => {
    const { dc, bus, log, drv } = setup();
    runPath(driverRegister(dc, drv("first", ["a"], () => kerr("EIO", "broken hardware"))));
    runPath(driverRegister(dc, drv("second", ["a"])));
    const a = new Device("a", bus, null, null);
    runPath(deviceAdd(dc, a));
    expect(log).toEqual([
      "notify add a",
      "dma_configure a driver=first",
      "probe first a",
      "dma_cleanup a",
      "dma_configure a driver=second",
      "probe second a",
    ]);
    expect(a.driver?.name).toBe("second");
  });

  it("a dma_configure failure other than a deferral fails the bind and stops the driver search", () => {
    const { dc, bus, log, dmaResult, drv } = setup();
    runPath(driverRegister(dc, drv("first", ["a"])));
    runPath(driverRegister(dc, drv("second", ["a"])));
    const a = new Device("a", bus, null, null);
    dmaResult.set("a", kerr("EBUSY", "owned by user space"));
    runPath(deviceAdd(dc, a));
    expect(log).toEqual(["notify add a", "dma_configure a driver=first"]);
    expect(a.driver).toBeNull();
    expect(a.probeError).toBe("EBUSY");
  });

  it("sysfs bind reports a deferral as EAGAIN and does not queue the device", () => {
    const { dc, bus, dmaResult, drv } = setup();
    const d = drv("d", ["a"]);
    const a = new Device("a", bus, null, null);
    runPath(deviceAdd(dc, a));
    runPath(driverRegister(dc, new DeviceDriver(bus, { name: "other", match: [] })));
    d.registered = true;
    bus.drivers.push(d);
    dmaResult.set("a", kerr("EPROBE_DEFER", "waiting"));
    expect(runPath(deviceDriverAttach(dc, d, a))).toMatchObject({ errno: "EAGAIN" });
    expect(a.deferredProbe).toBe(false);
  });

  it("unbind runs dma_cleanup and leaves the device unbound", () => {
    const { dc, bus, log, drv } = setup();
    runPath(driverRegister(dc, drv("d", ["a"])));
    const a = new Device("a", bus, null, null);
    runPath(deviceAdd(dc, a));
    runPath(deviceReleaseDriver(dc, a));
    expect(log.at(-1)).toBe("dma_cleanup a");
    expect(a.driver).toBeNull();
    expect(a.bound).toBe(false);
  });

  it("device_del refuses a device whose children are still added", () => {
    const { dc, bus } = setup();
    const p = new Device("p", bus, null, null);
    const c = new Device("c", bus, p, null);
    runPath(deviceAdd(dc, p));
    runPath(deviceAdd(dc, c));
    expect(runPath(deviceDel(dc, p))).toMatchObject({ errno: "EBUSY" });
    expect(runPath(deviceDel(dc, c))).toBe(0);
    expect(runPath(deviceDel(dc, p))).toBe(0);
    expect(bus.devices).toEqual([]);
  });

  it("device_add refuses a device whose parent is not added", () => {
    const { dc, bus } = setup();
    const p = new Device("p", bus, null, null);
    const c = new Device("c", bus, p, null);
    expect(runPath(deviceAdd(dc, c))).toMatchObject({ errno: "ENODEV" });
    expect(bus.devices).toEqual([]);
  });

  it("device locks are not recursive: taking one twice on one path is a deadlock", () => {
    const { dc, bus } = setup();
    const a = new Device("a", bus, null, null);
    const twice = function* (): Path {
      yield* mutexLock(dc.sched, a.lock);
      yield* mutexLock(dc.sched, a.lock);
    };
    expect(() => runPath(twice())).toThrow(DeadlockError);
  });
});
