/**
 * Port of tools/testing/selftests/iommu/iommufd_fail_nth.c: each body runs
 * once as is, then with the Nth failure point (object allocation and
 * lookup, HWPT allocation, the mock's map, reserved-region enforcement at
 * attach) forced to fail, for N = 1, 2, ... until a run consumes no
 * injected failure. Stricter than the kernel's test: every call that fails
 * must leave the context exactly as it was (snapshots equal), and the
 * teardown checks nothing stays pinned and no object is left.
 */
import { describe, expect, it } from "vitest";
import { iommufdSnapshot } from "../../src/iommufd/snapshot.ts";
import { IOMMU_TEST_OP_PASID_ATTACH, IOMMU_TEST_OP_PASID_DETACH, IOMMU_TEST_OP_PASID_REPLACE } from "../../src/iommufd/selftest-nested.ts";
import { MOCK_FLAGS_DEVICE_PASID, MOCK_ACCESS_RW_SLOW_PATH, MOCK_ACCESS_RW_WRITE, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT } from "../../src/iommufd/selftest.ts";
import { MemFile } from "../../src/iommufd/user-memory.ts";
import { iommufdEventqRelease } from "../../src/iommufd/eventq.ts";
import { e, Fx, MOCK_APERTURE_START, PAGE_SIZE, U, type R } from "./harness.ts";
import { hwptAlloc, hwptAllocNested, hwQueueAlloc, triggerVevents, vdeviceAlloc, veventqAlloc, viommuAlloc } from "./nested-harness.ts";

/** Thrown by a step whose call failed: the body stops there, as the kernel's returns -1. */
class Stop extends Error {}

type Step = (label: string, f: () => R | [R, ...unknown[]]) => unknown[];

function makeStep(fx: Fx): Step {
  return (label, f) => {
    const before = iommufdSnapshot(fx.fd);
    const out = f();
    const [r, ...rest] = Array.isArray(out) ? out : [out];
    if (r !== 0) {
      expect(iommufdSnapshot(fx.fd), `${label} failed with ${e(r)} and changed the state`).toEqual(before);
      throw new Stop(label);
    }
    return rest;
  };
}

const BUF = 2 * 1024 * 1024;
const RW = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;

const BODIES: Record<string, (fx: Fx, step: Step) => void> = {
  basic(fx, step) {
    const buf = fx.mm.mmap(BUF, { align: BUF });
    const [ioas] = step("ioas_alloc", () => {
      const c = { size: 12, flags: 0, out_ioas_id: 0 };
      return [fx.ioctl(U.IOMMUFD_CMD_IOAS_ALLOC, c), c.out_ioas_id];
    }) as [number];
    step("iova_ranges", () => fx.ioctl(U.IOMMUFD_CMD_IOAS_IOVA_RANGES, { size: 32, ioas_id: ioas, num_iovas: 4, __reserved: 0, allowed_iovas: [], out_iova_alignment: 0 }));
    step("allow_iovas", () => fx.allowIovas(ioas, [{ start: 16 * 1024, last: BUF + 16 * 1024 * 600 - 1 }]));
    const [iova] = step("map", () => fx.map(ioas, buf, BUF)) as [number];
    step("copy", () => fx.ioctl(U.IOMMUFD_CMD_IOAS_COPY, { size: 40, flags: RW, dst_ioas_id: ioas, src_ioas_id: ioas, length: 262144, dst_iova: 0, src_iova: iova }));
    step("unmap", () => fx.unmap(ioas, iova, BUF));
    // The second unmap is the failure path the kernel's body exercises.
    expect(e(fx.unmap(ioas, iova, BUF)[0])).toBe("ENOENT");
  },
  map_domain(fx, step) {
    const buf = fx.mm.mmap(BUF, { align: BUF });
    const ioas = step("ioas_alloc", () => { const c = { size: 12, flags: 0, out_ioas_id: 0 }; return [fx.ioctl(U.IOMMUFD_CMD_IOAS_ALLOC, c), c.out_ioas_id]; })[0] as number;
    step("memory_limit", () => fx.test({ op: IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, id: 0, memory_limit: { limit: 32 } }));
    const [ids] = step("mock_domain", () => fx.mockDomain(ioas)) as [{ stdev: number }];
    step("map", () => fx.map(ioas, buf, 262144, MOCK_APERTURE_START));
    step("destroy", () => fx.destroy(ids.stdev));
    step("mock_domain again", () => fx.mockDomain(ioas));
  },
  map_file_domain(fx, step) {
    const f = new MemFile(fx.phys, BUF);
    const fd = fx.mm.nextFd++;
    fx.mm.files.set(fd, f);
    const ioas = step("ioas_alloc", () => { const c = { size: 12, flags: 0, out_ioas_id: 0 }; return [fx.ioctl(U.IOMMUFD_CMD_IOAS_ALLOC, c), c.out_ioas_id]; })[0] as number;
    const [ids] = step("mock_domain", () => fx.mockDomain(ioas)) as [{ stdev: number }];
    step("map_file", () => fx.ioctl(U.IOMMUFD_CMD_IOAS_MAP_FILE, { size: 40, flags: RW | U.IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: ioas, fd, start: 0, length: 262144, iova: MOCK_APERTURE_START }));
    step("destroy", () => fx.destroy(ids.stdev));
    step("mock_domain again", () => fx.mockDomain(ioas));
  },
  map_two_domains(fx, step) {
    const buf = fx.mm.mmap(BUF, { align: BUF });
    const ioas = step("ioas_alloc", () => { const c = { size: 12, flags: 0, out_ioas_id: 0 }; return [fx.ioctl(U.IOMMUFD_CMD_IOAS_ALLOC, c), c.out_ioas_id]; })[0] as number;
    const [a] = step("mock_domain 1", () => fx.mockDomain(ioas)) as [{ stdev: number }];
    const [b] = step("mock_domain 2", () => fx.mockDomain(ioas)) as [{ stdev: number }];
    step("map", () => fx.map(ioas, buf, 262144, MOCK_APERTURE_START));
    step("destroy 1", () => fx.destroy(a.stdev));
    step("destroy 2", () => fx.destroy(b.stdev));
    step("mock_domain 1 again", () => fx.mockDomain(ioas));
    step("mock_domain 2 again", () => fx.mockDomain(ioas));
  },
  access_rw(fx, step) {
    const buf = fx.mm.mmap(BUF, { align: BUF });
    const tmp = fx.mm.mmap(32768);
    const ioas = step("ioas_alloc", () => { const c = { size: 12, flags: 0, out_ioas_id: 0 }; return [fx.ioctl(U.IOMMUFD_CMD_IOAS_ALLOC, c), c.out_ioas_id]; })[0] as number;
    step("map", () => fx.map(ioas, buf, 262144, MOCK_APERTURE_START));
    const [access] = step("create_access", () => fx.createAccess(ioas, 0)) as [number];
    step("read", () => fx.accessRw(access, MOCK_APERTURE_START, tmp, 16, 0));
    step("write", () => fx.accessRw(access, MOCK_APERTURE_START, tmp, 16, MOCK_ACCESS_RW_WRITE));
    step("slow read", () => fx.accessRw(access, MOCK_APERTURE_START, tmp, 16, MOCK_ACCESS_RW_SLOW_PATH));
    step("slow write", () => fx.accessRw(access, MOCK_APERTURE_START, tmp, 16, MOCK_ACCESS_RW_SLOW_PATH | MOCK_ACCESS_RW_WRITE));
    step("big read", () => fx.accessRw(access, MOCK_APERTURE_START, tmp, 32768, MOCK_ACCESS_RW_SLOW_PATH));
  },
  access_pin(fx, step) {
    const buf = fx.mm.mmap(BUF, { align: BUF });
    const ioas = step("ioas_alloc", () => { const c = { size: 12, flags: 0, out_ioas_id: 0 }; return [fx.ioctl(U.IOMMUFD_CMD_IOAS_ALLOC, c), c.out_ioas_id]; })[0] as number;
    step("map", () => fx.map(ioas, buf, BUF, MOCK_APERTURE_START));
    const [access] = step("create_access", () => fx.createAccess(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES)) as [number];
    const [item] = step("pin", () => fx.accessPin(access, MOCK_APERTURE_START, BUF, buf)) as [number];
    step("unpin", () => fx.accessUnpin(access, item));
    step("close", () => fx.closeAccess(access));
  },
  access_pin_domain(fx, step) {
    const buf = fx.mm.mmap(BUF, { align: BUF });
    const ioas = step("ioas_alloc", () => { const c = { size: 12, flags: 0, out_ioas_id: 0 }; return [fx.ioctl(U.IOMMUFD_CMD_IOAS_ALLOC, c), c.out_ioas_id]; })[0] as number;
    const [ids] = step("mock_domain", () => fx.mockDomain(ioas)) as [{ stdev: number }];
    step("map", () => fx.map(ioas, buf, BUF, MOCK_APERTURE_START));
    const [access] = step("create_access", () => fx.createAccess(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES)) as [number];
    const [item] = step("pin", () => fx.accessPin(access, MOCK_APERTURE_START, BUF, buf)) as [number];
    step("unpin", () => fx.accessUnpin(access, item));
    step("close", () => fx.closeAccess(access));
    step("destroy", () => fx.destroy(ids.stdev));
  },
  device(fx, step) {
    const alloc = () => { const c = { size: 12, flags: 0, out_ioas_id: 0 }; return [fx.ioctl(U.IOMMUFD_CMD_IOAS_ALLOC, c), c.out_ioas_id] as [R, number]; };
    const ioas = step("ioas_alloc", alloc)[0] as number;
    const ioas2 = step("ioas_alloc 2", alloc)[0] as number;
    step("map", () => fx.map(ioas, fx.buffer, PAGE_SIZE, MOCK_APERTURE_START));
    step("map 2", () => fx.map(ioas2, fx.buffer, PAGE_SIZE, MOCK_APERTURE_START));
    const [ids] = step("mock_domain", () => fx.mockDomain(ioas)) as [{ stdev: number; idev: number }];
    step("get_hw_info", () => fx.ioctl(U.IOMMUFD_CMD_GET_HW_INFO, { size: 40, flags: 0, dev_id: ids.idev, data_len: 8, data_uptr: new Uint8Array(8), out_data_type: 0, out_max_pasid_log2: 0, __reserved: 0, out_capabilities: 0 }));
    const [hwpt] = step("hwpt_alloc", () => {
      const c = { size: 48, flags: 0, dev_id: ids.idev, pt_id: ioas, out_hwpt_id: 0, __reserved: 0, data_type: 0, data_len: 0, data_uptr: null, fault_id: 0, __reserved2: 0 };
      return [fx.ioctl(U.IOMMUFD_CMD_HWPT_ALLOC, c), c.out_hwpt_id];
    }) as [number];
    step("replace to ioas 2", () => fx.replace(ids.stdev, ioas2));
    step("replace to hwpt", () => fx.replace(ids.stdev, hwpt));
  },
  // The newer kernel's "device" body's nested half: vIOMMU, vDEVICE, vEVENTQ, fault queue, nested HWPT, HW queue, vEVENT, PASID.
  viommu(fx, step) {
    const ioas = step("ioas_alloc", () => { const c = { size: 12, flags: 0, out_ioas_id: 0 }; return [fx.ioctl(U.IOMMUFD_CMD_IOAS_ALLOC, c), c.out_ioas_id]; })[0] as number;
    step("map", () => fx.map(ioas, fx.buffer, PAGE_SIZE, MOCK_APERTURE_START));
    const [ids] = step("mock_domain", () => fx.mockDomain(ioas, MOCK_FLAGS_DEVICE_PASID)) as [{ stdev: number; idev: number }];
    const [parent] = step("hwpt_alloc nest parent", () => hwptAlloc(fx, ids.idev, ioas, U.IOMMU_HWPT_ALLOC_NEST_PARENT | U.IOMMU_HWPT_ALLOC_PASID)) as [number];
    const [viommu] = step("viommu_alloc", () => viommuAlloc(fx, ids.idev, parent, U.IOMMU_VIOMMU_TYPE_SELFTEST)) as [number];
    step("vdevice_alloc", () => vdeviceAlloc(fx, viommu, ids.idev, 0x99));
    const [, qfd] = step("veventq_alloc", () => veventqAlloc(fx, viommu, U.IOMMU_VEVENTQ_TYPE_SELFTEST)) as [number, number];
    const [fault] = step("fault_alloc", () => {
      const c: U.IommuFaultAlloc = { size: 16, flags: 0, out_fault_id: 0, out_fault_fd: 0 };
      return [fx.ioctl(U.IOMMUFD_CMD_FAULT_QUEUE_ALLOC, c), c.out_fault_id, c.out_fault_fd];
    }) as [number];
    const [nested] = step("hwpt_alloc nested", () => hwptAllocNested(fx, ids.idev, viommu, U.IOMMU_HWPT_FAULT_ID_VALID | U.IOMMU_HWPT_ALLOC_PASID, { faultId: fault })) as [number];
    step("hw_queue_alloc", () => hwQueueAlloc(fx, viommu, U.IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, MOCK_APERTURE_START, PAGE_SIZE));
    step("replace to nested", () => fx.replace(ids.stdev, nested));
    step("trigger_vevent", () => triggerVevents(fx, ids.idev, 1));
    try {
      step("pasid attach", () => fx.test({ op: IOMMU_TEST_OP_PASID_ATTACH, id: ids.stdev, pasid_attach: { pasid: 100, pt_id: parent } }));
      step("pasid replace", () => fx.test({ op: IOMMU_TEST_OP_PASID_REPLACE, id: ids.stdev, pasid_replace: { pasid: 100, pt_id: nested } }));
    } finally {
      // As the kernel's fail_nth teardown does, a PASID left attached is detached (unbinding a device does not).
      const inject = fx.fd.failNth;
      fx.fd.failNth = null;
      expect(e(fx.test({ op: IOMMU_TEST_OP_PASID_DETACH, id: ids.stdev, pasid_detach: { pasid: 100 } }))).toBe("ok");
      fx.fd.failNth = inject;
    }
    expect(e(iommufdEventqRelease(fx.fd, qfd))).toBe("ok");
  },
  // Not in the kernel's file: PASID attach, replace and detach, whose failures must leave each PASID's HWPT as it was.
  pasid(fx, step) {
    const ioas = step("ioas_alloc", () => { const c = { size: 12, flags: 0, out_ioas_id: 0 }; return [fx.ioctl(U.IOMMUFD_CMD_IOAS_ALLOC, c), c.out_ioas_id]; })[0] as number;
    step("map", () => fx.map(ioas, fx.buffer, PAGE_SIZE, MOCK_APERTURE_START));
    const [ids] = step("mock_domain", () => fx.mockDomain(ioas, MOCK_FLAGS_DEVICE_PASID)) as [{ stdev: number; idev: number }];
    const alloc = () => {
      const c = { size: 48, flags: U.IOMMU_HWPT_ALLOC_PASID, dev_id: ids.idev, pt_id: ioas, out_hwpt_id: 0, __reserved: 0, data_type: 0, data_len: 0, data_uptr: null, fault_id: 0, __reserved2: 0 };
      return [fx.ioctl(U.IOMMUFD_CMD_HWPT_ALLOC, c), c.out_hwpt_id] as [R, number];
    };
    const [a] = step("hwpt_alloc pasid 1", alloc) as [number];
    const [b] = step("hwpt_alloc pasid 2", alloc) as [number];
    step("replace rid", () => fx.replace(ids.stdev, a));
    const detach = () => fx.test({ op: IOMMU_TEST_OP_PASID_DETACH, id: ids.stdev, pasid_detach: { pasid: 100 } });
    try {
      step("pasid attach", () => fx.test({ op: IOMMU_TEST_OP_PASID_ATTACH, id: ids.stdev, pasid_attach: { pasid: 100, pt_id: a } }));
      step("pasid replace", () => fx.test({ op: IOMMU_TEST_OP_PASID_REPLACE, id: ids.stdev, pasid_replace: { pasid: 100, pt_id: b } }));
    } finally {
      // As in the kernel, destroying the mock device detaches only its RID: a PASID left attached would leak.
      // The injected failure may be this detach's lookup (refused, nothing changed); it is one-shot.
      const before = iommufdSnapshot(fx.fd);
      if (detach() !== 0) {
        expect(iommufdSnapshot(fx.fd)).toEqual(before);
        expect(e(detach())).toBe("ok");
      }
    }
  },
};

/** Bodies that must reach (and fail at) more injection points than this. */
const LEAST_FAILURES: Partial<Record<string, number>> = { viommu: 10 };

describe("iommufd_fail_nth", () => {
  for (const [name, body] of Object.entries(BODIES)) {
    it(`basic_fail_nth: ${name}`, () => {
      // Once without injection: the body succeeds.
      {
        const fx = new Fx();
        body(fx, makeStep(fx));
        fx.teardown();
      }
      let n = 1;
      let failed = 0;
      for (; n < 1000; n++) {
        const fx = new Fx();
        fx.fd.failNth = { n, seen: 0 };
        let stopped = false;
        try {
          body(fx, makeStep(fx));
        } catch (err) {
          if (!(err instanceof Stop)) throw err;
          stopped = true;
          failed++;
        }
        const consumed = fx.fd.failNth.seen >= n;
        fx.fd.failNth = null;
        fx.teardown();
        if (!consumed) {
          expect(stopped).toBe(false);
          break;
        }
      }
      // Every injection point the body reaches was tried, and some made a call fail.
      expect(n).toBeGreaterThan(LEAST_FAILURES[name] ?? 1);
      expect(failed).toBeGreaterThan(LEAST_FAILURES[name] ?? 0);
    });
  }
});
