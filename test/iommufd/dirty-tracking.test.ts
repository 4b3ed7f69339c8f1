/**
 * Port of FIXTURE(iommufd_dirty_tracking) of tools/testing/selftests/iommu/iommufd.c:
 * dirty-tracking HWPTs on the mock, their enforcement, and dirty bitmaps
 * read back at several bitmap alignments, with and without NO_CLEAR.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IOMMU_HWPT_DIRTY_TRACKING_ENABLE, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, IOMMU_TEST_OP_DIRTY } from "../../src/iommufd/dirty.ts";
import { MOCK_FLAGS_DEVICE_HUGE_IOVA, MOCK_FLAGS_DEVICE_NO_DIRTY } from "../../src/iommufd/selftest.ts";
import { MOCK_HUGE_PAGE_SIZE } from "../../src/pgtable/mock.ts";
import { e, Fx, HUGEPAGE_SIZE, MOCK_APERTURE_START, MOCK_PAGE_SIZE, PAGE_SIZE, U } from "./harness.ts";

const VARIANTS: Record<string, { bufferSize: number; hugepages: boolean }> = {
  domain_dirty8k: { bufferSize: 8 * 1024, hugepages: false },
  domain_dirty16k: { bufferSize: 16 * 1024, hugepages: false },
  domain_dirty64k: { bufferSize: 64 * 1024, hugepages: false },
  domain_dirty128k: { bufferSize: 128 * 1024, hugepages: false },
  domain_dirty320k: { bufferSize: 320 * 1024, hugepages: false },
  domain_dirty64M: { bufferSize: 64 * 1024 * 1024, hugepages: false },
  domain_dirty64M_huge: { bufferSize: 64 * 1024 * 1024, hugepages: true },
  domain_dirty128M: { bufferSize: 128 * 1024 * 1024, hugepages: false },
  domain_dirty128M_huge: { bufferSize: 128 * 1024 * 1024, hugepages: true },
};

for (const [vname, variant] of Object.entries(VARIANTS)) {
  describe(`iommufd_dirty_tracking/${vname}`, () => {
    let fx: Fx;
    let ioasId = 0;
    let idevId = 0;
    let buffer = 0;
    const T = (name: string, fn: () => void) => it(`iommufd_dirty_tracking/${vname}: ${name}`, fn);
    const pageSize = MOCK_PAGE_SIZE;
    const bitmapBits = variant.bufferSize / MOCK_PAGE_SIZE;

    const hwptAlloc = (idev: number, pt: number, flags: number): [string, number] => {
      const c: U.IommuHwptAlloc = { size: 48, flags, dev_id: idev, pt_id: pt, out_hwpt_id: 0, __reserved: 0, data_type: 0, data_len: 0, data_uptr: null, fault_id: 0, __reserved2: 0 };
      return [e(fx.ioctl(U.IOMMUFD_CMD_HWPT_ALLOC, c)), c.out_hwpt_id];
    };
    const setDirty = (hwpt: number, enable: boolean) =>
      e(fx.ioctl(U.IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING, { size: 16, flags: enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0, hwpt_id: hwpt, __reserved: 0 }));
    const getBitmap = (hwpt: number, iova: number, length: number, data: Uint8Array, flags: number) =>
      e(fx.ioctl(U.IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP, { size: 40, hwpt_id: hwpt, flags, __reserved: 0, iova, length, page_size: pageSize, data }));

    beforeEach(() => {
      fx = new Fx();
      buffer = fx.mm.mmap(variant.bufferSize, { align: HUGEPAGE_SIZE, hugetlb: variant.hugepages });
      ioasId = fx.ioasAlloc();
      const [r, ids] = fx.mockDomain(ioasId, variant.hugepages ? MOCK_FLAGS_DEVICE_HUGE_IOVA : 0);
      expect(e(r)).toBe("ok");
      idevId = ids.idev;
    });
    afterEach(() => fx.teardown());

    T("enforce_dirty", () => {
      // Regular case
      const [r, hwpt] = hwptAlloc(idevId, ioasId, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
      expect(r).toBe("ok");
      const [r1, ids] = fx.mockDomain(hwpt);
      expect(e(r1)).toBe("ok");
      expect(e(fx.mockDomain(hwpt, MOCK_FLAGS_DEVICE_NO_DIRTY)[0])).toBe("EINVAL");
      expect(e(fx.destroy(ids.stdev))).toBe("ok");
      expect(e(fx.destroy(hwpt))).toBe("ok");
      // IOMMU device does not support dirty tracking
      const ioas = fx.ioasAlloc();
      const [r2, nd] = fx.mockDomain(ioas, MOCK_FLAGS_DEVICE_NO_DIRTY);
      expect(e(r2)).toBe("ok");
      expect(hwptAlloc(nd.idev, ioas, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING)[0]).toBe("EOPNOTSUPP");
      expect(e(fx.destroy(nd.stdev))).toBe("ok");
    });

    T("set_dirty_tracking", () => {
      const [r, hwpt] = hwptAlloc(idevId, ioasId, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
      expect(r).toBe("ok");
      const [r1, ids] = fx.mockDomain(hwpt);
      expect(e(r1)).toBe("ok");
      expect(setDirty(hwpt, true)).toBe("ok");
      expect(setDirty(hwpt, false)).toBe("ok");
      expect(e(fx.destroy(ids.stdev))).toBe("ok");
      expect(e(fx.destroy(hwpt))).toBe("ok");
    });

    T("device_dirty_capability", () => {
      const ioas = fx.ioasAlloc();
      const [r, ids] = fx.mockDomain(ioas);
      expect(e(r)).toBe("ok");
      const [r1, hwpt] = hwptAlloc(ids.idev, ioas, 0);
      expect(r1).toBe("ok");
      const c: U.IommuHwInfo = { size: 40, flags: 0, dev_id: ids.idev, data_len: 0, data_uptr: null, out_data_type: 0, out_max_pasid_log2: 0, __reserved: 0, out_capabilities: 0 };
      expect(e(fx.ioctl(U.IOMMUFD_CMD_GET_HW_INFO, c))).toBe("ok");
      expect(c.out_capabilities & U.IOMMU_HW_CAP_DIRTY_TRACKING).toBe(U.IOMMU_HW_CAP_DIRTY_TRACKING);
      expect(e(fx.destroy(hwpt))).toBe("ok");
      expect(e(fx.destroy(ids.stdev))).toBe("ok");
    });

    /** test_mock_dirty_bitmaps with 2 KiB PTEs: every other bit set, then read back (twice). */
    const mockDirtyBitmaps = (hwpt: number, length: number, iova: number, bitmap: Uint8Array, flags: number) => {
      const nbits = length / pageSize;
      // PTEs of 2 KiB, or 1 MiB for the huge variants: bits go in groups of 2 × npte.
      const npte = (variant.hugepages ? MOCK_HUGE_PAGE_SIZE : MOCK_PAGE_SIZE) / pageSize;
      const scratch = new Uint8Array(Math.ceil(nbits / 8));
      for (let i = 0; i < nbits; i += 2 * npte) scratch[i >> 3]! |= 1 << (i & 7);
      const c = { op: IOMMU_TEST_OP_DIRTY, id: hwpt, dirty: { iova, length, page_size: pageSize, bitmap: scratch, out_nr_dirty: 0 } };
      expect(e(fx.test(c))).toBe("ok");
      expect(c.dirty.out_nr_dirty).toBe(Math.max(1, nbits / (2 * npte)));
      const bit = (i: number) => (bitmap[i >> 3]! >> (i & 7)) & 1;
      bitmap.fill(0);
      expect(getBitmap(hwpt, iova, length, bitmap, flags)).toBe("ok");
      let bad = 0;
      for (let i = 0; i < nbits; i++) if (bit(i) !== (i % (2 * npte) < npte ? 1 : 0)) bad++;
      expect(bad).toBe(0);
      bitmap.fill(0);
      expect(getBitmap(hwpt, iova, length, bitmap, flags)).toBe("ok");
      const again = (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0;
      for (let i = 0; i < nbits; i++) if (bit(i) !== (again && i % (2 * npte) < npte ? 1 : 0)) bad++;
      expect(bad).toBe(0);
    };

    const getDirtyBitmap = (flags: number) => {
      const ioas = fx.ioasAlloc();
      expect(e(fx.map(ioas, buffer, variant.bufferSize, MOCK_APERTURE_START)[0])).toBe("ok");
      const [r, hwpt] = hwptAlloc(idevId, ioas, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
      expect(r).toBe("ok");
      const [r1, ids] = fx.mockDomain(hwpt);
      expect(e(r1)).toBe("ok");
      expect(setDirty(hwpt, true)).toBe("ok");
      // The bitmap with a page of slack, at three byte alignments
      const raw = new Uint8Array(Math.ceil(bitmapBits / 8) + PAGE_SIZE);
      for (const off of [0, MOCK_PAGE_SIZE, 0xff1]) {
        mockDirtyBitmaps(hwpt, variant.bufferSize, MOCK_APERTURE_START, raw.subarray(off, off + Math.ceil(bitmapBits / 8)), flags);
      }
      expect(e(fx.destroy(ids.stdev))).toBe("ok");
      expect(e(fx.destroy(hwpt))).toBe("ok");
    };

    T("get_dirty_bitmap", () => getDirtyBitmap(0));
    T("get_dirty_bitmap_no_clear", () => getDirtyBitmap(IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR));
  });
}
