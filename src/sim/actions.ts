/**
 * The kernel entry points the lifecycle events stand for, as paths. Each
 * does its work when the path runs (so a scheduler can interleave it) and
 * ends by letting the deferred-probe workqueue drain, as the kernel's would
 * before the next thing a test observes.
 */
import { deviceAdd, deviceDel } from "../base/core.ts";
import { deviceDriverAttach, deviceReleaseDriver, driverRegister, driverUnregister, flushDeferredProbeWork } from "../base/dd.ts";
import type { Path } from "../base/path.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { deviceAddWithFirmwareDma } from "../iommu/bus-dma.ts";
import {
  iommuDeviceRegister,
  iommuDeviceRegisterBus,
  iommuDeviceUnregister,
  iommuDeviceUnregisterBus,
  iommuDriverRegistered,
  iommuDriverRemoving,
  iommuMockDeviceAdd,
} from "../iommu/register.ts";
import type { DeviceRec, InstanceRec, Machine } from "./machine.ts";

/** Runs `path`, then lets the deferred-probe workqueue drain, as the kernel's would before anything observes the result. */
function* thenFlush(m: Machine, path: Path<0 | KError>): Path<0 | KError> {
  const ret = yield* path;
  yield* flushDeferredProbeWork(m.dc);
  return ret;
}

// iommu_device_register, or iommu_device_register_bus for the selftest's mock
export function* iommuRegister(m: Machine, rec: InstanceRec): Path<0 | KError> {
  // The instance's driver probes its hardware first; an instance already registered is not probed again.
  if (!rec.iommu.listed) rec.driver.hwProbe?.(rec.iommu);
  const bus = rec.driver.registerBus;
  return yield* thenFlush(
    m,
    bus !== null
      ? iommuDeviceRegisterBus(m.k, rec.iommu, rec.driver.ops, bus, rec.spec.fwnode !== null)
      : driverRegisters(m, rec),
  );
}

/** The IOMMU driver's probe of one instance: iommu_device_register, then whatever else its registration does (up to v6.0, bus_set_iommu). */
function* driverRegisters(m: Machine, rec: InstanceRec): Path<0 | KError> {
  const ret = yield* iommuDeviceRegister(m.k, rec.iommu, rec.driver.ops, rec.iommu.fwnode);
  if (ret !== 0) return ret;
  return yield* iommuDriverRegistered(m.k, rec.iommu, rec.driver.busClaims);
}

/** The IOMMU driver's remove of one instance: its own teardown (up to v6.0, arm-smmu-v3 clears its bus ops), then iommu_device_unregister. */
function* driverRemoves(m: Machine, rec: InstanceRec): Path<0 | KError> {
  yield* iommuDriverRemoving(m.k, rec.iommu, rec.driver.busClaims);
  return yield* iommuDeviceUnregister(m.k, rec.iommu);
}

export function* iommuUnregister(m: Machine, rec: InstanceRec): Path<0 | KError> {
  return yield* thenFlush(m, rec.driver.registerBus !== null ? iommuDeviceUnregisterBus(m.k, rec.iommu) : driverRemoves(m, rec));
}

/** The mock IOMMU instance, for iommu_mock_device_add. */
function mockInstance(m: Machine): InstanceRec | null {
  for (const rec of m.instances.values()) if (rec.driver.registerBus !== null) return rec;
  return null;
}

export function* addDevice(m: Machine, rec: DeviceRec): Path<0 | KError> {
  if (rec.spec.bus === "iommufd_mock" && (rec.spec.add_with ?? "iommu_mock_device_add") === "iommu_mock_device_add") {
    const mock = mockInstance(m);
    if (mock === null) return kerr("ENODEV", `${rec.dev.name}: iommu_mock_device_add needs the mock IOMMU instance`);
    return yield* thenFlush(m, iommuMockDeviceAdd(m.k, rec.dev, mock.iommu, mock.driver.ops));
  }
  // fwspec_owner bus-code: the bus code builds the fwspec from firmware before device_add.
  if (m.k.strategy.fwspecOwner.installAtDeviceAdd && rec.dev.bus.dmaConfigure !== null) return yield* thenFlush(m, deviceAddWithFirmwareDma(m.k, rec.dev));
  return yield* thenFlush(m, deviceAdd(m.dc, rec.dev));
}

export function* delDevice(m: Machine, rec: DeviceRec): Path<0 | KError> {
  return yield* thenFlush(m, deviceDel(m.dc, rec.dev));
}

export function* registerDriver(m: Machine, name: string): Path<0 | KError> {
  return yield* thenFlush(m, driverRegister(m.dc, m.drivers.get(name)!));
}

export function* unregisterDriver(m: Machine, name: string): Path<0 | KError> {
  return yield* thenFlush(m, driverUnregister(m.dc, m.drivers.get(name)!));
}

export function* bindDriver(m: Machine, device: string, driver: string): Path<0 | KError> {
  const drv = m.drivers.get(driver)!;
  const dev = m.devices.get(device)!.dev;
  if (!drv.registered) return kerr("ENODEV", `driver ${driver} is not registered`);
  if (!dev.registered) return kerr("ENODEV", `${device} is not added`);
  return yield* thenFlush(m, deviceDriverAttach(m.dc, drv, dev));
}

export function* unbindDriver(m: Machine, device: string): Path<0 | KError> {
  const dev = m.devices.get(device)!.dev;
  if (dev.driver === null) return kerr("ENODEV", `${device} has no driver bound`);
  return yield* thenFlush(m, deviceReleaseDriver(m.dc, dev));
}
