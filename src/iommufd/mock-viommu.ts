/**
 * The mock driver's vIOMMU (selftest.c, mock_viommu_ops): the SELFTEST
 * type only; init with data copies `in_data` to `out_data` and publishes
 * a two-page mmap region whose first word is `in_data`; cache
 * invalidation clears the device cache slots of vDEVICEs; HW queues take
 * indexes 0 and 1, queue 1 depending on queue 0.
 */
import type { Device } from "../base/device.ts";
import { iommuIovaToPhys } from "../iommu/map.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { PAGE_SIZE } from "../pgtable/sizes.ts";
import { iommufdAllocMmap, iommufdDestroyMmap } from "./mmap.ts";
import { mockDev } from "./mock-dev.ts";
import { isMockDevice, mockViommuAllocDomainNested } from "./mock-nested.ts";
import type { IommufdCtx } from "./object.ts";
import {
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_TEST_HW_QUEUE_MAX,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  MOCK_DEV_CACHE_ID_MAX,
} from "./uapi.ts";
import { iommuCopyStructFromFullUserArray, iommuCopyStructFromUser, iommuCopyStructToUser, setU32, setU64, u32, type IommuUserData, type IommuUserDataArray } from "./user-data.ts";
import type { HwQueue } from "./hw-queue.ts";
import type { Viommu, ViommuOps } from "./viommu.ts";

/** sizeof(struct iommu_viommu_selftest): in_data, out_data, out_mmap_offset, out_mmap_length. */
const VIOMMU_SELFTEST_SIZE = 24;
/** offsetofend(struct iommu_viommu_selftest, out_data) */
const VIOMMU_SELFTEST_MIN = 8;
/** sizeof(struct iommu_viommu_invalidate_selftest): flags, vdev_id, cache_id. */
export const VIOMMU_INVALIDATE_SELFTEST_SIZE = 12;

/** struct mock_viommu's own fields. */
interface MockViommu {
  /** The two pages published for mmap (null without init data). */
  page: Uint32Array | null;
  mmapOffset: number;
  readonly hwQueues: (HwQueue | null)[];
}

function priv(v: Viommu): MockViommu {
  return v.priv as MockViommu;
}

// @kernel: mock_viommu_cache_invalidate
function cacheInvalidate(v: Viommu, array: IommuUserDataArray): 0 | KError {
  let done = 0;
  let rc: 0 | KError = 0;
  const cmds = iommuCopyStructFromFullUserArray(array, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, VIOMMU_INVALIDATE_SELFTEST_SIZE);
  if (isErr(cmds)) rc = cmds;
  else {
    for (const c of cmds) {
      const flags = u32(c, 0);
      const vdevId = u32(c, 4);
      const cacheId = u32(c, 8);
      if ((flags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) {
        rc = kerr("EOPNOTSUPP", `mock: unknown invalidation flags 0x${flags.toString(16)}`);
        break;
      }
      if (cacheId > MOCK_DEV_CACHE_ID_MAX) {
        rc = kerr("EINVAL", `mock: cache_id ${cacheId} is above ${MOCK_DEV_CACHE_ID_MAX}`);
        break;
      }
      const dev = v.findDev(vdevId);
      if (dev === null) {
        rc = kerr("EINVAL", `mock: no vDEVICE with virtual id 0x${vdevId.toString(16)} in vIOMMU ${v.id}`);
        break;
      }
      const cache = mockDev(dev).cache;
      if ((flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) cache.fill(0);
      else cache[cacheId] = 0;
      done++;
    }
  }
  array.entryNum = done;
  return rc;
}

const mockViommuOps: ViommuOps = {
  // @kernel: mock_viommu_destroy
  destroy(ictx, v) {
    const p = priv(v);
    if (p.page !== null) iommufdDestroyMmap(ictx, p.mmapOffset);
  },
  allocDomainNested: (v, flags, data) => mockViommuAllocDomainNested(v, v.hwpt.domain!, flags, data),
  cacheInvalidate,
  // @kernel: mock_viommu_get_hw_queue_size
  getHwQueueSize: (_v, type) => (type === IOMMU_HW_QUEUE_TYPE_SELFTEST ? 1 : 0),
  // @kernel: mock_hw_queue_init_phys
  hwQueueInitPhys(q, index, basePa) {
    const p = priv(q.viommu);
    if (index >= IOMMU_TEST_HW_QUEUE_MAX) return kerr("EINVAL", `mock: HW queue index ${index} is not below ${IOMMU_TEST_HW_QUEUE_MAX}`);
    if (p.hwQueues[index] !== null) return kerr("EEXIST", `mock: HW queue ${index} exists`);
    let prev: HwQueue | null = null;
    if (index > 0) {
      prev = p.hwQueues[index - 1]!;
      if (prev === null) return kerr("EIO", `mock: HW queue ${index - 1} must exist before queue ${index}`);
    }
    const want = iommuIovaToPhys(q.viommu.hwpt.domain!, q.baseAddr);
    if (basePa !== want) return kerr("EFAULT", `mock: the queue's physical address 0x${basePa.toString(16)} is not the parent's translation 0x${want.toString(16)}`);
    // @kernel: iommufd_hw_queue_depend
    if (prev !== null) prev.users++;
    p.hwQueues[index] = q;
    // @kernel: mock_hw_queue_destroy
    q.driverDestroy = () => {
      p.hwQueues[index] = null;
      if (prev !== null) prev.users--;
    };
    return 0;
  },
};

/** ops->get_viommu_size: non-zero for the SELFTEST type on a mock device. */
// @kernel: mock_get_viommu_size
export function mockGetViommuSize(dev: Device, type: number): number {
  return isMockDevice(dev) && type === IOMMU_VIOMMU_TYPE_SELFTEST ? 1 : 0;
}

/** ops->viommu_init */
// @kernel: mock_viommu_init
export function mockViommuInit(ictx: IommufdCtx, v: Viommu, userData: IommuUserData | null): 0 | KError {
  const p: MockViommu = { page: null, mmapOffset: 0, hwQueues: new Array<HwQueue | null>(IOMMU_TEST_HW_QUEUE_MAX).fill(null) };
  if (userData !== null) {
    const data = iommuCopyStructFromUser(userData, IOMMU_VIOMMU_TYPE_SELFTEST, VIOMMU_SELFTEST_SIZE, VIOMMU_SELFTEST_MIN);
    if (isErr(data)) return data;
    const page = new Uint32Array((2 * PAGE_SIZE) / 4);
    const inData = u32(data, 0);
    page[0] = inData;
    const offset = iommufdAllocMmap(ictx, v, 2 * PAGE_SIZE, page);
    setU32(data, 4, inData);
    setU64(data, 8, offset);
    setU64(data, 16, 2 * PAGE_SIZE);
    const rc = iommuCopyStructToUser(userData, IOMMU_VIOMMU_TYPE_SELFTEST, data, VIOMMU_SELFTEST_MIN);
    if (rc !== 0) {
      iommufdDestroyMmap(ictx, offset);
      return rc;
    }
    p.page = page;
    p.mmapOffset = offset;
  }
  v.priv = p;
  v.ops = mockViommuOps;
  return 0;
}
