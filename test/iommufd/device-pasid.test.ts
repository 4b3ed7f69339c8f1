/**
 * Port of FIXTURE(iommufd_device_pasid) of tools/testing/selftests/iommu/iommufd.c
 * (torvalds 80478a2b), its two variants: has_pasid (one PASID-capable mock
 * device) and no_pasid (a second device without PASID on the same IOAS).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IOMMU_TEST_OP_PASID_ATTACH, IOMMU_TEST_OP_PASID_CHECK_HWPT, IOMMU_TEST_OP_PASID_DETACH, IOMMU_TEST_OP_PASID_REPLACE } from "../../src/iommufd/selftest-nested.ts";
import { MOCK_FLAGS_DEVICE_PASID } from "../../src/iommufd/selftest.ts";
import { iommufdSnapshot } from "../../src/iommufd/snapshot.ts";
import { e, Fx, type R, U } from "./harness.ts";
import { closeFd, faultAlloc, hwptAlloc, hwptAllocNested, triggerIopf, viommuAlloc } from "./nested-harness.ts";

const VARIANTS: Record<string, { pasidCapable: boolean }> = {
  no_pasid: { pasidCapable: false },
  has_pasid: { pasidCapable: true },
};

for (const [vname, variant] of Object.entries(VARIANTS)) {
  describe(`iommufd_device_pasid/${vname}`, () => {
    let fx: Fx;
    let ioasId = 0;
    let stdevId = 0;
    let deviceId = 0;
    let noPasidStdevId = 0;
    const T = (name: string, fn: () => void) => it(`iommufd_device_pasid/${vname}: ${name}`, fn);

    beforeEach(() => {
      fx = new Fx();
      ioasId = fx.ioasAlloc();
      const [r, ids] = fx.mockDomain(ioasId, MOCK_FLAGS_DEVICE_PASID);
      expect(e(r)).toBe("ok");
      ({ stdev: stdevId, idev: deviceId } = ids);
      noPasidStdevId = 0;
      if (!variant.pasidCapable) {
        const [r2, ids2] = fx.mockDomain(ioasId);
        expect(e(r2)).toBe("ok");
        noPasidStdevId = ids2.stdev;
      }
    });
    afterEach(() => fx.teardown());

    const attach = (pasid: number, ptId: number, stdev = stdevId): R => fx.test({ op: IOMMU_TEST_OP_PASID_ATTACH, id: stdev, pasid_attach: { pasid, pt_id: ptId } });
    const replace = (pasid: number, ptId: number): R => fx.test({ op: IOMMU_TEST_OP_PASID_REPLACE, id: stdevId, pasid_replace: { pasid, pt_id: ptId } });
    const detach = (pasid: number): R => fx.test({ op: IOMMU_TEST_OP_PASID_DETACH, id: stdevId, pasid_detach: { pasid } });
    const check = (pasid: number, hwptId: number): R => fx.test({ op: IOMMU_TEST_OP_PASID_CHECK_HWPT, id: stdevId, pasid_check: { pasid, hwpt_id: hwptId } });
    const ok = (r: R | [R, number]) => expect(e(Array.isArray(r) ? r[0] : r)).toBe("ok");
    const got = (r: [R, number]): number => {
      ok(r);
      return r[1];
    };

    T("pasid_attach", () => {
      const PASID = U.IOMMU_HWPT_ALLOC_PASID;
      let pasid = 100;
      // Detaching a PASID never attached is not an error.
      ok(detach(pasid));
      const parent = got(hwptAlloc(fx, deviceId, ioasId, U.IOMMU_HWPT_ALLOC_NEST_PARENT));
      const n0 = got(hwptAllocNested(fx, deviceId, parent, PASID));
      const n1 = got(hwptAllocNested(fx, deviceId, parent, PASID));
      const [faultId, faultFd] = faultAlloc(fx);
      const iopfHwpt = got(hwptAllocNested(fx, deviceId, parent, U.IOMMU_HWPT_FAULT_ID_VALID | PASID, { faultId }));
      const viommuId = got(viommuAlloc(fx, deviceId, parent, U.IOMMU_VIOMMU_TYPE_SELFTEST));
      const n2 = got(hwptAllocNested(fx, deviceId, viommuId, PASID));
      expect(n2).toBeGreaterThan(0);
      const s2 = got(hwptAlloc(fx, deviceId, ioasId, PASID));

      // The RID on a HWPT that is not PASID-compatible: no PASID attaches.
      ok(fx.replace(stdevId, parent));
      let before = iommufdSnapshot(fx.fd);
      expect(e(attach(pasid, s2))).toBe("EINVAL");
      expect(iommufdSnapshot(fx.fd)).toEqual(before);
      // The RID on a compatible one: the PASID attaches, and the RID cannot go back.
      ok(fx.replace(stdevId, s2));
      ok(attach(pasid, n0));
      expect(e(fx.replace(stdevId, parent)[0])).toBe("EINVAL");
      ok(detach(pasid));
      ok(check(pasid, 0));

      if (!variant.pasidCapable) {
        // A PASID-compatible HWPT serves a device without PASID on its RID,
        ok(fx.replace(noPasidStdevId, n0));
        ok(fx.replace(noPasidStdevId, ioasId));
        // but that device takes no PASID, whatever the HWPT.
        expect(e(attach(pasid, parent, noPasidStdevId))).toBe("EINVAL");
        expect(e(attach(pasid, s2, noPasidStdevId))).toBe("EINVAL");
      }

      // Not PASID-compatible, and an IOAS: refused, nothing attached.
      before = iommufdSnapshot(fx.fd);
      expect(e(attach(pasid, parent))).toBe("EINVAL");
      ok(check(pasid, 0));
      expect(e(attach(pasid, ioasId))).toBe("EINVAL");
      ok(check(pasid, 0));
      expect(iommufdSnapshot(fx.fd)).toEqual(before);

      ok(attach(pasid, s2));
      ok(check(pasid, s2));
      // An attached PASID is not attached again: replace it.
      expect(e(attach(pasid, n0))).toBe("EBUSY");
      ok(detach(pasid));
      ok(check(pasid, 0));

      ok(attach(pasid, n0));
      ok(check(pasid, n0));
      expect(e(attach(pasid, n0))).toBe("EBUSY");
      ok(detach(pasid));

      // Replace
      pasid = 200;
      expect(e(replace(pasid, s2))).toBe("EINVAL");
      ok(attach(pasid, s2));
      ok(check(pasid, s2));
      expect(e(replace(pasid, ioasId))).toBe("EINVAL");
      ok(check(pasid, s2));
      ok(replace(pasid, n0));
      ok(check(pasid, n0));
      ok(replace(pasid, n1));
      ok(check(pasid, n1));
      ok(detach(pasid));

      // PASID 1024: the mock fails the second set_dev_pasid; the old domain stays.
      pasid = 1024;
      ok(attach(pasid, s2));
      ok(check(pasid, s2));
      before = iommufdSnapshot(fx.fd);
      expect(e(replace(pasid, n0))).toBe("ENOMEM");
      ok(check(pasid, s2));
      expect(iommufdSnapshot(fx.fd)).toEqual(before);
      ok(detach(pasid));

      // A PASID on an IOPF-capable HWPT takes the device's faults at that PASID.
      pasid = 2048;
      ok(attach(pasid, iopfHwpt));
      ok(check(pasid, iopfHwpt));
      triggerIopf(fx, deviceId, faultFd, pasid);
      ok(replace(pasid, s2));
      ok(check(pasid, s2));
      ok(detach(pasid));

      ok(fx.destroy(iopfHwpt));
      closeFd(fx, faultFd);
      ok(fx.destroy(faultId));
      ok(fx.replace(stdevId, ioasId));
    });
  });
}
