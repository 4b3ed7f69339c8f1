/**
 * Port of FIXTURE(iommufd_viommu) of tools/testing/selftests/iommu/iommufd.c
 * (torvalds 80478a2b, plus vdevice_tombstone of newer trees), its two
 * variants: no_viommu (no device at all) and mock_viommu (a mock device, a
 * NEST_PARENT HWPT, a SELFTEST vIOMMU on it and a nested HWPT on that).
 * Where the kernel's case SKIPs or does nothing for no_viommu, ours asserts
 * what the fixture leaves: no device, and the vIOMMU calls refused ENOENT.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { devIommuOps } from "../../src/iommu/dev-iommu.ts";
import { IommufdDevice } from "../../src/iommufd/device.ts";
import { iommufdMmap, iommufdMunmap } from "../../src/iommufd/mmap.ts";
import { IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT } from "../../src/iommufd/selftest.ts";
import { iommufdSnapshot } from "../../src/iommufd/snapshot.ts";
import { e, Fx, MOCK_APERTURE_START, PAGE_SIZE, U } from "./harness.ts";
import {
  checkDevCache,
  checkDevCacheAll,
  closeFd,
  faultAlloc,
  hwptAlloc,
  hwptAllocNested,
  hwQueueAlloc,
  invalidate,
  readVevents,
  triggerIopf,
  triggerVevents,
  u32Records,
  vdeviceAlloc,
  veventqAlloc,
  viommuAlloc,
} from "./nested-harness.ts";

const VARIANTS: Record<string, { viommu: boolean }> = {
  no_viommu: { viommu: false },
  mock_viommu: { viommu: true },
};

for (const [vname, variant] of Object.entries(VARIANTS)) {
  describe(`iommufd_viommu/${vname}`, () => {
    let fx: Fx;
    let ioasId = 0;
    let stdevId = 0;
    let hwptId = 0;
    let nestedHwptId = 0;
    let deviceId = 0;
    let viommuId = 0;
    const T = (name: string, fn: () => void) => it(`iommufd_viommu/${vname}: ${name}`, fn);
    const ok = (r: [0 | { errno: string }, ...unknown[]] | 0 | { errno: string }) => expect(e(Array.isArray(r) ? (r[0] as 0) : (r as 0))).toBe("ok");
    /** What the no_viommu variant's fixture leaves: the IOAS alone. */
    const onlyIoas = () => expect(iommufdSnapshot(fx.fd).objects.map((o) => o.type)).toEqual(["IOAS"]);

    beforeEach(() => {
      fx = new Fx();
      ioasId = fx.ioasAlloc();
      stdevId = hwptId = nestedHwptId = deviceId = viommuId = 0;
      expect(e(fx.test({ op: IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, id: 0, memory_limit: { limit: 65536 } }))).toBe("ok");
      if (variant.viommu) {
        const [r, ids] = fx.mockDomain(ioasId);
        expect(e(r)).toBe("ok");
        ({ stdev: stdevId, idev: deviceId } = ids);
        let rr: 0 | { errno: string };
        [rr, hwptId] = hwptAlloc(fx, deviceId, ioasId, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
        expect(e(rr as 0)).toBe("ok");
        [rr, viommuId] = viommuAlloc(fx, deviceId, hwptId, U.IOMMU_VIOMMU_TYPE_SELFTEST);
        expect(e(rr as 0)).toBe("ok");
        [rr, nestedHwptId] = hwptAllocNested(fx, deviceId, viommuId, 0);
        expect(e(rr as 0)).toBe("ok");
      }
    });
    afterEach(() => fx.teardown());

    T("viommu_auto_destroy", () => {
      const types = iommufdSnapshot(fx.fd).objects.map((o) => o.type);
      expect(types).toEqual(variant.viommu ? ["IOAS", "SELFTEST", "DEVICE", "HWPT_PAGING", "HWPT_PAGING", "VIOMMU", "HWPT_NESTED"] : ["IOAS"]);
    });

    T("viommu_negative_tests", () => {
      if (!deviceId) {
        expect(e(viommuAlloc(fx, deviceId, hwptId, U.IOMMU_VIOMMU_TYPE_SELFTEST)[0])).toBe("ENOENT");
        return;
      }
      const before = iommufdSnapshot(fx.fd);
      // An invalid HWPT (id 0)
      expect(e(viommuAlloc(fx, deviceId, 0, U.IOMMU_VIOMMU_TYPE_SELFTEST)[0])).toBe("ENOENT");
      // Not a nesting parent
      const [r, plain] = hwptAlloc(fx, deviceId, ioasId, 0);
      ok(r);
      expect(e(viommuAlloc(fx, deviceId, plain, U.IOMMU_VIOMMU_TYPE_SELFTEST)[0])).toBe("EINVAL");
      ok(fx.destroy(plain));
      // An unsupported type
      expect(e(viommuAlloc(fx, deviceId, hwptId, 0xdead)[0])).toBe("EOPNOTSUPP");
      expect(iommufdSnapshot(fx.fd)).toEqual(before);
      expect(e(fx.destroy(hwptId))).toBe("EBUSY");
      expect(e(fx.destroy(viommuId))).toBe("EBUSY");
    });

    T("viommu_alloc_nested_iopf", () => {
      if (!deviceId) {
        // The kernel's case does nothing without a device.
        onlyIoas();
        return;
      }
      const [faultId, faultFd] = faultAlloc(fx);
      const before = iommufdSnapshot(fx.fd);
      expect(e(hwptAllocNested(fx, deviceId, viommuId, U.IOMMU_HWPT_FAULT_ID_VALID, { faultId: U.UINT32_MAX })[0])).toBe("ENOENT");
      expect(e(hwptAllocNested(fx, deviceId, viommuId, U.IOMMU_HWPT_FAULT_ID_VALID | 2 ** 31, { faultId })[0])).toBe("EOPNOTSUPP");
      expect(iommufdSnapshot(fx.fd)).toEqual(before);
      const [r, iopfHwpt] = hwptAllocNested(fx, deviceId, viommuId, U.IOMMU_HWPT_FAULT_ID_VALID, { faultId });
      ok(r);
      // A vDEVICE must exist before attaching to a vIOMMU's nested HWPT
      expect(e(fx.replace(stdevId, iopfHwpt)[0])).toBe("ENOENT");
      const [r2] = vdeviceAlloc(fx, viommuId, deviceId, 0x99);
      ok(r2);
      ok(fx.replace(stdevId, iopfHwpt));
      expect(e(fx.destroy(iopfHwpt))).toBe("EBUSY");
      triggerIopf(fx, deviceId, faultFd);
      ok(fx.replace(stdevId, ioasId));
      ok(fx.destroy(iopfHwpt));
      closeFd(fx, faultFd);
      ok(fx.destroy(faultId));
    });

    T("viommu_alloc_with_data", () => {
      if (!deviceId) {
        // SKIP in the kernel: no device to allocate a vIOMMU for.
        expect(e(viommuAlloc(fx, deviceId, hwptId, U.IOMMU_VIOMMU_TYPE_SELFTEST)[0])).toBe("ENOENT");
        return;
      }
      // struct iommu_viommu_selftest {in_data, out_data, out_mmap_offset, out_mmap_length}
      const data = new Uint8Array(24);
      const dv = new DataView(data.buffer);
      dv.setUint32(0, 0xbeef, true);
      const [r, id] = viommuAlloc(fx, deviceId, hwptId, U.IOMMU_VIOMMU_TYPE_SELFTEST, data);
      ok(r);
      viommuId = id;
      expect(dv.getUint32(4, true)).toBe(0xbeef);
      const offset = Number(dv.getBigUint64(8, true));
      const length = Number(dv.getBigUint64(16, true));
      // The offset and the length cannot change
      const mmapErr = (len: number, off: number) => {
        const v = iommufdMmap(fx.fd, len, off);
        return "errno" in v ? v.errno : "ok";
      };
      expect(mmapErr(length, offset + PAGE_SIZE)).toBe("ENXIO");
      expect(mmapErr(length, offset + PAGE_SIZE * 2)).toBe("ENXIO");
      expect(mmapErr(length / 2, offset)).toBe("ENXIO");
      expect(mmapErr(length * 2, offset)).toBe("ENXIO");
      // mmap rounds the length up to whole pages before iommufd_fops_mmap compares it with the region's.
      expect(mmapErr(length + 1, offset)).toBe("ENXIO");
      const one = iommufdMmap(fx.fd, length - PAGE_SIZE + 1, offset);
      if ("errno" in one) throw new Error(one.message);
      iommufdMunmap(one);
      const vma = iommufdMmap(fx.fd, length, offset);
      if ("errno" in vma) throw new Error(vma.message);
      expect(vma.region.words[0]).toBe(0xbeef);
      // The owner of the mapped region is busy
      expect(e(fx.destroy(viommuId))).toBe("EBUSY");
      iommufdMunmap(vma);
    });

    T("vdevice_alloc", () => {
      if (!deviceId) {
        expect(e(vdeviceAlloc(fx, viommuId, deviceId, 0x99)[0])).toBe("ENOENT");
        return;
      }
      const seq = { prev: -1 };
      expect(e(fx.replace(stdevId, nestedHwptId)[0])).toBe("ENOENT");
      const [r, veventqId, veventqFd] = veventqAlloc(fx, viommuId, U.IOMMU_VEVENTQ_TYPE_SELFTEST);
      ok(r);
      expect(e(veventqAlloc(fx, viommuId, U.IOMMU_VEVENTQ_TYPE_SELFTEST)[0])).toBe("EEXIST");
      let [r2, vdevId] = vdeviceAlloc(fx, viommuId, deviceId, 0x99);
      ok(r2);
      ok(fx.replace(stdevId, nestedHwptId));
      ok(triggerVevents(fx, deviceId, 1));
      expect(readVevents(fx, veventqFd, 1, 0x99, seq)).toBe("ok");
      expect(e(vdeviceAlloc(fx, viommuId, deviceId, 0x99)[0])).toBe("EEXIST");
      ok(fx.replace(stdevId, ioasId));
      ok(fx.destroy(vdevId));
      // Again with 0x88
      [r2, vdevId] = vdeviceAlloc(fx, viommuId, deviceId, 0x88);
      ok(r2);
      ok(fx.replace(stdevId, nestedHwptId));
      // Three events overflow the depth-2 queue
      ok(triggerVevents(fx, deviceId, 3));
      expect(readVevents(fx, veventqFd, 3, 0x88, seq)).toBe("EOVERFLOW");
      // The overflow is gone after the read
      ok(triggerVevents(fx, deviceId, 1));
      expect(readVevents(fx, veventqFd, 1, 0x88, seq)).toBe("ok");
      closeFd(fx, veventqFd);
      ok(fx.replace(stdevId, ioasId));
      ok(fx.destroy(vdevId));
      ok(fx.destroy(veventqId));
    });

    T("vdevice_cache", () => {
      if (!deviceId) {
        // The kernel's case does nothing without a device.
        onlyIoas();
        return;
      }
      const INV = U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST;
      const DEF = U.IOMMU_TEST_DEV_CACHE_DEFAULT;
      const SZ = 12;
      // struct iommu_viommu_invalidate_selftest[2]: [flags, vdev_id, cache_id]
      const reqs = (a: number[], b: number[] = [0, 0, 0]) => u32Records([a, b]);
      const [r, vdevId] = vdeviceAlloc(fx, viommuId, deviceId, 0x99);
      ok(r);
      checkDevCacheAll(fx, deviceId, DEF);
      expect(invalidate(fx, viommuId, reqs([0, 0, 0]), INV, SZ, 0)).toEqual([0, 0]);
      expect(invalidate(fx, viommuId, reqs([0, 0, 0]), U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID, SZ, 1).map(e)).toEqual(["EINVAL", "ok"]);
      expect(invalidate(fx, viommuId, reqs([0, 0, 0]), INV, SZ + 1, 1).map(e)).toEqual(["EINVAL", "ok"]);
      expect(invalidate(fx, viommuId, reqs([0, 0, 0]), INV, 1, 1).map(e)).toEqual(["EINVAL", "ok"]);
      expect(invalidate(fx, viommuId, reqs([0xffffffff, 0x99, 0]), INV, SZ, 1).map(e)).toEqual(["EOPNOTSUPP", "ok"]);
      expect(invalidate(fx, viommuId, null, INV, SZ, 1).map(e)).toEqual(["EINVAL", "ok"]);
      expect(invalidate(fx, viommuId, reqs([0, 0x99, 0]), INV, 0, 1).map(e)).toEqual(["EINVAL", "ok"]);
      expect(invalidate(fx, viommuId, reqs([0, 0x99, 4]), INV, SZ, 1).map(e)).toEqual(["EINVAL", "ok"]);
      expect(invalidate(fx, viommuId, reqs([0, 0x9, 0]), INV, SZ, 1).map(e)).toEqual(["EINVAL", "ok"]);
      checkDevCacheAll(fx, deviceId, DEF);
      const slots = (zeroBelow: number) => [0, 1, 2, 3].map((i) => e(checkDevCache(fx, deviceId, i, i < zeroBelow ? 0 : DEF)));
      // The first entry is handled, the second refused (flags, then cache_id)
      expect(invalidate(fx, viommuId, reqs([0, 0x99, 0], [0xffffffff, 0x99, 1]), INV, SZ, 2)).toEqual([expect.objectContaining({ errno: "EOPNOTSUPP" }), 1]);
      expect(slots(1)).toEqual(["ok", "ok", "ok", "ok"]);
      expect(invalidate(fx, viommuId, reqs([0, 0x99, 0], [0, 0x99, 4]), INV, SZ, 2)).toEqual([expect.objectContaining({ errno: "EINVAL" }), 1]);
      expect(slots(1)).toEqual(["ok", "ok", "ok", "ok"]);
      expect(invalidate(fx, viommuId, reqs([0, 0x99, 1]), INV, SZ, 1)).toEqual([0, 1]);
      expect(slots(2)).toEqual(["ok", "ok", "ok", "ok"]);
      expect(invalidate(fx, viommuId, reqs([0, 0x99, 2], [0, 0x99, 3]), INV, SZ, 2)).toEqual([0, 2]);
      checkDevCacheAll(fx, deviceId, 0);
      expect(invalidate(fx, viommuId, reqs([U.IOMMU_TEST_INVALIDATE_FLAG_ALL, 0x99, 0]), INV, SZ, 1)).toEqual([0, 1]);
      checkDevCacheAll(fx, deviceId, 0);
      ok(fx.destroy(vdevId));
    });

    T("hw_queue", () => {
      if (!viommuId) {
        // SKIP in the kernel: there is no vIOMMU to take a queue.
        expect(e(hwQueueAlloc(fx, viommuId, U.IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, MOCK_APERTURE_START, PAGE_SIZE)[0])).toBe("ENOENT");
        return;
      }
      const SELF = U.IOMMU_HW_QUEUE_TYPE_SELFTEST;
      let before = iommufdSnapshot(fx.fd);
      expect(e(hwQueueAlloc(fx, viommuId, U.IOMMU_HW_QUEUE_TYPE_DEFAULT, 0, MOCK_APERTURE_START, PAGE_SIZE)[0])).toBe("EOPNOTSUPP");
      expect(e(hwQueueAlloc(fx, viommuId, SELF, 0, MOCK_APERTURE_START, 0)[0])).toBe("EINVAL");
      expect(e(hwQueueAlloc(fx, viommuId, SELF, 0, U.U64_MAX, PAGE_SIZE)[0])).toBe("EOVERFLOW");
      expect(e(hwQueueAlloc(fx, viommuId, SELF, 0, MOCK_APERTURE_START, PAGE_SIZE)[0])).toBe("ENOENT");
      expect(iommufdSnapshot(fx.fd)).toEqual(before);
      const [m1, iova] = fx.map(ioasId, fx.buffer, PAGE_SIZE);
      ok(m1);
      const [m2, iova2] = fx.map(ioasId, fx.buffer + PAGE_SIZE, PAGE_SIZE);
      ok(m2);
      // Index 1 and IOMMU_TEST_HW_QUEUE_MAX fail: queues start at 0
      before = iommufdSnapshot(fx.fd);
      expect(e(hwQueueAlloc(fx, viommuId, SELF, 1, iova, PAGE_SIZE)[0])).toBe("EIO");
      expect(e(hwQueueAlloc(fx, viommuId, SELF, U.IOMMU_TEST_HW_QUEUE_MAX, iova, PAGE_SIZE)[0])).toBe("EINVAL");
      expect(iommufdSnapshot(fx.fd)).toEqual(before);
      const [q0r, q0] = hwQueueAlloc(fx, viommuId, SELF, 0, iova, PAGE_SIZE);
      ok(q0r);
      before = iommufdSnapshot(fx.fd);
      expect(e(hwQueueAlloc(fx, viommuId, SELF, 0, iova, PAGE_SIZE)[0])).toBe("EEXIST");
      expect(iommufdSnapshot(fx.fd)).toEqual(before);
      // The queue's page is locked; the next one is not
      expect(e(fx.unmap(ioasId, iova, PAGE_SIZE)[0])).toBe("EBUSY");
      ok(fx.unmap(ioasId, iova2, PAGE_SIZE));
      // Index 1, unaligned
      const [q1r, q1] = hwQueueAlloc(fx, viommuId, SELF, 1, iova + PAGE_SIZE / 2, PAGE_SIZE / 2);
      ok(q1r);
      expect(e(fx.destroy(q0))).toBe("EBUSY");
      ok(fx.destroy(q1));
      ok(fx.destroy(q0));
      ok(fx.unmap(ioasId, iova, PAGE_SIZE));
    });

    T("vdevice_tombstone", () => {
      if (!deviceId) {
        // SKIP in the kernel: no device.
        expect(e(vdeviceAlloc(fx, viommuId, deviceId, 0x99)[0])).toBe("ENOENT");
        return;
      }
      const [r, vdevId] = vdeviceAlloc(fx, viommuId, deviceId, 0x99);
      ok(r);
      ok(fx.destroy(stdevId));
      expect(e(fx.destroy(vdevId))).toBe("ENOENT");
      // The id is not handed out again while the context lives.
      expect(fx.ioasAlloc()).not.toBe(vdevId);
      expect(iommufdSnapshot(fx.fd).objects.map((o) => o.id)).not.toContain(vdevId);
    });
  });
}

describe("iommufd_viommu: bad arguments", () => {
  it("every refused vIOMMU, vDEVICE, vEVENTQ, fault queue, HW queue and invalidation call leaves the context's snapshot as it was", () => {
    const fx = new Fx();
    const ioasId = fx.ioasAlloc();
    const [r, ids] = fx.mockDomain(ioasId);
    expect(e(r)).toBe("ok");
    const dev = ids.idev;
    const parent = hwptAlloc(fx, dev, ioasId, U.IOMMU_HWPT_ALLOC_NEST_PARENT)[1];
    const viommuId = viommuAlloc(fx, dev, parent, U.IOMMU_VIOMMU_TYPE_SELFTEST)[1];
    const [, , qfd] = veventqAlloc(fx, viommuId, U.IOMMU_VEVENTQ_TYPE_SELFTEST);
    const [, vdev] = vdeviceAlloc(fx, viommuId, dev, 0x99);
    expect(vdev).toBeGreaterThan(0);
    const before = iommufdSnapshot(fx.fd);
    const refused: [string, () => string][] = [
      ["VIOMMU_ALLOC flags", () => e(fx.ioctl(U.IOMMUFD_CMD_VIOMMU_ALLOC, { size: 40, flags: 1, type: U.IOMMU_VIOMMU_TYPE_SELFTEST, dev_id: dev, hwpt_id: parent, out_viommu_id: 0, data_len: 0, __reserved: 0, data_uptr: null }))],
      ["VIOMMU_ALLOC type DEFAULT", () => e(viommuAlloc(fx, dev, parent, U.IOMMU_VIOMMU_TYPE_DEFAULT)[0])],
      ["VIOMMU_ALLOC data too short", () => e(viommuAlloc(fx, dev, parent, U.IOMMU_VIOMMU_TYPE_SELFTEST, new Uint8Array(4))[0])],
      ["VIOMMU_ALLOC on the vIOMMU", () => e(viommuAlloc(fx, dev, viommuId, U.IOMMU_VIOMMU_TYPE_SELFTEST)[0])],
      ["VDEVICE_ALLOC second for the device", () => e(vdeviceAlloc(fx, viommuId, dev, 0x77)[0])],
      ["VDEVICE_ALLOC on a HWPT", () => e(vdeviceAlloc(fx, parent, dev, 0x77)[0])],
      ["VEVENTQ_ALLOC depth 0", () => e(fx.ioctl(U.IOMMUFD_CMD_VEVENTQ_ALLOC, { size: 32, flags: 0, viommu_id: viommuId, type: 7, veventq_depth: 0, out_veventq_id: 0, out_veventq_fd: 0, __reserved: 0 }))],
      ["VEVENTQ_ALLOC type DEFAULT", () => e(veventqAlloc(fx, viommuId, U.IOMMU_VEVENTQ_TYPE_DEFAULT)[0])],
      ["VEVENTQ_ALLOC second of a type", () => e(veventqAlloc(fx, viommuId, U.IOMMU_VEVENTQ_TYPE_SELFTEST)[0])],
      ["FAULT_QUEUE_ALLOC flags", () => e(fx.ioctl(U.IOMMUFD_CMD_FAULT_QUEUE_ALLOC, { size: 16, flags: 1, out_fault_id: 0, out_fault_fd: 0 }))],
      ["HWPT_ALLOC nested, a fault id that is no fault", () => e(hwptAllocNested(fx, dev, viommuId, U.IOMMU_HWPT_FAULT_ID_VALID, { faultId: viommuId })[0])],
      ["HWPT_ALLOC nested, data type NONE", () => e(hwptAllocNested(fx, dev, viommuId, 0, { dataType: U.IOMMU_HWPT_DATA_NONE, dataLen: 0 })[0])],
      ["HWPT_INVALIDATE __reserved", () => e(fx.ioctl(U.IOMMUFD_CMD_HWPT_INVALIDATE, { size: 32, hwpt_id: viommuId, data_uptr: null, data_type: 0, entry_len: 0, entry_num: 0, __reserved: 1 }))],
      ["HW_QUEUE_ALLOC unmapped", () => e(hwQueueAlloc(fx, viommuId, U.IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, MOCK_APERTURE_START, PAGE_SIZE)[0])],
      ["TRIGGER_VEVENT not attached through the vDEVICE", () => e(triggerVevents(fx, dev, 1))],
    ];
    const got = Object.fromEntries(refused.map(([name, call]) => {
      const r = call();
      expect(iommufdSnapshot(fx.fd), name).toEqual(before);
      return [name, r];
    }));
    expect(got).toEqual({
      "VIOMMU_ALLOC flags": "EOPNOTSUPP",
      "VIOMMU_ALLOC type DEFAULT": "EOPNOTSUPP",
      "VIOMMU_ALLOC data too short": "EINVAL",
      "VIOMMU_ALLOC on the vIOMMU": "ENOENT",
      "VDEVICE_ALLOC second for the device": "EEXIST",
      "VDEVICE_ALLOC on a HWPT": "ENOENT",
      "VEVENTQ_ALLOC depth 0": "EINVAL",
      "VEVENTQ_ALLOC type DEFAULT": "EOPNOTSUPP",
      "VEVENTQ_ALLOC second of a type": "EEXIST",
      "FAULT_QUEUE_ALLOC flags": "EOPNOTSUPP",
      "HWPT_ALLOC nested, a fault id that is no fault": "ENOENT",
      "HWPT_ALLOC nested, data type NONE": "EOPNOTSUPP",
      "HWPT_INVALIDATE __reserved": "EOPNOTSUPP",
      "HW_QUEUE_ALLOC unmapped": "ENOENT",
      "TRIGGER_VEVENT not attached through the vDEVICE": "ENOENT",
    });
    closeFd(fx, qfd);
    fx.teardown();
  });

  it("a nested HWPT on a parent is refused EOPNOTSUPP when the device's driver has no domain_alloc_nested", () => {
    const fx = new Fx();
    const ioasId = fx.ioasAlloc();
    const [r, ids] = fx.mockDomain(ioasId);
    expect(e(r)).toBe("ok");
    const parent = hwptAlloc(fx, ids.idev, ioasId, U.IOMMU_HWPT_ALLOC_NEST_PARENT)[1];
    const idev = fx.fd.get(ids.idev, null);
    expect(idev).toBeInstanceOf(IommufdDevice);
    const ops = devIommuOps((idev as IommufdDevice).dev)!;
    const own = ops.domainAllocNested;
    expect(own).toBeDefined();
    const before = iommufdSnapshot(fx.fd);
    // The same driver with the op taken away: the gate is the op, not the driver's name.
    delete ops.domainAllocNested;
    try {
      expect(e(hwptAllocNested(fx, ids.idev, parent, 0)[0])).toBe("EOPNOTSUPP");
      expect(iommufdSnapshot(fx.fd)).toEqual(before);
    } finally {
      ops.domainAllocNested = own;
    }
    const [rn, nested] = hwptAllocNested(fx, ids.idev, parent, 0);
    expect(e(rn)).toBe("ok");
    expect(e(fx.destroy(nested))).toBe("ok");
    fx.teardown();
  });
});
