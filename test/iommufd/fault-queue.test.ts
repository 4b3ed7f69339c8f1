/**
 * The fault queue's file and object lifetimes (eventq.c): closing the fd
 * drops only the file's reference (iommufd_eventq_fops_release), so what is
 * queued stays until IOMMU_DESTROY (iommufd_fault_destroy answers it); a
 * record's length is 0 (iommufd_compose_fault_message); an attachment
 * leaving its HWPT answers the faults that came through it, read or not
 * (iommufd_auto_response_faults).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { faultFdRead, IOMMU_HWPT_PGFAULT_SIZE, IommufdFault } from "../../src/iommufd/fault.ts";
import { IOMMU_TEST_OP_PASID_ATTACH, IOMMU_TEST_OP_PASID_DETACH, IOMMU_TEST_OP_TRIGGER_IOPF } from "../../src/iommufd/selftest-nested.ts";
import { MOCK_FLAGS_DEVICE_PASID } from "../../src/iommufd/selftest.ts";
import { e, Fx, U } from "./harness.ts";
import { closeFd, faultAlloc, hwptAlloc, hwptAllocNested } from "./nested-harness.ts";

describe("fault queue", () => {
  let fx: Fx;
  let stdevId = 0;
  let deviceId = 0;
  let faultId = 0;
  let faultFd = 0;
  let ioasId = 0;
  let iopfHwpt = 0;
  let pasidIopfHwpt = 0;
  const trigger = (addr: number, pasid = 0) =>
    fx.test({ op: IOMMU_TEST_OP_TRIGGER_IOPF, id: 0, trigger_iopf: { dev_id: deviceId, pasid, grpid: 0x2, perm: U.IOMMU_PGFAULT_PERM_READ, addr } });
  const fault = () => fx.fd.get(faultId, "FAULT") as IommufdFault;
  /** The queue's pending faults, read or not, as [pasid, addr]. */
  const pending = () => [...fault().deliver, ...fault().response.values()].flatMap((g) => g.faults.map((f) => [f.pasid, f.addr]));

  beforeEach(() => {
    fx = new Fx();
    ioasId = fx.ioasAlloc();
    const [r, ids] = fx.mockDomain(ioasId, MOCK_FLAGS_DEVICE_PASID);
    expect(e(r)).toBe("ok");
    ({ stdev: stdevId, idev: deviceId } = ids);
    const [r0, parent] = hwptAlloc(fx, deviceId, ioasId, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
    expect(e(r0)).toBe("ok");
    [faultId, faultFd] = faultAlloc(fx);
    const [r1, h] = hwptAllocNested(fx, deviceId, parent, U.IOMMU_HWPT_FAULT_ID_VALID | U.IOMMU_HWPT_ALLOC_PASID, { faultId });
    expect(e(r1)).toBe("ok");
    iopfHwpt = h;
    const [r2, h2] = hwptAllocNested(fx, deviceId, parent, U.IOMMU_HWPT_FAULT_ID_VALID | U.IOMMU_HWPT_ALLOC_PASID, { faultId });
    expect(e(r2)).toBe("ok");
    pasidIopfHwpt = h2;
    expect(e(fx.replace(stdevId, iopfHwpt)[0])).toBe("ok");
  });
  afterEach(() => fx.teardown());

  it("a record carries the device, the request and a length of 0", () => {
    expect(e(trigger(0x1000))).toBe("ok");
    const recs = faultFdRead(fx.fd, faultFd, IOMMU_HWPT_PGFAULT_SIZE);
    expect(recs).toEqual([{ flags: expect.any(Number), dev_id: deviceId, pasid: 0, grpid: 0x2, perm: U.IOMMU_PGFAULT_PERM_READ, addr: 0x1000, length: 0, cookie: 1 }]);
  });

  it("closing the fd keeps what is queued; destroying the queue answers it", () => {
    expect(e(trigger(0x1000))).toBe("ok");
    expect(e(trigger(0x2000))).toBe("ok");
    expect(faultFdRead(fx.fd, faultFd, IOMMU_HWPT_PGFAULT_SIZE)).toHaveLength(1);
    closeFd(fx, faultFd);
    expect(fault().snapshotDetail()).toEqual({ fd: -1, deliver: 1, response: [1] });
    // The HWPT still holds the queue: its file gone, the object stays busy through the HWPT only.
    expect(e(fx.destroy(faultId))).toBe("EBUSY");
    expect(e(fx.replace(stdevId, ioasId)[0])).toBe("ok");
    expect(e(fx.destroy(iopfHwpt))).toBe("ok");
    expect(e(fx.destroy(pasidIopfHwpt))).toBe("ok");
    const q = fault();
    expect(e(fx.destroy(faultId))).toBe("ok");
    expect(q.snapshotDetail()).toEqual({ fd: -1, deliver: 0, response: [] });
  });

  it("a PASID's detach answers the faults that came through it; the RID's replace answers the RID's", () => {
    expect(e(fx.test({ op: IOMMU_TEST_OP_PASID_ATTACH, id: stdevId, pasid_attach: { pasid: 100, pt_id: pasidIopfHwpt } }))).toBe("ok");
    expect(e(trigger(0x1000))).toBe("ok");
    expect(e(trigger(0x2000, 100))).toBe("ok");
    expect(e(trigger(0x3000))).toBe("ok");
    // One read, one not: both kinds are answered.
    expect(faultFdRead(fx.fd, faultFd, IOMMU_HWPT_PGFAULT_SIZE)).toHaveLength(1);
    expect(pending()).toEqual([[100, 0x2000], [0, 0x3000], [0, 0x1000]]);
    expect(e(fx.test({ op: IOMMU_TEST_OP_PASID_DETACH, id: stdevId, pasid_detach: { pasid: 100 } }))).toBe("ok");
    expect(pending()).toEqual([[0, 0x3000], [0, 0x1000]]);
    expect(e(fx.replace(stdevId, ioasId)[0])).toBe("ok");
    expect(pending()).toEqual([]);
    expect(faultFdRead(fx.fd, faultFd, IOMMU_HWPT_PGFAULT_SIZE)).toEqual([]);
  });

  it("the RID's detach by its last device answers the faults that came through it", () => {
    expect(e(trigger(0x1000))).toBe("ok");
    expect(pending()).toEqual([[0, 0x1000]]);
    expect(e(fx.destroy(stdevId))).toBe("ok");
    expect(pending()).toEqual([]);
  });
});
