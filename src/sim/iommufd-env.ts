/**
 * The machine side of iommufd: what the selftest's mock device creation
 * needs from a booted machine (a device on the `iommufd_mock` bus, added
 * with iommu_mock_device_add against the mock instance, and its removal),
 * and the physical pages user memory comes from.
 */
import { deviceDel } from "../base/core.ts";
import { Device } from "../base/device.ts";
import { runPath } from "../base/path.ts";
import { FwnodeHandle } from "../base/fwnode.ts";
import { MOCK_PASID_WIDTH, mockDeviceFlags, mockNestedHooks } from "../drivers/iommufd-mock.ts";
import { mockDomainAllocNested, mockNopAttach } from "../iommufd/mock-nested.ts";
import type { IommuUserData } from "../iommufd/user-data.ts";
import { MOCK_FLAGS_DEVICE_PASID } from "../iommufd/selftest.ts";
import { iommuMockDeviceAdd } from "../iommu/register.ts";
import { kerr } from "../lib/errno.ts";
import type { IommufdEnv } from "../iommufd/object.ts";
import { PhysMem } from "../iommufd/user-memory.ts";
import type { Machine } from "./machine.ts";

export function iommufdEnv(m: Machine, phys: PhysMem = new PhysMem()): IommufdEnv {
  let nextMock = 0;
  // The mock driver's nested half (selftest.c's, kept with iommufd).
  mockNestedHooks.domainAllocNested ??= (dev, parent, flags, userData) => mockDomainAllocNested(dev, parent, flags, userData as IommuUserData);
  mockNestedHooks.nopAttach ??= mockNopAttach;
  return {
    core: m.k,
    phys,
    // @kernel: mock_dev_create
    mockDeviceAdd(flags) {
      const rec = [...m.instances.values()].find((r) => r.driver.registerBus !== null && r.iommu.ready);
      if (rec === undefined) return kerr("ENODEV", "no registered mock IOMMU instance");
      // The IDA number: the lowest name no device of the machine has (a scenario may name its own iommufd_mock<N>).
      let name = `iommufd_mock${nextMock++}`;
      while (m.devices.has(name)) name = `iommufd_mock${nextMock++}`;
      // The software node mock_dev_create gives the device: pasid-num-bits (MOCK_PASID_WIDTH with MOCK_FLAGS_DEVICE_PASID).
      const swnode = new FwnodeHandle(name, "swnode");
      swnode.props.set("pasid-num-bits", (flags & MOCK_FLAGS_DEVICE_PASID) !== 0 ? MOCK_PASID_WIDTH : 0);
      const dev = new Device(name, m.buses.mock, null, swnode);
      mockDeviceFlags.set(dev, flags);
      const rc = runPath(iommuMockDeviceAdd(m.k, dev, rec.iommu, rec.driver.ops));
      if (rc !== 0) return rc;
      return dev;
    },
    // @kernel: mock_dev_destroy
    mockDeviceDel(dev) {
      runPath(deviceDel(m.dc, dev));
    },
    mockDeviceFlags(dev) {
      return mockDeviceFlags.get(dev) ?? 0;
    },
  };
}
