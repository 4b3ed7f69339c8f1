/**
 * Port of FIXTURE(iommufd_ioas) of tools/testing/selftests/iommu/iommufd.c,
 * its four variants: no_domain, mock_domain (with a second, PASID-capable
 * device), two_mock_domain, mock_domain_limit.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { iommufdSnapshot } from "../../src/iommufd/snapshot.ts";
import { IOMMU_TEST_OP_DMABUF_GET, IOMMU_TEST_OP_DMABUF_REVOKE, IOMMU_TEST_OP_MD_CHECK_DMABUF } from "../../src/iommufd/dmabuf.ts";
import { MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, MOCK_ACCESS_RW_SLOW_PATH, MOCK_ACCESS_RW_WRITE, MOCK_FLAGS_DEVICE_PASID, IOMMU_TEST_OP_ADD_RESERVED, IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT } from "../../src/iommufd/selftest.ts";
import { BUFFER_SIZE, e, Fx, HUGEPAGE_SIZE, MOCK_APERTURE_LAST, MOCK_APERTURE_START, MOCK_PAGE_SIZE, PAGE_SIZE, U } from "./harness.ts";
import { checkDevCacheAll, checkIotlb, checkIotlbAll, closeFd, faultAlloc, hwptAlloc, hwptAllocNested, invalidate, triggerIopf, u32Records } from "./nested-harness.ts";

interface Variant {
  mockDomains: number;
  memoryLimit: number;
  pasidCapable: boolean;
}
const VARIANTS: Record<string, Variant> = {
  no_domain: { mockDomains: 0, memoryLimit: 65536, pasidCapable: false },
  mock_domain: { mockDomains: 1, memoryLimit: 65536, pasidCapable: true },
  two_mock_domain: { mockDomains: 2, memoryLimit: 65536, pasidCapable: false },
  mock_domain_limit: { mockDomains: 1, memoryLimit: 16, pasidCapable: false },
};

/** Lowest set bit. */
function lowBit(x: number): number {
  let b = 1;
  while (x % (b * 2) === 0) b *= 2;
  return b;
}

for (const [vname, variant] of Object.entries(VARIANTS)) {
  describe(`iommufd_ioas/${vname}`, () => {
    let fx: Fx;
    let ioasId = 0;
    let stdevId = 0;
    let hwptId = 0;
    let deviceId = 0;
    let devicePasidId = 0;
    let baseIova = 0;
    const T = (name: string, fn: () => void) => it(`iommufd_ioas/${vname}: ${name}`, fn);
    const dom = variant.mockDomains > 0;

    beforeEach(() => {
      fx = new Fx();
      ioasId = fx.ioasAlloc();
      stdevId = hwptId = deviceId = devicePasidId = baseIova = 0;
      expect(e(fx.test({ op: IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, id: 0, memory_limit: { limit: variant.memoryLimit } }))).toBe("ok");
      for (let i = 0; i < variant.mockDomains; i++) {
        const [r, ids] = fx.mockDomain(ioasId);
        expect(e(r)).toBe("ok");
        ({ stdev: stdevId, hwpt: hwptId, idev: deviceId } = ids);
        checkDevCacheAll(fx, deviceId, U.IOMMU_TEST_DEV_CACHE_DEFAULT);
        baseIova = MOCK_APERTURE_START;
      }
      if (variant.pasidCapable) {
        const [r, ids] = fx.mockDomain(ioasId, MOCK_FLAGS_DEVICE_PASID);
        expect(e(r)).toBe("ok");
        devicePasidId = ids.idev;
      }
    });
    afterEach(() => {
      expect(e(fx.test({ op: IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, id: 0, memory_limit: { limit: 65536 } }))).toBe("ok");
      fx.teardown();
    });

    const mapFixed = (va: number, len: number, iova: number) => expect(e(fx.map(ioasId, va, len, iova)[0])).toBe("ok");
    const mapAuto = (va: number, len: number): number => {
      const [r, iova] = fx.map(ioasId, va, len);
      expect(e(r)).toBe("ok");
      return iova;
    };
    const unmapOk = (iova: number, len: number) => expect(e(fx.unmap(ioasId, iova, len)[0])).toBe("ok");

    T("ioas_auto_destroy", () => {
      expect(fx.fd.get(ioasId, "IOAS")).toHaveProperty("type", "IOAS");
    });

    T("ioas_destroy", () => {
      expect(e(fx.destroy(ioasId))).toBe(dom ? "EBUSY" : "ok");
    });

    T("alloc_hwpt_nested", () => {
      const NEST = U.IOMMU_HWPT_ALLOC_NEST_PARENT;
      const DEF = U.IOMMU_TEST_IOTLB_DEFAULT;
      const INV = U.IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
      const nested = (pt: number, flags = 0, o = {}) => hwptAllocNested(fx, deviceId, pt, flags, o);
      if (!deviceId) {
        expect(e(hwptAlloc(fx, deviceId, ioasId, 0)[0])).toBe("ENOENT");
        expect(e(nested(0)[0])).toBe("ENOENT");
        expect(e(nested(0)[0])).toBe("ENOENT");
        expect(e(fx.replace(stdevId, 0)[0])).toBe("ENOENT");
        return;
      }
      // Negative tests
      expect(e(hwptAlloc(fx, ioasId, deviceId, 0)[0])).toBe("ENOENT");
      expect(e(hwptAlloc(fx, deviceId, deviceId, 0)[0])).toBe("EINVAL");
      expect(e(hwptAlloc(fx, deviceId, ioasId, NEST | U.IOMMU_HWPT_FAULT_ID_VALID)[0])).toBe("EOPNOTSUPP");
      const [r0, parent] = hwptAlloc(fx, deviceId, ioasId, NEST);
      expect(e(r0)).toBe("ok");
      const [r1, parentNotWork] = hwptAlloc(fx, deviceId, ioasId, 0);
      expect(e(r1)).toBe("ok");
      // Negative nested tests
      const before = iommufdSnapshot(fx.fd);
      expect(e(nested(parent, 0, { dataType: U.IOMMU_HWPT_DATA_NONE })[0])).toBe("EINVAL");
      expect(e(nested(parent, 0, { dataType: U.IOMMU_HWPT_DATA_SELFTEST + 1 })[0])).toBe("EOPNOTSUPP");
      expect(e(nested(parent, 0, { dataLen: 3 })[0])).toBe("EINVAL");
      expect(e(nested(parent, 0, { data: null })[0])).toBe("EFAULT");
      expect(e(nested(parent, NEST)[0])).toBe("EOPNOTSUPP");
      expect(e(nested(parentNotWork)[0])).toBe("EINVAL");
      expect(iommufdSnapshot(fx.fd)).toEqual(before);
      // Two nested HWPTs sharing one parent
      const [faultId, faultFd] = faultAlloc(fx);
      const [r2, n0] = nested(parent);
      expect(e(r2)).toBe("ok");
      const [r3, n1] = nested(parent);
      expect(e(r3)).toBe("ok");
      expect(e(nested(parent, U.IOMMU_HWPT_FAULT_ID_VALID, { faultId: U.UINT32_MAX })[0])).toBe("ENOENT");
      const [r4, iopfHwpt] = nested(parent, U.IOMMU_HWPT_FAULT_ID_VALID, { faultId });
      expect(e(r4)).toBe("ok");
      checkIotlbAll(fx, n0, DEF);
      checkIotlbAll(fx, n1, DEF);
      // A nested HWPT on a nested HWPT; the parent is busy
      expect(e(nested(n0)[0])).toBe("EINVAL");
      expect(e(fx.destroy(parent))).toBe("EBUSY");
      const reqs = (r: number[][]) => u32Records(r);
      const zero = reqs([[0, 0], [0, 0]]);
      // hwpt_invalidate does not take the parent
      expect(invalidate(fx, parent, zero, INV, 8, 1).map(e)).toEqual(["EINVAL", "ok"]);
      // The data type is checked with an empty array
      expect(invalidate(fx, n0, zero, INV, 8, 0).map(e)).toEqual(["ok", "ok"]);
      expect(invalidate(fx, n0, zero, U.IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID, 8, 1).map(e)).toEqual(["EINVAL", "ok"]);
      // Structure size sanity
      expect(invalidate(fx, n0, zero, INV, 9, 1).map(e)).toEqual(["EINVAL", "ok"]);
      expect(invalidate(fx, n0, zero, INV, 1, 1).map(e)).toEqual(["EINVAL", "ok"]);
      // Unknown flags, NULL data, entry_len 0, a bad iotlb_id
      expect(invalidate(fx, n0, reqs([[0xffffffff, 0], [0, 0]]), INV, 8, 1).map(e)).toEqual(["EOPNOTSUPP", "ok"]);
      expect(invalidate(fx, n0, null, INV, 8, 1).map(e)).toEqual(["EINVAL", "ok"]);
      expect(invalidate(fx, n0, zero, INV, 0, 1).map(e)).toEqual(["EINVAL", "ok"]);
      expect(invalidate(fx, n0, reqs([[0, 4], [0, 0]]), INV, 8, 1).map(e)).toEqual(["EINVAL", "ok"]);
      checkIotlbAll(fx, n0, DEF);
      // The first entry is handled, the second refused (flags, then iotlb_id)
      expect(invalidate(fx, n0, reqs([[0, 0], [0xffffffff, 1]]), INV, 8, 2)).toEqual([expect.objectContaining({ errno: "EOPNOTSUPP" }), 1]);
      expect([0, 1, 2, 3].map((i) => e(checkIotlb(fx, n0, i, i === 0 ? 0 : DEF)))).toEqual(["ok", "ok", "ok", "ok"]);
      expect(invalidate(fx, n0, reqs([[0, 0], [0, 4]]), INV, 8, 2)).toEqual([expect.objectContaining({ errno: "EINVAL" }), 1]);
      expect([0, 1, 2, 3].map((i) => e(checkIotlb(fx, n0, i, i === 0 ? 0 : DEF)))).toEqual(["ok", "ok", "ok", "ok"]);
      // The second entry, then the third and fourth
      expect(invalidate(fx, n0, reqs([[0, 1], [0, 0]]), INV, 8, 1)).toEqual([0, 1]);
      expect([0, 1, 2, 3].map((i) => e(checkIotlb(fx, n0, i, i < 2 ? 0 : DEF)))).toEqual(["ok", "ok", "ok", "ok"]);
      expect(invalidate(fx, n0, reqs([[0, 2], [0, 3]]), INV, 8, 2)).toEqual([0, 2]);
      checkIotlbAll(fx, n0, 0);
      // All entries of n1
      expect(invalidate(fx, n1, reqs([[U.IOMMU_TEST_INVALIDATE_FLAG_ALL, 0], [0, 0]]), INV, 8, 1)).toEqual([0, 1]);
      checkIotlbAll(fx, n1, 0);
      // Attached, a nested HWPT is busy
      expect(e(fx.replace(stdevId, n0)[0])).toBe("ok");
      expect(e(fx.destroy(n0))).toBe("EBUSY");
      expect(e(fx.replace(stdevId, n1)[0])).toBe("ok");
      expect(e(fx.destroy(n1))).toBe("EBUSY");
      expect(e(fx.destroy(n0))).toBe("ok");
      expect(e(fx.replace(stdevId, iopfHwpt)[0])).toBe("ok");
      expect(e(fx.destroy(iopfHwpt))).toBe("EBUSY");
      triggerIopf(fx, deviceId, faultFd);
      expect(e(fx.replace(stdevId, parent)[0])).toBe("ok");
      expect(e(fx.destroy(n1))).toBe("ok");
      expect(e(fx.destroy(iopfHwpt))).toBe("ok");
      expect(e(fx.replace(stdevId, ioasId)[0])).toBe("ok");
      expect(e(fx.destroy(parent))).toBe("ok");
      expect(e(fx.destroy(parentNotWork))).toBe("ok");
      closeFd(fx, faultFd);
      expect(e(fx.destroy(faultId))).toBe("ok");
    });

    T("hwpt_attach", () => {
      if (dom) {
        const [r, ids] = fx.mockDomain(hwptId);
        expect(e(r)).toBe("ok");
        expect(ids.hwpt).toBe(hwptId);
      } else {
        expect(e(fx.mockDomain(hwptId)[0])).toBe("ENOENT");
      }
    });

    T("ioas_area_destroy", () => {
      mapFixed(fx.buffer, PAGE_SIZE, baseIova);
      expect(e(fx.destroy(ioasId))).toBe(dom ? "EBUSY" : "ok");
    });

    T("ioas_area_auto_destroy", () => {
      for (let i = 0; i < 10; i++) mapFixed(fx.buffer, PAGE_SIZE, baseIova + i * PAGE_SIZE);
      // Each map is its own iopt_pages: with a domain the one page is pinned once per area.
      expect(fx.phys.pinnedTotal).toBe(dom ? 10 : 0);
    });

    T("get_hw_info", () => {
      const info = (devId: number, len: number, buf: Uint8Array | null): [string, U.IommuHwInfo] => {
        const c: U.IommuHwInfo = { size: 40, flags: 0, dev_id: devId, data_len: len, data_uptr: buf, out_data_type: 0, out_max_pasid_log2: 0, __reserved: 0, out_capabilities: 0 };
        return [e(fx.ioctl(U.IOMMUFD_CMD_GET_HW_INFO, c)), c];
      };
      if (dom) {
        // test_cmd_get_hw_info: type SELFTEST, data_len 8, flags 0, test_reg 0xdeadbeef, the tail zeroed.
        const check = (len: number) => {
          const buf = new Uint8Array(len + 4).fill(0xaa);
          const [r, c] = info(deviceId, len, len === 0 ? null : buf);
          expect(r).toBe("ok");
          expect(c.out_data_type).toBe(U.IOMMU_HW_INFO_TYPE_SELFTEST);
          expect(c.data_len).toBe(8);
          const dv = new DataView(buf.buffer);
          if (len >= 4) expect(dv.getUint32(0, true)).toBe(0);
          if (len >= 8) expect(dv.getUint32(4, true)).toBe(U.IOMMU_HW_INFO_SELFTEST_REGVAL);
          for (let i = 8; i < len; i++) expect(buf[i]).toBe(0);
          expect(buf[len]).toBe(0xaa);
          return c;
        };
        check(0);
        check(8);
        check(16);
        expect(check(4).out_max_pasid_log2).toBe(0);
        if (devicePasidId !== 0) expect(info(devicePasidId, 0, null)[1].out_max_pasid_log2).toBe(20);
      } else {
        expect(info(deviceId, 8, new Uint8Array(8))[0]).toBe("ENOENT");
        expect(info(deviceId, 16, new Uint8Array(16))[0]).toBe("ENOENT");
      }
    });

    T("area", () => {
      for (let i = 0; i < 10; i++) expect(e(fx.unmap(ioasId, baseIova + i * PAGE_SIZE, PAGE_SIZE)[0])).toBe("ENOENT");
      for (let i = 0; i < 10; i++) mapFixed(fx.buffer, PAGE_SIZE, baseIova + i * PAGE_SIZE);
      for (let i = 0; i < 10; i++) unmapOk(baseIova + i * PAGE_SIZE, PAGE_SIZE);
      // Split
      mapFixed(fx.buffer, PAGE_SIZE * 2, baseIova + 16 * PAGE_SIZE);
      expect(e(fx.unmap(ioasId, baseIova + 16 * PAGE_SIZE, PAGE_SIZE)[0])).toBe("ENOENT");
      expect(e(fx.unmap(ioasId, baseIova + 17 * PAGE_SIZE, PAGE_SIZE)[0])).toBe("ENOENT");
      // Over map
      for (const [start, n] of [[16, 2], [16, 1], [17, 1], [15, 2], [15, 3]] as const) {
        expect(e(fx.map(ioasId, fx.buffer, PAGE_SIZE * n, baseIova + start * PAGE_SIZE)[0])).toBe("EEXIST");
      }
      // Unmap all, twice
      expect(e(fx.unmap(ioasId, 0, U.U64_MAX)[0])).toBe("ok");
      expect(e(fx.unmap(ioasId, 0, U.U64_MAX)[0])).toBe("ok");
    });

    T("unmap_fully_contained_areas", () => {
      const base = baseIova + 4 * PAGE_SIZE;
      for (let i = 0; i < 4; i++) mapFixed(fx.buffer, 8 * PAGE_SIZE, base + i * 16 * PAGE_SIZE);
      expect(e(fx.unmap(ioasId, base - 4 * PAGE_SIZE, 8 * PAGE_SIZE)[0])).toBe("ENOENT");
      expect(e(fx.unmap(ioasId, base + 3 * 16 * PAGE_SIZE + 8 * PAGE_SIZE - 4 * PAGE_SIZE, 8 * PAGE_SIZE)[0])).toBe("ENOENT");
      const [r, len] = fx.unmap(ioasId, base - 4 * PAGE_SIZE, 3 * 16 * PAGE_SIZE + 8 * PAGE_SIZE + 4 * PAGE_SIZE);
      expect(e(r)).toBe("ok");
      expect(len).toBe(32 * PAGE_SIZE);
    });

    T("area_auto_iova", () => {
      const iovas: number[] = [];
      for (let i = 0; i < 10; i++) iovas.push(mapAuto(fx.buffer, PAGE_SIZE));
      for (const iova of iovas) unmapOk(iova, PAGE_SIZE);
      const va = dom ? fx.buffer : 2 ** 31;
      const checkAligned = (iova: number, len: number) => expect(iova % lowBit(len)).toBe(0);
      iovas.length = 0;
      for (let i = 1; i <= 10; i++) {
        const iova = mapAuto(va, PAGE_SIZE * i);
        checkAligned(iova, PAGE_SIZE * i);
        iovas.push(iova);
      }
      for (let i = 1; i <= 10; i++) unmapOk(iovas[i - 1]!, PAGE_SIZE * i);
      // Avoid a reserved region
      expect(e(fx.addReserved(ioasId, PAGE_SIZE * 4, PAGE_SIZE * 100))).toBe("ok");
      iovas.length = 0;
      for (let i = 1; i <= 10; i++) {
        const iova = mapAuto(va, PAGE_SIZE * i);
        checkAligned(iova, PAGE_SIZE * i);
        expect(iova > PAGE_SIZE * 4 && iova < PAGE_SIZE * 104).toBe(false);
        expect(iova + PAGE_SIZE * i > PAGE_SIZE * 4 && iova + PAGE_SIZE * i < PAGE_SIZE * 104).toBe(false);
        iovas.push(iova);
      }
      for (let i = 1; i <= 10; i++) unmapOk(iovas[i - 1]!, PAGE_SIZE * i);
      // Allowed region intersects with a reserved region
      expect(e(fx.allowIovas(ioasId, [{ start: PAGE_SIZE, last: PAGE_SIZE * 600 }]))).toBe("EADDRINUSE");
      // Allow an unreserved region
      const range = dom ? { start: MOCK_APERTURE_START + PAGE_SIZE, last: MOCK_APERTURE_START + PAGE_SIZE * 600 - 1 } : { start: PAGE_SIZE * 200, last: PAGE_SIZE * 600 - 1 };
      expect(e(fx.allowIovas(ioasId, [range]))).toBe("ok");
      iovas.length = 0;
      for (let i = 1; i <= 10; i++) {
        const iova = mapAuto(va, PAGE_SIZE * i);
        checkAligned(iova, PAGE_SIZE * i);
        expect(iova).toBeGreaterThanOrEqual(range.start);
        expect(iova).toBeLessThanOrEqual(range.last);
        expect(iova + PAGE_SIZE * i - 1).toBeLessThanOrEqual(range.last);
        iovas.push(iova);
      }
      for (let i = 1; i <= 10; i++) unmapOk(iovas[i - 1]!, PAGE_SIZE * i);
    });

    T("area_allowed", () => {
      const range = { start: baseIova, last: baseIova + PAGE_SIZE * 600 };
      expect(e(fx.allowIovas(ioasId, [range]))).toBe("ok");
      expect(e(fx.addReserved(ioasId, baseIova + PAGE_SIZE, PAGE_SIZE))).toBe("EADDRINUSE");
      expect(e(fx.allowIovas(ioasId, []))).toBe("ok");
      expect(e(fx.addReserved(ioasId, baseIova + PAGE_SIZE, PAGE_SIZE))).toBe("ok");
      expect(e(fx.allowIovas(ioasId, [range]))).toBe("EADDRINUSE");
    });

    T("copy_area", () => {
      mapFixed(fx.buffer, PAGE_SIZE, baseIova);
      const c: U.IommuIoasCopy = { size: 40, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_WRITEABLE, dst_ioas_id: ioasId, src_ioas_id: ioasId, length: PAGE_SIZE, dst_iova: baseIova + PAGE_SIZE, src_iova: baseIova };
      expect(e(fx.ioctl(U.IOMMUFD_CMD_IOAS_COPY, c))).toBe("ok");
      c.dst_ioas_id = fx.ioasAlloc();
      c.dst_iova = 0;
      expect(e(fx.ioctl(U.IOMMUFD_CMD_IOAS_COPY, c))).toBe("ok");
    });

    T("iova_ranges", () => {
      const ranges: U.IommuIovaRange[] = [{ start: 0, last: 0 }, { start: 0, last: 0 }];
      const c: U.IommuIoasIovaRanges = { size: 32, ioas_id: ioasId, num_iovas: BUFFER_SIZE / 16, __reserved: 0, allowed_iovas: ranges, out_iova_alignment: 0 };
      expect(e(fx.ioctl(U.IOMMUFD_CMD_IOAS_IOVA_RANGES, c))).toBe("ok");
      expect(c.num_iovas).toBe(1);
      if (!dom) {
        expect(ranges[0]).toEqual({ start: 0, last: U.SIZE_MAX });
        expect(c.out_iova_alignment).toBe(1);
      } else {
        expect(ranges[0]).toEqual({ start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST });
        expect(c.out_iova_alignment).toBe(MOCK_PAGE_SIZE);
      }
      // Buffer too small
      ranges[0] = { start: 0, last: 0 };
      ranges[1] = { start: 0, last: 0 };
      c.num_iovas = 0;
      expect(e(fx.ioctl(U.IOMMUFD_CMD_IOAS_IOVA_RANGES, c))).toBe("EMSGSIZE");
      expect(c.num_iovas).toBe(1);
      expect(ranges[0]).toEqual({ start: 0, last: 0 });
      // 2 ranges
      expect(e(fx.addReserved(ioasId, PAGE_SIZE, PAGE_SIZE))).toBe("ok");
      c.num_iovas = BUFFER_SIZE / 16;
      expect(e(fx.ioctl(U.IOMMUFD_CMD_IOAS_IOVA_RANGES, c))).toBe("ok");
      if (!dom) {
        expect(c.num_iovas).toBe(2);
        expect(ranges[0]).toEqual({ start: 0, last: PAGE_SIZE - 1 });
        expect(ranges[1]).toEqual({ start: PAGE_SIZE * 2, last: U.SIZE_MAX });
      } else {
        expect(c.num_iovas).toBe(1);
        expect(ranges[0]).toEqual({ start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST });
      }
      // Buffer too small
      ranges[0] = { start: 0, last: 0 };
      ranges[1] = { start: 0, last: 0 };
      c.num_iovas = 1;
      if (!dom) {
        expect(e(fx.ioctl(U.IOMMUFD_CMD_IOAS_IOVA_RANGES, c))).toBe("EMSGSIZE");
        expect(c.num_iovas).toBe(2);
        expect(ranges[0]).toEqual({ start: 0, last: PAGE_SIZE - 1 });
      } else {
        expect(e(fx.ioctl(U.IOMMUFD_CMD_IOAS_IOVA_RANGES, c))).toBe("ok");
        expect(c.num_iovas).toBe(1);
        expect(ranges[0]).toEqual({ start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST });
      }
      expect(ranges[1]).toEqual({ start: 0, last: 0 });
    });

    T("access_domain_destory", () => {
      const buf = fx.mm.mmap(2 * HUGEPAGE_SIZE, { hugetlb: true });
      mapFixed(buf, 2 * HUGEPAGE_SIZE, baseIova);
      const [r, accessFd] = fx.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
      expect(e(r)).toBe("ok");
      const [r1, item] = fx.accessPin(accessFd, baseIova + PAGE_SIZE, PAGE_SIZE, buf + PAGE_SIZE);
      expect(e(r1)).toBe("ok");
      // Destroying the device and its auto domain while pages are pinned: the unpin crosses a huge page
      if (stdevId !== 0) expect(e(fx.destroy(stdevId))).toBe("ok");
      expect(e(fx.accessUnpin(accessFd, item))).toBe("ok");
      expect(e(fx.closeAccess(accessFd))).toBe("ok");
      fx.mm.munmap(buf, 2 * HUGEPAGE_SIZE);
    });

    T("access_pin", () => {
      const [r, accessFd] = fx.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
      expect(e(r)).toBe("ok");
      for (let npages = 1; npages < BUFFER_SIZE / PAGE_SIZE; npages++) {
        mapFixed(fx.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
        const [r1, item] = fx.accessPin(accessFd, MOCK_APERTURE_START, npages * PAGE_SIZE, fx.buffer);
        expect(e(r1)).toBe("ok");
        expect(e(fx.accessUnpin(accessFd, item))).toBe("ok");
        // Double user
        const [r2, i1] = fx.accessPin(accessFd, MOCK_APERTURE_START, npages * PAGE_SIZE, fx.buffer);
        const [r3, i2] = fx.accessPin(accessFd, MOCK_APERTURE_START, npages * PAGE_SIZE, fx.buffer);
        expect([e(r2), e(r3)]).toEqual(["ok", "ok"]);
        expect(e(fx.accessUnpin(accessFd, i1))).toBe("ok");
        expect(e(fx.accessUnpin(accessFd, i2))).toBe("ok");
        // Add/remove a domain with a user
        const [r4, i3] = fx.accessPin(accessFd, MOCK_APERTURE_START, npages * PAGE_SIZE, fx.buffer);
        expect(e(r4)).toBe("ok");
        const [r5, ids] = fx.mockDomain(ioasId);
        expect(e(r5)).toBe("ok");
        expect(e(fx.checkMap(ids.hwpt, MOCK_APERTURE_START, BUFFER_SIZE, fx.buffer))).toBe("ok");
        expect(e(fx.destroy(ids.stdev))).toBe("ok");
        expect(e(fx.accessUnpin(accessFd, i3))).toBe("ok");
        unmapOk(MOCK_APERTURE_START, BUFFER_SIZE);
      }
      expect(e(fx.closeAccess(accessFd))).toBe("ok");
    });

    T("access_pin_unmap", () => {
      const [r, accessFd] = fx.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
      expect(e(r)).toBe("ok");
      mapFixed(fx.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
      const [r1, item] = fx.accessPin(accessFd, MOCK_APERTURE_START, BUFFER_SIZE, fx.buffer);
      expect(e(r1)).toBe("ok");
      // Causes a complicated unpin across a huge page boundary
      unmapOk(MOCK_APERTURE_START, BUFFER_SIZE);
      expect(e(fx.accessUnpin(accessFd, item))).toBe("ENOENT");
      expect(e(fx.closeAccess(accessFd))).toBe("ok");
    });

    /** check_access_rw: reads and writes of 1..63 bytes around a page boundary, then a whole-buffer read. */
    const checkAccessRw = (accessFd: number, iova: number, flags: number) => {
      const rnd = new Uint8Array(BUFFER_SIZE);
      for (let i = 0; i < rnd.length; i++) rnd[i] = (i * 7919 + 13) & 0xff;
      fx.mm.write(fx.buffer, rnd);
      const tmp = fx.mm.mmap(PAGE_SIZE);
      const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
      let bad = 0;
      for (let start = iova + PAGE_SIZE - 50; start !== iova + PAGE_SIZE + 50; start++) {
        for (let len = 1; len < 64; len++) {
          if (fx.accessRw(accessFd, start, tmp, len, flags) !== 0) bad++;
          if (!same(fx.mm.read(tmp, len), fx.mm.read(fx.buffer + (start - iova), len))) bad++;
          const w = new Uint8Array(len).map((_, i) => (start + i * 31) & 0xff);
          fx.mm.write(tmp, w);
          if (fx.accessRw(accessFd, start, tmp, len, flags | MOCK_ACCESS_RW_WRITE) !== 0) bad++;
          if (!same(fx.mm.read(fx.buffer + (start - iova), len), w)) bad++;
        }
      }
      expect(bad).toBe(0);
      const big = fx.mm.mmap(BUFFER_SIZE);
      expect(e(fx.accessRw(accessFd, iova, big, BUFFER_SIZE, flags))).toBe("ok");
      expect(fx.mm.read(big, BUFFER_SIZE)).toEqual(fx.mm.read(fx.buffer, BUFFER_SIZE));
    };

    T("access_rw", () => {
      const [r, accessFd] = fx.createAccess(ioasId, 0);
      expect(e(r)).toBe("ok");
      const iova = mapAuto(fx.buffer, BUFFER_SIZE);
      checkAccessRw(accessFd, iova, 0);
      checkAccessRw(accessFd, iova, MOCK_ACCESS_RW_SLOW_PATH);
      unmapOk(iova, BUFFER_SIZE);
      expect(e(fx.closeAccess(accessFd))).toBe("ok");
    });

    T("access_rw_unaligned", () => {
      const [r, accessFd] = fx.createAccess(ioasId, 0);
      expect(e(r)).toBe("ok");
      const iova = baseIova + MOCK_PAGE_SIZE;
      mapFixed(fx.buffer, BUFFER_SIZE, iova);
      checkAccessRw(accessFd, iova, 0);
      unmapOk(iova, BUFFER_SIZE);
      expect(e(fx.closeAccess(accessFd))).toBe("ok");
    });

    T("fork_gone", () => {
      const [r, accessFd] = fx.createAccess(ioasId, 0);
      expect(e(r)).toBe("ok");
      // The child maps the shared buffer through our fd, then exits.
      const child = fx.mm.fork(2);
      expect(e(fx.ioctlAs(child, U.IOMMUFD_CMD_IOAS_MAP, { size: 40, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, ioas_id: ioasId, __reserved: 0, user_va: fx.buffer, length: BUFFER_SIZE, iova: MOCK_APERTURE_START }))).toBe("ok");
      child.dead = true;
      if (dom) {
        // The pages were pinned in the child at map time: a new domain is filled from them.
        expect(e(fx.mockDomain(ioasId)[0])).toBe("ok");
        checkAccessRw(accessFd, MOCK_APERTURE_START, 0);
      } else {
        // Nothing was pinned; the new domain has to pin from a dead mm.
        expect(e(fx.mockDomain(ioasId)[0])).toBe("EFAULT");
      }
      expect(e(fx.closeAccess(accessFd))).toBe("ok");
    });

    T("fork_present", () => {
      const [r, accessFd] = fx.createAccess(ioasId, 0);
      expect(e(r)).toBe("ok");
      // The child maps the shared buffer through our fd and stays alive.
      const child = fx.mm.fork(2);
      expect(e(fx.ioctlAs(child, U.IOMMUFD_CMD_IOAS_MAP, { size: 40, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, ioas_id: ioasId, __reserved: 0, user_va: fx.buffer, length: BUFFER_SIZE, iova: MOCK_APERTURE_START }))).toBe("ok");
      expect(e(fx.mockDomain(ioasId)[0])).toBe("ok");
      checkAccessRw(accessFd, MOCK_APERTURE_START, 0);
      child.dead = true;
      expect(e(fx.closeAccess(accessFd))).toBe("ok");
    });

    T("reserved_overflow", () => {
      // A reservation reaching almost to the top: the auto-IOVA alignment math must not wrap.
      // The u64 length goes in exactly, as a bigint: a double would round 0xffffffffffff8001.
      const length = PAGE_SIZE === 4096 ? 0xffff_ffff_ffff_8001n : 0xffff_ffff_ffff_ffffn - 16n * BigInt(MOCK_PAGE_SIZE);
      const mapLen = PAGE_SIZE === 4096 ? 0x5000 : MOCK_PAGE_SIZE * 10;
      expect(e(fx.test({ op: IOMMU_TEST_OP_ADD_RESERVED, id: ioasId, add_reserved: { start: 6, length } }))).toBe("ok");
      expect(e(fx.map(ioasId, fx.buffer, mapLen)[0])).toBe("ENOSPC");
    });

    T("ioas_option_huge_pages", () => {
      const { IOMMU_OPTION_HUGE_PAGES: HP, IOMMU_OPTION_OP_GET: GET, IOMMU_OPTION_OP_SET: SET } = U;
      expect(fx.option(HP, GET, ioasId)).toEqual([0, 1]);
      expect(e(fx.option(HP, SET, ioasId, 0)[0])).toBe("ok");
      expect(fx.option(HP, GET, ioasId)).toEqual([0, 0]);
      expect(e(fx.option(HP, SET, ioasId, 2)[0])).toBe("EINVAL");
      expect(e(fx.option(HP, SET, ioasId, 1)[0])).toBe("ok");
    });

    T("ioas_iova_alloc", () => {
      for (let length = 1; length !== PAGE_SIZE * 2; length++) {
        const [r, iova] = fx.map(ioasId, fx.buffer, length);
        if (dom && length % MOCK_PAGE_SIZE !== 0) {
          expect(e(r)).toBe("EINVAL");
        } else {
          expect(e(r)).toBe("ok");
          unmapOk(iova, length);
        }
      }
    });

    T("ioas_align_change", () => {
      if (dom) return;
      const { IOMMU_OPTION_HUGE_PAGES: HP, IOMMU_OPTION_OP_SET: SET } = U;
      mapFixed(fx.buffer, PAGE_SIZE, MOCK_APERTURE_START);
      expect(e(fx.option(HP, SET, ioasId, 0)[0])).toBe("ok");
      expect(e(fx.map(ioasId, fx.buffer + MOCK_PAGE_SIZE, MOCK_PAGE_SIZE, MOCK_APERTURE_START + PAGE_SIZE)[0])).toBe("EINVAL");
      expect(e(fx.option(HP, SET, ioasId, 0)[0])).toBe("ok");
      expect(e(fx.option(HP, SET, ioasId, 1)[0])).toBe("ok");
      mapFixed(fx.buffer + MOCK_PAGE_SIZE, MOCK_PAGE_SIZE, MOCK_APERTURE_START + PAGE_SIZE);
      expect(e(fx.option(HP, SET, ioasId, 0)[0])).toBe("EADDRINUSE");
      unmapOk(MOCK_APERTURE_START + PAGE_SIZE, MOCK_PAGE_SIZE);
      unmapOk(MOCK_APERTURE_START, PAGE_SIZE);
    });

    T("copy_sweep", () => {
      const last = dom ? MOCK_APERTURE_START + BUFFER_SIZE - 1 : MOCK_APERTURE_START + BUFFER_SIZE - 2;
      mapFixed(fx.buffer, last - MOCK_APERTURE_START + 1, MOCK_APERTURE_START);
      const dst = fx.ioasAlloc();
      for (let src = MOCK_APERTURE_START - PAGE_SIZE; src <= last; src += 511) {
        const c: U.IommuIoasCopy = { size: 40, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_WRITEABLE, dst_ioas_id: dst, src_ioas_id: ioasId, length: MOCK_PAGE_SIZE, dst_iova: MOCK_APERTURE_START, src_iova: src };
        const r = fx.ioctl(U.IOMMUFD_CMD_IOAS_COPY, c);
        if (src < MOCK_APERTURE_START || src + MOCK_PAGE_SIZE - 1 > last) {
          expect(e(r)).toBe("ENOENT");
        } else {
          expect(e(r)).toBe("ok");
          expect(e(fx.unmap(dst, MOCK_APERTURE_START, MOCK_PAGE_SIZE)[0])).toBe("ok");
        }
      }
      expect(e(fx.destroy(dst))).toBe("ok");
    });

    /** test_cmd_get_dmabuf: the selftest exporter's dma-buf fd. */
    const getDmabuf = (length: number): number => {
      const c = { op: IOMMU_TEST_OP_DMABUF_GET, id: 0, dmabuf_get: { length, open_flags: 0, out_dmabuf_fd: -1 } };
      expect(e(fx.test(c))).toBe("ok");
      return c.dmabuf_get.out_dmabuf_fd;
    };
    const revokeDmabuf = (fd: number, revoked: boolean) => expect(e(fx.test({ op: IOMMU_TEST_OP_DMABUF_REVOKE, id: 0, dmabuf_revoke: { dmabuf_fd: fd, revoked: revoked ? 1 : 0 } }))).toBe("ok");
    /** test_ioctl_ioas_map_file (FIXED when iova is given): [errno or "ok", iova]. */
    const mapFile = (fd: number, start: number, length: number, iova?: number): [string, number] => {
      const c: U.IommuIoasMapFile = { size: 40, flags: U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE | (iova !== undefined ? U.IOMMU_IOAS_MAP_FIXED_IOVA : 0), ioas_id: ioasId, fd, start, length, iova: iova ?? 0 };
      return [e(fx.ioctl(U.IOMMUFD_CMD_IOAS_MAP_FILE, c)), c.iova];
    };
    /** test_cmd_check_dmabuf: the mock domain translates [iova, +length) to the dma-buf's bytes from offset. */
    const checkDmabuf = (fd: number, iova: number, length: number, offset: number) =>
      expect(e(fx.test({ op: IOMMU_TEST_OP_MD_CHECK_DMABUF, id: hwptId, check_dmabuf: { dmabuf_fd: fd, iova, length, offset } }))).toBe("ok");
    const closeDmabufFd = (fd: number) => fx.mm.files.delete(fd);

    T("dmabuf_simple", () => {
      const bufSize = PAGE_SIZE * 4;
      const dfd = getDmabuf(bufSize);
      expect(mapFile(dfd, 0, 0)[0]).toBe("EINVAL");
      expect(mapFile(dfd, bufSize, bufSize)[0]).toBe("EINVAL");
      expect(mapFile(dfd, 0, bufSize + 1)[0]).toBe("EINVAL");
      const [r, iova] = mapFile(dfd, 0, bufSize);
      expect(r).toBe("ok");
      if (dom) checkDmabuf(dfd, iova, bufSize, 0);
      // A dma-buf is the exporter's memory: nothing is pinned.
      expect(fx.phys.pinnedTotal).toBe(0);
      closeDmabufFd(dfd);
    });

    T("dmabuf_multi_page", () => {
      const mapCheck = (fd: number, start: number, length: number) => {
        const [r, iova] = mapFile(fd, start, length);
        expect(r).toBe("ok");
        if (dom) checkDmabuf(fd, iova, length, start);
      };
      // Single page
      let dfd = getDmabuf(PAGE_SIZE);
      mapCheck(dfd, 0, PAGE_SIZE);
      closeDmabufFd(dfd);
      // Many pages
      dfd = getDmabuf(PAGE_SIZE * 64);
      mapCheck(dfd, 0, PAGE_SIZE * 64);
      closeDmabufFd(dfd);
      // Sub-range from the middle
      dfd = getDmabuf(PAGE_SIZE * 16);
      mapCheck(dfd, PAGE_SIZE * 4, PAGE_SIZE * 8);
      closeDmabufFd(dfd);
      // Multiple sub-ranges from the same dma-buf
      dfd = getDmabuf(PAGE_SIZE * 16);
      mapCheck(dfd, 0, PAGE_SIZE * 4);
      mapCheck(dfd, PAGE_SIZE * 8, PAGE_SIZE * 4);
      closeDmabufFd(dfd);
    });

    T("dmabuf_revoke", () => {
      const bufSize = PAGE_SIZE * 4;
      const dfd = getDmabuf(bufSize);
      const [r, iova] = mapFile(dfd, 0, bufSize);
      expect(r).toBe("ok");
      revokeDmabuf(dfd, true);
      if (dom) {
        // The revoke took the area out of the domain; the IOVA stays allocated.
        expect(e(fx.test({ op: IOMMU_TEST_OP_MD_CHECK_DMABUF, id: hwptId, check_dmabuf: { dmabuf_fd: dfd, iova, length: bufSize, offset: 0 } }))).toBe("EINVAL");
        const c: U.IommuHwptAlloc = { size: 44, flags: 0, dev_id: deviceId, pt_id: ioasId, out_hwpt_id: 0, __reserved: 0, data_type: 0, data_len: 0, data_uptr: null, fault_id: 0, __reserved2: 0 };
        expect(e(fx.ioctl(U.IOMMUFD_CMD_HWPT_ALLOC, c))).toBe("ok");
      }
      expect(mapFile(dfd, 0, bufSize)[0]).toBe("ENODEV");
      revokeDmabuf(dfd, false);
      const [r2, iova2] = mapFile(dfd, 0, bufSize);
      expect(r2).toBe("ok");
      if (dom) checkDmabuf(dfd, iova2, bufSize, 0);
      // Restore the iova back
      unmapOk(iova, bufSize);
      expect(mapFile(dfd, 0, bufSize, iova)[0]).toBe("ok");
      if (dom) checkDmabuf(dfd, iova, bufSize, 0);
      closeDmabufFd(dfd);
      void devicePasidId;
      void deviceId;
      void stdevId;
    });
  });
}

// Not a kernel case: iopt_alloc_iova's hole search is exact where a double would round the bounds.
describe("an IOVA allocated next to a reservation that ends above 2^53 is exact", () => {
  it("starts at the first aligned byte after the reservation, not inside it", () => {
    const fx = new Fx();
    try {
      const ioasId = fx.ioasAlloc();
      // [4096, 0xfffffffffff00006]: a double rounds the end down to 0xfffffffffff00000.
      const start = PAGE_SIZE;
      const length = 0xffff_ffff_fff0_0006n - BigInt(start) + 1n;
      expect(e(fx.test({ op: IOMMU_TEST_OP_ADD_RESERVED, id: ioasId, add_reserved: { start, length } }))).toBe("ok");
      const [r, iova] = fx.map(ioasId, fx.buffer, PAGE_SIZE);
      expect(e(r)).toBe("ok");
      expect(BigInt(iova)).toBe(0xffff_ffff_fff0_1000n);
      // Nothing else fits below: the hole below 4096 is not allocated from.
      expect(e(fx.map(ioasId, fx.buffer, 0x100000)[0])).toBe("ENOSPC");
    } finally {
      fx.teardown();
    }
  });
});

// Not a kernel case: the dma-buf calls' refusals change nothing.
describe("refused dma-buf calls leave the context as it was", () => {
  it("DMABUF_GET of a bad length, MAP_FILE of a revoked dma-buf, MD_CHECK_DMABUF and DMABUF_REVOKE of a non-dma-buf fd", () => {
    const fx = new Fx();
    try {
      const ioasId = fx.ioasAlloc();
      const [r0, ids] = fx.mockDomain(ioasId);
      expect(e(r0)).toBe("ok");
      const get = { op: IOMMU_TEST_OP_DMABUF_GET, id: 0, dmabuf_get: { length: 4 * PAGE_SIZE, open_flags: 0, out_dmabuf_fd: -1 } };
      expect(e(fx.test(get))).toBe("ok");
      const dfd = get.dmabuf_get.out_dmabuf_fd;
      const c: U.IommuIoasMapFile = { size: 40, flags: U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, ioas_id: ioasId, fd: dfd, start: 0, length: 4 * PAGE_SIZE, iova: 0 };
      expect(e(fx.ioctl(U.IOMMUFD_CMD_IOAS_MAP_FILE, c))).toBe("ok");
      expect(e(fx.test({ op: IOMMU_TEST_OP_DMABUF_REVOKE, id: 0, dmabuf_revoke: { dmabuf_fd: dfd, revoked: 1 } }))).toBe("ok");
      const before = iommufdSnapshot(fx.fd);
      const files = [...fx.mm.files.keys()];
      for (const length of [0, PAGE_SIZE + 1, 513 * PAGE_SIZE]) {
        expect(e(fx.test({ op: IOMMU_TEST_OP_DMABUF_GET, id: 0, dmabuf_get: { length, open_flags: 0, out_dmabuf_fd: -1 } })), `length ${length}`).toBe("EINVAL");
      }
      expect(e(fx.ioctl(U.IOMMUFD_CMD_IOAS_MAP_FILE, { ...c, iova: 0 }))).toBe("ENODEV");
      expect(e(fx.test({ op: IOMMU_TEST_OP_MD_CHECK_DMABUF, id: ids.hwpt, check_dmabuf: { dmabuf_fd: dfd, iova: c.iova, length: 4 * PAGE_SIZE, offset: 0 } }))).toBe("EINVAL");
      expect(e(fx.test({ op: IOMMU_TEST_OP_DMABUF_REVOKE, id: 0, dmabuf_revoke: { dmabuf_fd: 999, revoked: 1 } }))).toBe("EBADF");
      // An access cannot read, write or pin a dma-buf's memory (iopt_pages_rw_access).
      const [ra, accessFd] = fx.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
      expect(e(ra)).toBe("ok");
      const before2 = iommufdSnapshot(fx.fd);
      expect(e(fx.accessRw(accessFd, c.iova, fx.buffer, 64, 0))).toBe("EINVAL");
      expect(e(fx.accessPin(accessFd, c.iova, PAGE_SIZE, fx.buffer)[0])).toBe("EINVAL");
      expect(iommufdSnapshot(fx.fd)).toEqual(before2);
      expect(e(fx.closeAccess(accessFd))).toBe("ok");
      expect(iommufdSnapshot(fx.fd)).toEqual(before);
      expect([...fx.mm.files.keys()]).toEqual(files);
      // The revoked area is still in the IOAS: IOAS_UNMAP takes it out.
      const [ru, unmapped] = fx.unmap(ioasId, c.iova, 4 * PAGE_SIZE);
      expect(e(ru)).toBe("ok");
      expect(unmapped).toBe(4 * PAGE_SIZE);
    } finally {
      fx.teardown();
    }
  });
});
