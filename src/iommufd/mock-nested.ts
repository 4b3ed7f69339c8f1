/**
 * The mock driver's nested domains (selftest.c): allocated on a mock
 * NEST_PARENT paging domain (through a device's ops or a mock vIOMMU) from
 * IOMMU_HWPT_DATA_SELFTEST data; four mock IOTLB slots start at the data's
 * `iotlb` and are cleared by cache_invalidate_user. The model keeps this
 * half of the mock driver next to iommufd, as the kernel keeps selftest.c
 * in drivers/iommu/iommufd; a device is the mock's when its ops are.
 */
import type { Device } from "../base/device.ts";
import { devIommuOps } from "../iommu/dev-iommu.ts";
import { IOMMU_DOMAIN_NESTED, IommuDomain } from "../iommu/domain.ts";
import type { IommuDomainOps } from "../iommu/ops.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { mockDev } from "./mock-dev.ts";
import {
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  MOCK_NESTED_DOMAIN_IOTLB_ID_MAX,
  MOCK_NESTED_DOMAIN_IOTLB_NUM,
} from "./uapi.ts";
import { iommuCopyStructFromUser, iommuCopyStructFromUserArray, u32, type IommuUserData, type IommuUserDataArray } from "./user-data.ts";

/** The mock driver's name (its iommu_ops). */
export const MOCK_DRIVER = "mock";
/** sizeof(struct iommu_hwpt_selftest) = offsetofend(iotlb). */
export const IOMMU_HWPT_SELFTEST_SIZE = 4;
/** sizeof(struct iommu_hwpt_invalidate_selftest) = offsetofend(iotlb_id). */
export const IOMMU_HWPT_INVALIDATE_SELFTEST_SIZE = 8;

/** What a vIOMMU-based nested domain needs of its vIOMMU: the virtual id of a device bound in it. */
export interface NestedViommu {
  vdevIdOf(dev: Device): number | null;
}

/** struct mock_iommu_domain_nested */
export interface MockNested {
  readonly iotlb: Uint32Array;
  readonly parent: IommuDomain;
  readonly viommu: NestedViommu | null;
}

export function isMockDevice(dev: Device): boolean {
  return devIommuOps(dev)?.name === MOCK_DRIVER;
}

/** A mock paging domain (what mock_domain_alloc_paging_flags made). */
export function isMockPaging(d: IommuDomain | null): boolean {
  return d !== null && d.pgtableFormat === "IOMMUFD_MOCK";
}

export function mockNested(d: IommuDomain | null): MockNested | null {
  return d !== null && d.ops === nestedOps ? (d.priv as MockNested) : null;
}

// @kernel: mock_domain_nop_attach
function nestedAttach(d: IommuDomain, dev: Device): 0 | KError {
  const n = d.priv as MockNested;
  const md = mockDev(dev);
  let vdevId = 0;
  if (n.viommu !== null) {
    const v = n.viommu.vdevIdOf(dev);
    if (v === null) return kerr("ENOENT", `mock: ${dev.name} has no vDEVICE in the nested domain's vIOMMU`);
    vdevId = v;
  }
  if (n.viommu !== md.viommu) {
    md.viommu = n.viommu;
    md.vdevId = vdevId;
  }
  return 0;
}

// @kernel: mock_domain_cache_invalidate_user
function cacheInvalidateUser(d: IommuDomain, array: IommuUserDataArray): 0 | KError {
  const n = d.priv as MockNested;
  let processed = 0;
  let rc: 0 | KError = 0;
  if (array.type !== IOMMU_HWPT_INVALIDATE_DATA_SELFTEST) {
    rc = kerr("EINVAL", `mock: invalidation data type 0x${array.type.toString(16)} is not IOMMU_HWPT_INVALIDATE_DATA_SELFTEST`);
  } else {
    for (let i = 0; i < array.entryNum; i++) {
      const inv = iommuCopyStructFromUserArray(array, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, i, IOMMU_HWPT_INVALIDATE_SELFTEST_SIZE, IOMMU_HWPT_INVALIDATE_SELFTEST_SIZE);
      if (isErr(inv)) {
        rc = inv;
        break;
      }
      const flags = u32(inv, 0);
      const id = u32(inv, 4);
      if ((flags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) {
        rc = kerr("EOPNOTSUPP", `mock: unknown invalidation flags 0x${flags.toString(16)} in entry ${i}`);
        break;
      }
      if (id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX) {
        rc = kerr("EINVAL", `mock: iotlb_id ${id} of entry ${i} is above ${MOCK_NESTED_DOMAIN_IOTLB_ID_MAX}`);
        break;
      }
      if ((flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) n.iotlb.fill(0);
      else n.iotlb[id] = 0;
      processed++;
    }
  }
  array.entryNum = processed;
  return rc;
}

/**
 * mock_domain_nop_attach of the mock's other domains (paging, blocking),
 * whose ops live in drivers/iommufd-mock.ts and call this through the
 * hook iommufdEnv installs: the device records no vIOMMU.
 */
// @kernel: mock_domain_nop_attach (a domain that is not a vIOMMU's nested one clears mdev->viommu)
export function mockNopAttach(dev: Device): void {
  const md = mockDev(dev);
  md.viommu = null;
  md.vdevId = 0;
}

/** domain_nested_ops: attach, PASID attach (a nop), user cache invalidation. */
const nestedOps: IommuDomainOps & { cacheInvalidateUser(d: IommuDomain, a: IommuUserDataArray): 0 | KError } = {
  attachDev: (d, dev) => nestedAttach(d, dev),
  // @kernel: mock_domain_set_dev_pasid_nop (the mock's one op for every domain: the parent's carries it)
  setDevPasid: (d, dev, pasid, old) => (d.priv as MockNested).parent.ops.setDevPasid?.(d, dev, pasid, old) ?? 0,
  cacheInvalidateUser,
};

/** The domain's cache_invalidate_user op, null when it has none. */
export function domainCacheInvalidateUser(d: IommuDomain): ((d: IommuDomain, a: IommuUserDataArray) => 0 | KError) | null {
  return d.ops === nestedOps ? nestedOps.cacheInvalidateUser : null;
}

// @kernel: __mock_domain_alloc_nested
function allocNested(userData: IommuUserData, parent: IommuDomain, viommu: NestedViommu | null): IommuDomain | KError {
  if (userData.type !== IOMMU_HWPT_DATA_SELFTEST) return kerr("EOPNOTSUPP", `mock: nested data type 0x${userData.type.toString(16)} is not IOMMU_HWPT_DATA_SELFTEST`);
  const cfg = iommuCopyStructFromUser(userData, IOMMU_HWPT_DATA_SELFTEST, IOMMU_HWPT_SELFTEST_SIZE, IOMMU_HWPT_SELFTEST_SIZE);
  if (isErr(cfg)) return cfg;
  const priv: MockNested = { iotlb: new Uint32Array(MOCK_NESTED_DOMAIN_IOTLB_NUM).fill(u32(cfg, 0)), parent, viommu };
  return new IommuDomain(IOMMU_DOMAIN_NESTED, nestedOps, false, parent.iommu, [], undefined, priv);
}

/** The body of the mock's ops->domain_alloc_nested (the machine installs it in the driver's mockNestedHooks). */
// @kernel: mock_domain_alloc_nested
export function mockDomainAllocNested(dev: Device, parent: IommuDomain, flags: number, userData: IommuUserData): IommuDomain | KError {
  if ((flags & ~IOMMU_HWPT_ALLOC_PASID) !== 0) return kerr("EOPNOTSUPP", `mock: nested flags 0x${flags.toString(16)}`);
  if (!isMockPaging(parent)) return kerr("EINVAL", `mock: ${parent} is not a mock paging domain`);
  return allocNested(userData, parent, null);
}

/** The mock vIOMMU's alloc_domain_nested. */
// @kernel: mock_viommu_alloc_domain_nested
export function mockViommuAllocDomainNested(viommu: NestedViommu, parent: IommuDomain, flags: number, userData: IommuUserData): IommuDomain | KError {
  if ((flags & ~IOMMU_HWPT_ALLOC_PASID) !== 0) return kerr("EOPNOTSUPP", `mock: nested flags 0x${flags.toString(16)}`);
  return allocNested(userData, parent, viommu);
}
