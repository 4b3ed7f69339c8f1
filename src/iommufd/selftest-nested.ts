/**
 * The selftest commands of nested translation and vIOMMUs (selftest.c):
 * MD_CHECK_IOTLB reads a mock nested domain's IOTLB slot, DEV_CHECK_CACHE
 * a mock device's cache slot, TRIGGER_IOPF reports a page request against
 * a device, TRIGGER_VEVENT reports a SELFTEST vEVENT for the vDEVICE the
 * device is attached through.
 */
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { getDevice, type IommufdDevice } from "./device.ts";
import { IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE, IOMMU_FAULT_PAGE_REQUEST_PASID_VALID, iommufdFaultIopfHandler } from "./fault.ts";
import { Hwpt } from "./hw-pagetable.ts";
import { mockDev } from "./mock-dev.ts";
import { mockNested } from "./mock-nested.ts";
import { HwptNested } from "./nested.ts";
import type { IommufdCtx } from "./object.ts";
import { iommufdDevicePasidAttach, iommufdDevicePasidDetach, iommufdDevicePasidReplace, pasidHwpt } from "./pasid.ts";
import { IOMMU_VEVENTQ_TYPE_SELFTEST, MOCK_DEV_CACHE_ID_MAX, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX } from "./uapi.ts";
import { setU32 } from "./user-data.ts";
import { iommufdViommuReportEvent } from "./veventq.ts";
import type { Viommu } from "./viommu.ts";

export const IOMMU_TEST_OP_MD_CHECK_IOTLB = 14;
export const IOMMU_TEST_OP_TRIGGER_IOPF = 15;
export const IOMMU_TEST_OP_DEV_CHECK_CACHE = 16;
export const IOMMU_TEST_OP_TRIGGER_VEVENT = 17;
export const IOMMU_TEST_OP_PASID_ATTACH = 18;
export const IOMMU_TEST_OP_PASID_REPLACE = 19;
export const IOMMU_TEST_OP_PASID_DETACH = 20;
export const IOMMU_TEST_OP_PASID_CHECK_HWPT = 21;

// @kernel: iommufd_test_md_check_iotlb
export function testMdCheckIotlb(ictx: IommufdCtx, hwptId: number, c: { id: number; iotlb: number }): 0 | KError {
  const o = ictx.get(hwptId, "HWPT_NESTED");
  if (isErr(o)) return o;
  const n = mockNested((o as HwptNested).domain);
  if (n === null) return kerr("EINVAL", `HWPT ${hwptId} is not a mock nested domain`);
  if (c.id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX) return kerr("EINVAL", `iotlb id ${c.id} is above ${MOCK_NESTED_DOMAIN_IOTLB_ID_MAX}`);
  if (n.iotlb[c.id] !== c.iotlb) return kerr("EINVAL", `iotlb[${c.id}] is 0x${n.iotlb[c.id]!.toString(16)}, not 0x${c.iotlb.toString(16)}`);
  return 0;
}

// @kernel: iommufd_test_dev_check_cache
export function testDevCheckCache(ictx: IommufdCtx, idevId: number, c: { id: number; cache: number }): 0 | KError {
  const idev = getDevice(ictx, idevId);
  if (isErr(idev)) return idev;
  if (c.id > MOCK_DEV_CACHE_ID_MAX) return kerr("EINVAL", `cache id ${c.id} is above ${MOCK_DEV_CACHE_ID_MAX}`);
  const v = mockDev(idev.dev).cache[c.id]!;
  if (v !== c.cache) return kerr("EINVAL", `cache[${c.id}] of ${idev.dev.name} is 0x${v.toString(16)}, not 0x${c.cache.toString(16)}`);
  return 0;
}

// @kernel: iommufd_test_trigger_iopf
export function testTriggerIopf(ictx: IommufdCtx, c: { dev_id: number; pasid: number; grpid: number; perm: number; addr: number }): 0 | KError {
  const idev = getDevice(ictx, c.dev_id);
  if (isErr(idev)) return idev;
  const flags = IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE | (c.pasid !== 0 ? IOMMU_FAULT_PAGE_REQUEST_PASID_VALID : 0);
  // @kernel: iopf_get_attach_handle (the mock has user_pasid_table: a PASID without its own
  // attachment faults through the nested domain on the RID)
  const rid = idev.attached ? (idev.igroup.hwpt as Hwpt | null) : null;
  const atPasid = c.pasid !== 0 ? pasidHwpt(idev, c.pasid) : null;
  const hwpt = atPasid ?? (c.pasid === 0 || rid instanceof HwptNested ? rid : null);
  // iommu_report_device_fault: without a handler the request is answered as a failure at once.
  if (hwpt === null || hwpt.fault === null) return 0;
  iommufdFaultIopfHandler(hwpt, idev, atPasid !== null ? c.pasid : 0, { flags, pasid: c.pasid, grpid: c.grpid, perm: c.perm, addr: c.addr });
  return 0;
}

// @kernel: iommufd_test_trigger_vevent
export function testTriggerVevent(ictx: IommufdCtx, c: { dev_id: number }): 0 | KError {
  const idev = getDevice(ictx, c.dev_id);
  if (isErr(idev)) return idev;
  const md = mockDev(idev.dev);
  if (md.viommu === null || md.vdevId === 0) return kerr("ENOENT", `${idev.dev.name} is not attached through a vDEVICE`);
  // struct iommu_viommu_event_selftest {virt_id}
  const data = new Uint8Array(4);
  setU32(data, 0, md.vdevId);
  return iommufdViommuReportEvent(md.viommu as Viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, data);
}

/** The PASID test ops on a selftest object's device. */
export function testPasid(
  ictx: IommufdCtx,
  idev: IommufdDevice,
  cmd: { op: number; pasid_attach?: { pasid: number; pt_id: number }; pasid_replace?: { pasid: number; pt_id: number }; pasid_detach?: { pasid: number }; pasid_check?: { pasid: number; hwpt_id: number } },
): 0 | KError {
  switch (cmd.op) {
    case IOMMU_TEST_OP_PASID_ATTACH: {
      // @kernel: iommufd_test_pasid_attach
      const c = cmd.pasid_attach!;
      const r = iommufdDevicePasidAttach(ictx, idev, c.pasid, c.pt_id);
      if (isErr(r)) return r;
      c.pt_id = r;
      return 0;
    }
    case IOMMU_TEST_OP_PASID_REPLACE: {
      // @kernel: iommufd_test_pasid_replace
      const c = cmd.pasid_replace!;
      const r = iommufdDevicePasidReplace(ictx, idev, c.pasid, c.pt_id);
      if (isErr(r)) return r;
      c.pt_id = r;
      return 0;
    }
    case IOMMU_TEST_OP_PASID_DETACH:
      // @kernel: iommufd_test_pasid_detach
      iommufdDevicePasidDetach(ictx, idev, cmd.pasid_detach!.pasid);
      return 0;
    default: {
      // @kernel: iommufd_test_pasid_check_hwpt
      const c = cmd.pasid_check!;
      const domain = idev.igroup.group.pasidArray.get(c.pasid)?.domain ?? null;
      if (c.hwpt_id === 0) return domain === null ? 0 : kerr("EINVAL", `PASID ${c.pasid} of ${idev.dev.name} is attached to ${domain}`);
      const o = ictx.get(c.hwpt_id, null);
      if (isErr(o)) return o;
      if (!(o instanceof Hwpt)) return kerr("ENOENT", `object ${c.hwpt_id} is not a HWPT`);
      const want = o.domain;
      return domain === want ? 0 : kerr("EINVAL", `PASID ${c.pasid} of ${idev.dev.name} is attached to ${domain ?? "nothing"}, not HWPT ${c.hwpt_id}'s ${want}`);
    }
  }
}
