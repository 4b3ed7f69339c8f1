/**
 * The helpers of iommufd_utils.h for nested HWPTs, fault queues, vIOMMUs,
 * vDEVICEs, vEVENTQs and HW queues, over the harness's Fx. The user-space
 * parts of the kernel's helpers (the fault answer in test_cmd_trigger_iopf,
 * the record checks of test_cmd_read_vevents) are done here as they are there.
 */
import { expect } from "vitest";
import { faultFdRead, faultFdWrite, IOMMU_HWPT_PGFAULT_SIZE } from "../../src/iommufd/fault.ts";
import { IOMMU_TEST_OP_DEV_CHECK_CACHE, IOMMU_TEST_OP_MD_CHECK_IOTLB, IOMMU_TEST_OP_TRIGGER_IOPF, IOMMU_TEST_OP_TRIGGER_VEVENT } from "../../src/iommufd/selftest-nested.ts";
import { iommufdEventqRelease } from "../../src/iommufd/eventq.ts";
import { veventqFdRead, IOMMUFD_VEVENT_HEADER_SIZE } from "../../src/iommufd/veventq.ts";
import { e, type Fx, type R, U } from "./harness.ts";

/** struct iommu_hwpt_selftest {iotlb} */
export function hwptSelftestData(iotlb = U.IOMMU_TEST_IOTLB_DEFAULT): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, iotlb, true);
  return b;
}

/** _test_cmd_hwpt_alloc: [result, out_hwpt_id]. */
export function hwptAlloc(fx: Fx, devId: number, ptId: number, flags: number, o: { dataType?: number; data?: Uint8Array | null; dataLen?: number; faultId?: number } = {}): [R, number] {
  const data = o.data === undefined ? null : o.data;
  const c: U.IommuHwptAlloc = {
    size: 48,
    flags,
    dev_id: devId,
    pt_id: ptId,
    out_hwpt_id: 0,
    __reserved: 0,
    data_type: o.dataType ?? U.IOMMU_HWPT_DATA_NONE,
    data_len: o.dataLen ?? (data?.length ?? 0),
    data_uptr: data,
    fault_id: o.faultId ?? 0,
    __reserved2: 0,
  };
  const r = fx.ioctl(U.IOMMUFD_CMD_HWPT_ALLOC, c);
  return [r, c.out_hwpt_id];
}

/** test_cmd_hwpt_alloc_nested with IOMMU_HWPT_DATA_SELFTEST data (or the type and length given). */
export function hwptAllocNested(fx: Fx, devId: number, ptId: number, flags: number, o: { dataType?: number; data?: Uint8Array | null; dataLen?: number; faultId?: number } = {}): [R, number] {
  const data = o.data === undefined ? hwptSelftestData() : o.data;
  return hwptAlloc(fx, devId, ptId, flags, { dataType: o.dataType ?? U.IOMMU_HWPT_DATA_SELFTEST, data, dataLen: o.dataLen ?? 4, faultId: o.faultId });
}

/** _test_cmd_hwpt_invalidate: [result, entry_num written back]. */
export function invalidate(fx: Fx, id: number, reqs: Uint8Array | null, dataType: number, entryLen: number, entryNum: number): [R, number] {
  const c: U.IommuHwptInvalidate = { size: 32, hwpt_id: id, data_uptr: reqs, data_type: dataType, entry_len: entryLen, entry_num: entryNum, __reserved: 0 };
  const r = fx.ioctl(U.IOMMUFD_CMD_HWPT_INVALIDATE, c);
  return [r, c.entry_num];
}

/** An array of u32 records, e.g. struct iommu_hwpt_invalidate_selftest[2] as [[flags, iotlb_id], ...]. */
export function u32Records(recs: number[][]): Uint8Array {
  const n = recs[0]!.length;
  const b = new Uint8Array(recs.length * n * 4);
  const v = new DataView(b.buffer);
  recs.forEach((r, i) => r.forEach((x, j) => v.setUint32((i * n + j) * 4, x >>> 0, true)));
  return b;
}

/** test_ioctl_fault_alloc: [fault_id, fault_fd], both non-zero. */
export function faultAlloc(fx: Fx): [number, number] {
  const c: U.IommuFaultAlloc = { size: 16, flags: 0, out_fault_id: 0, out_fault_fd: 0 };
  expect(e(fx.ioctl(U.IOMMUFD_CMD_FAULT_QUEUE_ALLOC, c))).toBe("ok");
  expect(c.out_fault_id).not.toBe(0);
  expect(c.out_fault_fd).not.toBe(0);
  return [c.out_fault_id, c.out_fault_fd];
}

export function closeFd(fx: Fx, fd: number): void {
  expect(e(iommufdEventqRelease(fx.fd, fd))).toBe("ok");
}

/** test_cmd_hwpt_check_iotlb */
export function checkIotlb(fx: Fx, hwptId: number, id: number, iotlb: number): R {
  return fx.test({ op: IOMMU_TEST_OP_MD_CHECK_IOTLB, id: hwptId, check_iotlb: { id, iotlb } });
}
export function checkIotlbAll(fx: Fx, hwptId: number, iotlb: number): void {
  for (let i = 0; i < 4; i++) expect(e(checkIotlb(fx, hwptId, i, iotlb)), `iotlb[${i}]`).toBe("ok");
}

/** test_cmd_dev_check_cache */
export function checkDevCache(fx: Fx, devId: number, id: number, cache: number): R {
  return fx.test({ op: IOMMU_TEST_OP_DEV_CHECK_CACHE, id: devId, check_dev_cache: { id, cache } });
}
export function checkDevCacheAll(fx: Fx, devId: number, cache: number): void {
  for (let i = 0; i < 4; i++) expect(e(checkDevCache(fx, devId, i, cache)), `cache[${i}]`).toBe("ok");
}

/** _test_cmd_trigger_iopf: report a fault, read one record from the fault fd, answer it with its cookie. */
export function triggerIopf(fx: Fx, devId: number, faultFd: number, pasid = 0x1): void {
  expect(e(fx.test({ op: IOMMU_TEST_OP_TRIGGER_IOPF, id: 0, trigger_iopf: { dev_id: devId, pasid, grpid: 0x2, perm: U.IOMMU_PGFAULT_PERM_READ | U.IOMMU_PGFAULT_PERM_WRITE, addr: 0xdeadbeaf } }))).toBe("ok");
  const recs = faultFdRead(fx.fd, faultFd, IOMMU_HWPT_PGFAULT_SIZE);
  expect(Array.isArray(recs) ? recs.length : recs.errno).toBe(1);
  const rec = (recs as U.IommuHwptPgfault[])[0]!;
  expect(rec.dev_id).toBe(devId);
  expect(rec.pasid).toBe(pasid);
  expect(rec.addr).toBe(0xdeadbeaf);
  // A code other than SUCCESS or INVALID is refused before the cookie is looked up, and the fault still waits.
  const bad = faultFdWrite(fx.fd, faultFd, [{ cookie: rec.cookie, code: 2 }]);
  expect(typeof bad === "number" ? bad : bad.errno).toBe("EINVAL");
  expect(faultFdWrite(fx.fd, faultFd, [{ cookie: rec.cookie, code: U.IOMMUFD_PAGE_RESP_SUCCESS }])).toBe(8);
}

/** _test_cmd_viommu_alloc: [result, out_viommu_id]. */
export function viommuAlloc(fx: Fx, devId: number, hwptId: number, type: number, data: Uint8Array | null = null): [R, number] {
  const c: U.IommuViommuAlloc = { size: 40, flags: 0, type, dev_id: devId, hwpt_id: hwptId, out_viommu_id: 0, data_len: data?.length ?? 0, __reserved: 0, data_uptr: data };
  const r = fx.ioctl(U.IOMMUFD_CMD_VIOMMU_ALLOC, c);
  return [r, c.out_viommu_id];
}

/** _test_cmd_vdevice_alloc: [result, out_vdevice_id]. */
export function vdeviceAlloc(fx: Fx, viommuId: number, devId: number, virtId: number): [R, number] {
  const c: U.IommuVdeviceAlloc = { size: 24, viommu_id: viommuId, dev_id: devId, out_vdevice_id: 0, virt_id: virtId };
  const r = fx.ioctl(U.IOMMUFD_CMD_VDEVICE_ALLOC, c);
  return [r, c.out_vdevice_id];
}

/** _test_cmd_veventq_alloc (depth 2): [result, id, fd]. */
export function veventqAlloc(fx: Fx, viommuId: number, type: number): [R, number, number] {
  const c: U.IommuVeventqAlloc = { size: 32, flags: 0, viommu_id: viommuId, type, veventq_depth: 2, out_veventq_id: 0, out_veventq_fd: 0, __reserved: 0 };
  const r = fx.ioctl(U.IOMMUFD_CMD_VEVENTQ_ALLOC, c);
  return [r, c.out_veventq_id, c.out_veventq_fd];
}

/** _test_cmd_trigger_vevents */
export function triggerVevents(fx: Fx, devId: number, n: number): R {
  let r: R = 0;
  while (n-- > 0) {
    r = fx.test({ op: IOMMU_TEST_OP_TRIGGER_VEVENT, id: 0, trigger_vevent: { dev_id: devId } });
    if (r !== 0) return r;
  }
  return r;
}

/**
 * _test_cmd_read_vevents: one read of n records (header and a 4-byte
 * virt_id each); a LOST_EVENTS flag or a sequence gap is EOVERFLOW, a
 * wrong virt_id EINVAL (both decided in user space, as the kernel's helper does).
 */
export function readVevents(fx: Fx, fd: number, n: number, virtId: number, seq: { prev: number }): string {
  const rec = IOMMUFD_VEVENT_HEADER_SIZE + 4;
  const data = veventqFdRead(fx.fd, fd, n * rec);
  if (!(data instanceof Uint8Array)) return data.errno;
  if (data.length === 0) return "EFAULT";
  const buf = new Uint8Array(n * rec);
  buf.set(data);
  const v = new DataView(buf.buffer);
  for (let i = 0; i < n; i++) {
    const flags = v.getUint32(i * rec, true);
    const sequence = v.getInt32(i * rec + 4, true);
    if ((flags & U.IOMMU_VEVENTQ_FLAG_LOST_EVENTS) !== 0 || sequence - seq.prev > 1) {
      seq.prev = sequence;
      return "EOVERFLOW";
    }
    seq.prev = sequence;
    // The kernel's helper reads the first record's payload every time.
    if (v.getUint32(IOMMUFD_VEVENT_HEADER_SIZE, true) !== virtId) return "EINVAL";
  }
  return "ok";
}

/** _test_cmd_hw_queue_alloc: [result, out_hw_queue_id]. */
export function hwQueueAlloc(fx: Fx, viommuId: number, type: number, index: number, iova: number, length: number): [R, number] {
  const c: U.IommuHwQueueAlloc = { size: 40, flags: 0, viommu_id: viommuId, type, index, out_hw_queue_id: 0, nesting_parent_iova: iova, length };
  const r = fx.ioctl(U.IOMMUFD_CMD_HW_QUEUE_ALLOC, c);
  return [r, c.out_hw_queue_id];
}
