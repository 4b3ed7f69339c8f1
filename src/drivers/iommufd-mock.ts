/**
 * The iommufd selftest's mock IOMMU driver (drivers/iommu/iommufd/selftest.c).
 * One instance registers for the private `iommufd_mock` bus with
 * iommu_device_register_bus; probe_device accepts exactly the devices on
 * that bus. Its default and blocked domain are one static BLOCKED domain,
 * so a mock device starts out blocked. Paging domains use 2 KiB pages
 * (MOCK_IO_PAGE_SIZE) inside [MOCK_APERTURE_START, MOCK_APERTURE_LAST].
 * Their ops have no IOTLB invalidation, as the kernel's have none: nothing
 * caches a mock translation, so an unmap takes effect for device DMA at once.
 */
import type { Device } from "../base/device.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { devIommu } from "../iommu/dev-iommu.ts";
import { IOMMU_DOMAIN_BLOCKED, IOMMU_DOMAIN_UNMANAGED, IommuDomain } from "../iommu/domain.ts";
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
} from "../iommu/domain-alloc.ts";
import { genericDeviceGroup } from "../iommu/group.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import { IommuDevice } from "../iommu/iommu-device.ts";
import { IOMMU_CAP_CACHE_COHERENCY, IOMMU_CAP_DIRTY_TRACKING, type IommuDomainOps, type IommuOps } from "../iommu/ops.ts";
import { MOCK_APERTURE_LAST, MOCK_APERTURE_START, MOCK_HUGE_PAGE_SIZE, MOCK_IO_PAGE_SIZE, type MockIoPgtable } from "../pgtable/mock.ts";
import { newPagingDomain, pagingDomainOps, pagingPriv } from "./paging-domain.ts";
import { pagingFormat, type PagingFormat } from "./paging-format.ts";
import { staticBlockedDomain } from "./static-domains.ts";
import type { DriverEnv, IommuDriver, IommuDriverFactory, IommuInstanceDesc } from "./driver.ts";

export const DRIVER = "mock";
/** MOCK_PASID_WIDTH */
export const MOCK_PASID_WIDTH = 20;
/** IOMMU_TEST_PASID_RESERVED: the PASID whose second set_dev_pasid fails. */
export const IOMMU_TEST_PASID_RESERVED = 1024;
/** MOCK_FLAGS_DEVICE_NO_DIRTY: the device cannot track dirty pages. */
export const MOCK_FLAGS_DEVICE_NO_DIRTY = 1 << 0;
/** MOCK_FLAGS_DEVICE_HUGE_IOVA: the device's paging domains also map MOCK_HUGE_PAGE_SIZE pages. */
export const MOCK_FLAGS_DEVICE_HUGE_IOVA = 1 << 1;
/** The MOCK_FLAGS_DEVICE_* each mock device was created with (struct mock_dev's flags). */
export const mockDeviceFlags = new WeakMap<Device, number>();

/**
 * The mock's nested half lives next to iommufd (src/iommufd/mock-nested.ts, as
 * the kernel keeps it in selftest.c), which this layer may not import: the
 * machine installs it here, and the mock's ops call it.
 */
export const mockNestedHooks: {
  domainAllocNested: ((dev: Device, parent: IommuDomain, flags: number, userData: unknown) => IommuDomain | KError) | null;
  /** The rest of mock_domain_nop_attach for a domain that is not nested: the device records no vIOMMU. */
  nopAttach: ((dev: Device) => void) | null;
} = { domainAllocNested: null, nopAttach: null };

export const createIommufdMock: IommuDriverFactory = (k: IommuCore, env: DriverEnv): IommuDriver => {
  let mockIommu: IommuDevice | null = null;
  let mockFormat: PagingFormat | null = null;
  let mockHugeFormat: PagingFormat | null = null;
  /** mdev->pasid_1024_fake_error */
  const pasid1024FakeError = new WeakSet<Device>();
  // @kernel: mock_domain_set_dev_pasid_nop (at IOMMU_TEST_PASID_RESERVED every second non-blocking set fails, for the core's rollback)
  const setDevPasidNop: NonNullable<IommuDomainOps["setDevPasid"]> = (d, dev, pasid) => {
    if (pasid !== IOMMU_TEST_PASID_RESERVED) return 0;
    if (d.type === IOMMU_DOMAIN_BLOCKED) pasid1024FakeError.delete(dev);
    else if (pasid1024FakeError.has(dev)) {
      pasid1024FakeError.delete(dev);
      return kerr("ENOMEM", `mock: the fake failure of every second set_dev_pasid at PASID ${IOMMU_TEST_PASID_RESERVED}`);
    } else pasid1024FakeError.add(dev);
    return 0;
  };
  const blockedOps = staticBlockedDomain().ops;
  // @kernel: mock_domain_nop_attach (mock_blocking_ops: the device records no vIOMMU)
  const blockingAttach: IommuDomainOps["attachDev"] = (d, dev, old) => {
    const r = blockedOps.attachDev(d, dev, old);
    if (r === 0) mockNestedHooks.nopAttach?.(dev);
    return r;
  };
  const blocking = new IommuDomain(IOMMU_DOMAIN_BLOCKED, { ...blockedOps, attachDev: blockingAttach, setDevPasid: setDevPasidNop }, true);
  // @kernel: mock_ops (default_domain_ops: free, attach_dev, map_pages, unmap_pages, iova_to_phys)
  // No iotlb_sync and no flush_iotlb_all: the mock has no IOTLB, and device DMA walks its table every time.
  const { iotlbSync: _noIotlbSync, flushIotlbAll: _noFlushIotlbAll, ...baseOps } = pagingDomainOps(env, () => 0);
  // @kernel: mock_domain_nop_attach (a dirty-tracking domain refuses a NO_DIRTY device; a paging domain records no vIOMMU)
  const attachDev: IommuDomainOps["attachDev"] = (d, dev, old) => {
    if (d.ops.setDirtyTracking !== undefined && ((mockDeviceFlags.get(dev) ?? 0) & MOCK_FLAGS_DEVICE_NO_DIRTY) !== 0) {
      return kerr("EINVAL", `mock: ${dev.name} cannot track dirty pages; it cannot attach to a dirty-tracking domain`);
    }
    const r = baseOps.attachDev(d, dev, old);
    if (r === 0) mockNestedHooks.nopAttach?.(dev);
    return r;
  };
  const domainOps: IommuDomainOps = { ...baseOps, attachDev, setDevPasid: setDevPasidNop };
  /** Dirty tracking on, per domain (mock_iommu_domain's flag). */
  const tracking = new WeakSet<IommuDomain>();
  const dirtyDomainOps: IommuDomainOps = {
    ...domainOps,
    // @kernel: mock_domain_set_dirty_tracking
    setDirtyTracking(d, enable) {
      if (enable) tracking.add(d);
      else tracking.delete(d);
      return 0;
    },
    // @kernel: mock_domain_read_and_clear_dirty
    readAndClearDirty(d, iova, size, flags, record) {
      if (!tracking.has(d)) return kerr("EINVAL", "mock: dirty tracking is off");
      const t = pagingPriv(d).pgtbl as MockIoPgtable | null;
      t?.readAndClearDirty(iova, size, flags, record);
      return 0;
    },
    testSetDirty(d, iova) {
      const t = pagingPriv(d).pgtbl as MockIoPgtable | null;
      return t?.setDirty(iova) ?? false;
    },
  };

  // @kernel: mock_domain_alloc_paging_flags
  const allocPaging = (dev: Device | null, flags: number, userData: unknown): IommuDomain | KError => {
    const supported = IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID;
    if (userData !== null) return kerr("EOPNOTSUPP", "mock: paging allocation takes no user data");
    if ((flags & ~supported) !== 0) return kerr("EOPNOTSUPP", `mock: unsupported allocation flags 0x${flags.toString(16)}`);
    const iommu = (dev === null ? null : devIommu(dev)?.iommuDev) ?? mockIommu;
    if (iommu === null) return kerr("ENODEV", "mock: the mock IOMMU is not registered");
    mockFormat ??= pagingFormat(iommu, "IOMMUFD_MOCK", { pgsizeBitmap: MOCK_IO_PAGE_SIZE, ias: 32, oas: 52 }, { start: MOCK_APERTURE_START, end: MOCK_APERTURE_LAST });
    mockHugeFormat ??= pagingFormat(iommu, "IOMMUFD_MOCK", { pgsizeBitmap: MOCK_IO_PAGE_SIZE | MOCK_HUGE_PAGE_SIZE, ias: 32, oas: 52 }, { start: MOCK_APERTURE_START, end: MOCK_APERTURE_LAST });
    const format = dev !== null && ((mockDeviceFlags.get(dev) ?? 0) & MOCK_FLAGS_DEVICE_HUGE_IOVA) !== 0 ? mockHugeFormat : mockFormat;
    if ((flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0) {
      if (dev !== null && ((mockDeviceFlags.get(dev) ?? 0) & MOCK_FLAGS_DEVICE_NO_DIRTY) !== 0) return kerr("EOPNOTSUPP", `mock: ${dev.name} cannot track dirty pages`);
      return newPagingDomain(IOMMU_DOMAIN_UNMANAGED, dirtyDomainOps, format);
    }
    return newPagingDomain(IOMMU_DOMAIN_UNMANAGED, domainOps, format);
  };

  const ops: IommuOps = {
    name: DRIVER,
    defaultDomain: blocking,
    blockedDomain: blocking,
    // @kernel: mock_probe_device
    probeDevice(dev) {
      if (env.mockBus === null || dev.bus !== env.mockBus) return kerr("ENODEV", `mock: ${dev.name} is not on the ${env.mockBus?.name ?? "iommufd_mock"} bus`);
      if (mockIommu === null) return kerr("ENODEV", "mock: no mock IOMMU");
      return mockIommu;
    },
    deviceGroup() {
      return genericDeviceGroup(k);
    },
    // @kernel: mock_domain_hw_info
    hwInfo() {
      // struct iommu_test_hw_info {flags = 0, test_reg = IOMMU_HW_INFO_SELFTEST_REGVAL}, little-endian.
      const data = new Uint8Array(8);
      new DataView(data.buffer).setUint32(4, 0xdeadbeef, true);
      return { type: 0xfeedbeef, data };
    },
    // @kernel: mock_domain_capable
    capable(dev, cap) {
      if (cap === IOMMU_CAP_CACHE_COHERENCY) return true;
      if (cap === IOMMU_CAP_DIRTY_TRACKING) return ((mockDeviceFlags.get(dev) ?? 0) & MOCK_FLAGS_DEVICE_NO_DIRTY) === 0;
      return false;
    },
    domainAllocPagingFlags(dev, flags, userData) {
      return allocPaging(dev, flags, userData);
    },
    // @kernel: mock_domain_alloc_nested
    domainAllocNested(dev, parent, flags, userData) {
      const alloc = mockNestedHooks.domainAllocNested;
      return alloc === null ? kerr("EOPNOTSUPP", "mock: no nested half installed") : alloc(dev, parent, flags, userData);
    },
  };

  return {
    name: DRIVER,
    ops,
    registerBus: env.mockBus,
    busClaims: null,
    newInstance(desc: IommuInstanceDesc) {
      const it = new IommuDevice(desc.name, desc.fwnode, 2 ** MOCK_PASID_WIDTH);
      mockIommu = it;
      return it;
    },
  };
};
