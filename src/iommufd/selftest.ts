/**
 * The selftest's test commands (drivers/iommu/iommufd/selftest.c,
 * IOMMU_TEST_CMD): mock devices bound and attached in one step
 * (MOCK_DOMAIN), their replace, reserved ranges, checks of a mock domain's
 * translations and of page pin counts, and accesses behind an fd.
 */
import type { Device } from "../base/device.ts";
import { iommuIovaToPhys } from "../iommu/map.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { MOCK_IO_PAGE_SIZE } from "../pgtable/mock.ts";
import { PAGE_SIZE } from "../pgtable/sizes.ts";
import {
  IOMMUFD_ACCESS_RW_WRITE,
  iommufdAccessChangeIoas,
  iommufdAccessCreate,
  iommufdAccessDestroy,
  iommufdAccessPinPages,
  iommufdAccessRw,
  iommufdAccessUnpinPages,
  type IommufdAccess,
} from "./access.ts";
import { iommufdDeviceAttach, iommufdDeviceDetach, iommufdDeviceReplace } from "./attach.ts";
import { iommufdDeviceBind, iommufdDeviceUnbind, type IommufdDevice } from "./device.ts";
import { IOMMU_TEST_OP_DIRTY, testDirty } from "./dirty.ts";
import { IOMMU_TEST_OP_DMABUF_GET, IOMMU_TEST_OP_DMABUF_REVOKE, IOMMU_TEST_OP_MD_CHECK_DMABUF, testDmabufGet, testDmabufRevoke, testMdCheckDmabuf } from "./dmabuf.ts";
import { HwptPaging } from "./hw-pagetable.ts";
import { getIoas } from "./ioas.ts";
import { IommufdObject, type IommufdCtx } from "./object.ts";
import { U64_MAX } from "./uapi.ts";
import { USER_PHYS_BASE } from "./user-memory.ts";
import {
  IOMMU_TEST_OP_DEV_CHECK_CACHE,
  IOMMU_TEST_OP_MD_CHECK_IOTLB,
  IOMMU_TEST_OP_PASID_ATTACH,
  IOMMU_TEST_OP_PASID_CHECK_HWPT,
  IOMMU_TEST_OP_PASID_DETACH,
  IOMMU_TEST_OP_PASID_REPLACE,
  testPasid,
  IOMMU_TEST_OP_TRIGGER_IOPF,
  IOMMU_TEST_OP_TRIGGER_VEVENT,
  testDevCheckCache,
  testMdCheckIotlb,
  testTriggerIopf,
  testTriggerVevent,
} from "./selftest-nested.ts";

export const IOMMU_TEST_OP_ADD_RESERVED = 1;
export const IOMMU_TEST_OP_MOCK_DOMAIN = 2;
export const IOMMU_TEST_OP_MD_CHECK_MAP = 3;
export const IOMMU_TEST_OP_MD_CHECK_REFS = 4;
export const IOMMU_TEST_OP_CREATE_ACCESS = 5;
export const IOMMU_TEST_OP_DESTROY_ACCESS_PAGES = 6;
export const IOMMU_TEST_OP_ACCESS_PAGES = 7;
export const IOMMU_TEST_OP_ACCESS_RW = 8;
export const IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT = 9;
export const IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE = 10;
export const IOMMU_TEST_OP_ACCESS_REPLACE_IOAS = 11;
export const IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS = 12;

export const MOCK_FLAGS_ACCESS_WRITE = 1 << 0;
export const MOCK_FLAGS_ACCESS_SYZ = 1 << 16;
export const MOCK_ACCESS_RW_WRITE = 1 << 0;
export const MOCK_ACCESS_RW_SLOW_PATH = 1 << 2;
export const MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES = 1 << 0;
export const MOCK_FLAGS_DEVICE_NO_DIRTY = 1 << 0;
export const MOCK_FLAGS_DEVICE_HUGE_IOVA = 1 << 1;
export const MOCK_FLAGS_DEVICE_PASID = 1 << 2;
const MOCK_DEVICE_FLAGS = MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_HUGE_IOVA | MOCK_FLAGS_DEVICE_PASID;
/** The most an access test command takes in one call (16 MiB). */
const TEST_MAX_LENGTH = 16 * 1024 * 1024;

/** struct iommu_test_cmd: `op` selects which member of the union is read. */
export interface IommuTestCmd {
  op: number;
  id: number;
  __reserved?: number;
  /** start and length are u64s: a bigint carries one a double would round (above 2^53). */
  add_reserved?: { start: number | bigint; length: number | bigint };
  mock_domain?: { out_stdev_id: number; out_hwpt_id: number; out_idev_id: number };
  mock_domain_flags?: { out_stdev_id: number; out_hwpt_id: number; out_idev_id: number; dev_flags: number };
  mock_domain_replace?: { pt_id: number };
  check_map?: { iova: number; length: number; uptr: number };
  check_refs?: { length: number; uptr: number; refs: number };
  create_access?: { out_access_fd: number; flags: number };
  destroy_access_pages?: { access_pages_id: number };
  access_pages?: { flags: number; out_access_pages_id: number; iova: number; length: number; uptr: number };
  access_rw?: { iova: number; length: number; uptr: number; flags: number };
  memory_limit?: { limit: number };
  access_replace_ioas?: { ioas_id: number };
  dirty?: { iova: number; length: number; page_size: number; bitmap: Uint8Array | null; out_nr_dirty: number };
  /** out_dmabuf_fd: the fd the kernel's ioctl returns. */
  dmabuf_get?: { length: number; open_flags: number; out_dmabuf_fd: number };
  dmabuf_revoke?: { dmabuf_fd: number; revoked: number };
  check_dmabuf?: { dmabuf_fd: number; iova: number; length: number; offset: number };
  check_iotlb?: { id: number; iotlb: number };
  trigger_iopf?: { dev_id: number; pasid: number; grpid: number; perm: number; addr: number };
  check_dev_cache?: { id: number; cache: number };
  trigger_vevent?: { dev_id: number };
  pasid_attach?: { pasid: number; pt_id: number };
  pasid_replace?: { pasid: number; pt_id: number };
  pasid_detach?: { pasid: number };
  pasid_check?: { pasid: number; hwpt_id: number };
}

/** A u64 field given as a number (U64_MAX for 2^64 − 1) or exactly as a bigint. */
function u64Of(x: number | bigint): bigint {
  if (typeof x === "bigint") return BigInt.asUintN(64, x);
  return x >= U64_MAX ? (1n << 64n) - 1n : BigInt(x);
}

/** The SELFTEST object: a mock device and its iommufd_device (struct selftest_obj, type IDEV). */
export class SelftestObj extends IommufdObject {
  readonly type = "SELFTEST" as const;
  constructor(
    readonly dev: Device,
    readonly idev: IommufdDevice,
  ) {
    super();
  }

  destroy(ictx: IommufdCtx): void {
    // @kernel: selftest_object_destroy
    iommufdDeviceDetach(ictx, this.idev);
    iommufdDeviceUnbind(ictx, this.idev);
    ictx.env.mockDeviceDel(this.dev);
  }
}

/** The test's access behind an fd (struct selftest_access): its pinned items. */
export class SelftestAccess {
  access!: IommufdAccess;
  readonly items = new Map<number, { iova: number; length: number }>();
  nextId = 0;
  constructor(readonly fd: number) {}
}

// @kernel: iommufd_test_mock_domain
function mockDomain(ictx: IommufdCtx, ptId: number, flags: number, out: { out_stdev_id: number; out_hwpt_id: number; out_idev_id: number }): 0 | KError {
  const sid = ictx.alloc();
  if (typeof sid !== "number") return sid;
  if ((flags & ~MOCK_DEVICE_FLAGS) !== 0) {
    ictx.abort(sid);
    return kerr("EINVAL", `unknown mock device flags 0x${flags.toString(16)}`);
  }
  const dev = ictx.env.mockDeviceAdd(flags);
  if (isErr(dev)) {
    ictx.abort(sid);
    return dev;
  }
  const idev = iommufdDeviceBind(ictx, dev);
  if (isErr(idev)) {
    ictx.env.mockDeviceDel(dev);
    ictx.abort(sid);
    return idev;
  }
  const hwptId = iommufdDeviceAttach(ictx, idev, ptId);
  if (isErr(hwptId)) {
    iommufdDeviceUnbind(ictx, idev);
    ictx.env.mockDeviceDel(dev);
    ictx.abort(sid);
    return hwptId;
  }
  ictx.finalize(sid, new SelftestObj(dev, idev));
  out.out_stdev_id = sid;
  out.out_hwpt_id = hwptId;
  out.out_idev_id = idev.id;
  return 0;
}

// @kernel: iommufd_test_md_check_pa
function mdCheckMap(ictx: IommufdCtx, id: number, c: { iova: number; length: number; uptr: number }): 0 | KError {
  const o = ictx.get(id, "HWPT_PAGING");
  if (isErr(o)) return o;
  const d = (o as HwptPaging).domain;
  if (d === null || d.pgtableFormat !== "IOMMUFD_MOCK") return kerr("EINVAL", `HWPT ${id} is not a mock domain`);
  if (c.iova % MOCK_IO_PAGE_SIZE !== 0 || c.length % MOCK_IO_PAGE_SIZE !== 0 || c.uptr % MOCK_IO_PAGE_SIZE !== 0) {
    return kerr("EINVAL", "iova, length and uptr must be MOCK_IO_PAGE_SIZE multiples");
  }
  for (let off = 0; off < c.length; off += MOCK_IO_PAGE_SIZE) {
    const va = c.uptr + off;
    const pfn = ictx.mm.pfnOf(va);
    if (pfn < 0) return kerr("EFAULT", `no user page at 0x${va.toString(16)}`);
    const want = USER_PHYS_BASE + pfn * PAGE_SIZE + (va % PAGE_SIZE);
    const got = iommuIovaToPhys(d, c.iova + off);
    if (got !== want) return kerr("EINVAL", `IOVA 0x${(c.iova + off).toString(16)} translates to 0x${got.toString(16)}, not 0x${want.toString(16)}`);
  }
  return 0;
}

// @kernel: iommufd_test_md_check_refs
function mdCheckRefs(ictx: IommufdCtx, c: { length: number; uptr: number; refs: number }): 0 | KError {
  if (c.uptr % PAGE_SIZE !== 0 || c.length % PAGE_SIZE !== 0) return kerr("EINVAL", "uptr and length must be page-aligned");
  const phys = ictx.env.phys;
  for (let off = 0; off < c.length; off += PAGE_SIZE) {
    const pfn = ictx.mm.pfnOf(c.uptr + off);
    if (pfn < 0) return kerr("EFAULT", `no user page at 0x${(c.uptr + off).toString(16)}`);
    if (phys.compound[pfn] === 1) continue;
    if (phys.pins[pfn] !== c.refs) return kerr("EIO", `the page at 0x${(c.uptr + off).toString(16)} has ${phys.pins[pfn]} pins, not ${c.refs}`);
  }
  return 0;
}

function getAccess(ictx: IommufdCtx, fd: number): SelftestAccess | KError {
  const f = ictx.fds.get(fd);
  if (!(f instanceof SelftestAccess)) return kerr("EBADFD", `fd ${fd} is not an access fd`);
  return f;
}

// @kernel: iommufd_test_create_access
function createAccess(ictx: IommufdCtx, ioasId: number, c: { out_access_fd: number; flags: number }): 0 | KError {
  if ((c.flags & ~MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) !== 0) return kerr("EOPNOTSUPP", "unknown access flags");
  const st = new SelftestAccess(ictx.mm.nextFd);
  const needsPinPages = (c.flags & MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) !== 0;
  const a = iommufdAccessCreate(ictx, {
    needsPinPages,
    // @kernel: iommufd_test_access_unmap
    unmap(iova, length) {
      const last = iova + length - 1;
      for (const [id, it] of st.items) {
        if (it.iova > last || it.iova + it.length - 1 < iova) continue;
        iommufdAccessUnpinPages(st.access, it.iova, it.length);
        st.items.delete(id);
      }
    },
  });
  if (isErr(a)) return a;
  st.access = a;
  const rc = iommufdAccessChangeIoas(ictx, a, ioasId);
  if (rc !== 0) {
    iommufdAccessDestroy(ictx, a);
    return rc;
  }
  ictx.mm.nextFd++;
  ictx.fds.set(st.fd, st);
  c.out_access_fd = st.fd;
  return 0;
}

/** close() of a selftest access fd: unpin every item, then destroy the access. */
// @kernel: iommufd_test_staccess_release
export function closeAccessFd(ictx: IommufdCtx, fd: number): 0 | KError {
  const st = getAccess(ictx, fd);
  if (isErr(st)) return kerr("EBADF", `fd ${fd} is not open`);
  for (const it of st.items.values()) iommufdAccessUnpinPages(st.access, it.iova, it.length);
  st.items.clear();
  iommufdAccessDestroy(ictx, st.access);
  ictx.fds.delete(fd);
  return 0;
}

// @kernel: iommufd_test_access_pages
function accessPages(ictx: IommufdCtx, fd: number, c: { flags: number; out_access_pages_id: number; iova: number; length: number; uptr: number }): 0 | KError {
  if ((c.flags & ~(MOCK_FLAGS_ACCESS_WRITE | MOCK_FLAGS_ACCESS_SYZ)) !== 0) return kerr("EOPNOTSUPP", "unknown access-pages flags");
  if (c.length > TEST_MAX_LENGTH) return kerr("ENOMEM", "the test pins at most 16 MiB at once");
  const st = getAccess(ictx, fd);
  if (isErr(st)) return st;
  if (!st.access.ops.needsPinPages) return kerr("EOPNOTSUPP", "the access was created without NEEDS_PIN_PAGES");
  const rc = iommufdAccessPinPages(st.access, c.iova, c.length, (c.flags & MOCK_FLAGS_ACCESS_WRITE) !== 0);
  if (rc !== 0) return rc;
  if (c.uptr !== 0) {
    // The pages pinned must be the ones behind uptr.
    const first = Math.floor(c.iova / PAGE_SIZE);
    const npages = Math.ceil((c.iova + c.length) / PAGE_SIZE) - first;
    const iopt = st.access.ioas!.iopt;
    const ubase = c.uptr - (c.iova % PAGE_SIZE);
    for (let i = 0; i < npages; i++) {
      const iova = Math.max(c.iova, (first + i) * PAGE_SIZE);
      const area = iopt.areaIterFirst(iova, iova)!;
      const got = area.pages.pfns[Math.floor((area.pagesByte + (iova - area.iova)) / PAGE_SIZE)]!;
      if (got !== ictx.mm.pfnOf(ubase + i * PAGE_SIZE)) {
        iommufdAccessUnpinPages(st.access, c.iova, c.length);
        return kerr("EBADE", `the page pinned at IOVA 0x${iova.toString(16)} is not the one behind uptr`);
      }
    }
  }
  const id = st.nextId++;
  st.items.set(id, { iova: c.iova, length: c.length });
  c.out_access_pages_id = id;
  return 0;
}

// @kernel: iommufd_test_access_item_destroy
function destroyAccessPages(ictx: IommufdCtx, fd: number, itemId: number): 0 | KError {
  const st = getAccess(ictx, fd);
  if (isErr(st)) return st;
  const it = st.items.get(itemId);
  if (it === undefined) return kerr("ENOENT", `no pinned item ${itemId}`);
  iommufdAccessUnpinPages(st.access, it.iova, it.length);
  st.items.delete(itemId);
  return 0;
}

// @kernel: iommufd_test_access_rw
function accessRw(ictx: IommufdCtx, fd: number, c: { iova: number; length: number; uptr: number; flags: number }): 0 | KError {
  if (c.length > TEST_MAX_LENGTH) return kerr("ENOMEM", "the test copies at most 16 MiB at once");
  if ((c.flags & ~(MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH | MOCK_FLAGS_ACCESS_SYZ)) !== 0) return kerr("EOPNOTSUPP", "unknown access-rw flags");
  const st = getAccess(ictx, fd);
  if (isErr(st)) return st;
  const write = (c.flags & MOCK_ACCESS_RW_WRITE) !== 0;
  // copy_from_user before the access, copy_to_user after it: a buffer that is not mapped is EFAULT.
  const fault = () => kerr("EFAULT", `the user buffer [0x${c.uptr.toString(16)}, +0x${c.length.toString(16)}) is not mapped${write ? "" : " writable"} in process ${ictx.mm.pid}`);
  if (write && !ictx.mm.covers(c.uptr, c.length)) return fault();
  const buf = write ? ictx.mm.read(c.uptr, c.length) : new Uint8Array(c.length);
  const rc = iommufdAccessRw(st.access, c.iova, buf, c.length, write ? IOMMUFD_ACCESS_RW_WRITE : 0);
  if (rc !== 0) return rc;
  // A read through the access changed nothing, so failing the copy back leaves the state as it was.
  if (!write && !ictx.mm.covers(c.uptr, c.length, true)) return fault();
  if (!write) ictx.mm.write(c.uptr, buf);
  return 0;
}

/** IOMMU_TEST_CMD. */
// @kernel: iommufd_test
export function iommufdTest(ictx: IommufdCtx, cmd: IommuTestCmd): 0 | KError {
  switch (cmd.op) {
    case IOMMU_TEST_OP_ADD_RESERVED: {
      const ioas = getIoas(ictx, cmd.id);
      if (isErr(ioas)) return ioas;
      // @kernel: iommufd_test_add_reserved (start + length − 1 in u64 arithmetic: it wraps)
      const r = cmd.add_reserved!;
      return ioas.iopt.reserveIovaExact(u64Of(r.start), BigInt.asUintN(64, u64Of(r.start) + u64Of(r.length) - 1n), null);
    }
    case IOMMU_TEST_OP_MOCK_DOMAIN:
      return mockDomain(ictx, cmd.id, 0, cmd.mock_domain!);
    case IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS:
      return mockDomain(ictx, cmd.id, cmd.mock_domain_flags!.dev_flags, cmd.mock_domain_flags!);
    case IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: {
      // @kernel: iommufd_test_mock_domain_replace
      const o = ictx.get(cmd.id, "SELFTEST");
      if (isErr(o)) return o;
      const r = iommufdDeviceReplace(ictx, (o as SelftestObj).idev, cmd.mock_domain_replace!.pt_id);
      if (isErr(r)) return r;
      cmd.mock_domain_replace!.pt_id = r;
      return 0;
    }
    case IOMMU_TEST_OP_MD_CHECK_MAP:
      return mdCheckMap(ictx, cmd.id, cmd.check_map!);
    case IOMMU_TEST_OP_MD_CHECK_REFS:
      return mdCheckRefs(ictx, cmd.check_refs!);
    case IOMMU_TEST_OP_CREATE_ACCESS:
      return createAccess(ictx, cmd.id, cmd.create_access!);
    case IOMMU_TEST_OP_ACCESS_PAGES:
      return accessPages(ictx, cmd.id, cmd.access_pages!);
    case IOMMU_TEST_OP_DESTROY_ACCESS_PAGES:
      return destroyAccessPages(ictx, cmd.id, cmd.destroy_access_pages!.access_pages_id);
    case IOMMU_TEST_OP_ACCESS_RW:
      return accessRw(ictx, cmd.id, cmd.access_rw!);
    case IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT:
      return cmd.memory_limit!.limit < 12 ? kerr("EINVAL", "the temp memory limit is at least 12") : 0;
    case IOMMU_TEST_OP_ACCESS_REPLACE_IOAS: {
      const st = getAccess(ictx, cmd.id);
      if (isErr(st)) return st;
      if (st.access.ioas === null) return kerr("ENOENT", "the access is not attached");
      return iommufdAccessChangeIoas(ictx, st.access, cmd.access_replace_ioas!.ioas_id);
    }
    case IOMMU_TEST_OP_DIRTY:
      return testDirty(ictx, cmd.id, cmd.dirty!);
    case IOMMU_TEST_OP_DMABUF_GET:
      return testDmabufGet(ictx, cmd.dmabuf_get!);
    case IOMMU_TEST_OP_DMABUF_REVOKE:
      return testDmabufRevoke(ictx, cmd.dmabuf_revoke!);
    case IOMMU_TEST_OP_MD_CHECK_DMABUF:
      return testMdCheckDmabuf(ictx, cmd.id, cmd.check_dmabuf!);
    case IOMMU_TEST_OP_MD_CHECK_IOTLB:
      return testMdCheckIotlb(ictx, cmd.id, cmd.check_iotlb!);
    case IOMMU_TEST_OP_TRIGGER_IOPF:
      return testTriggerIopf(ictx, cmd.trigger_iopf!);
    case IOMMU_TEST_OP_DEV_CHECK_CACHE:
      return testDevCheckCache(ictx, cmd.id, cmd.check_dev_cache!);
    case IOMMU_TEST_OP_TRIGGER_VEVENT:
      return testTriggerVevent(ictx, cmd.trigger_vevent!);
    case IOMMU_TEST_OP_PASID_ATTACH:
    case IOMMU_TEST_OP_PASID_REPLACE:
    case IOMMU_TEST_OP_PASID_DETACH:
    case IOMMU_TEST_OP_PASID_CHECK_HWPT: {
      const o = ictx.get(cmd.id, "SELFTEST");
      if (isErr(o)) return o;
      return testPasid(ictx, (o as SelftestObj).idev, cmd);
    }
    default:
      return kerr("EOPNOTSUPP", `unknown test op ${cmd.op}`);
  }
}
