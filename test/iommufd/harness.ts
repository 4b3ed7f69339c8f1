/**
 * The selftest harness of tools/testing/selftests/iommu (iommufd_utils.h),
 * in our terms: a booted machine with the mock IOMMU, a process with the
 * fixture's `buffer`, an open context, the ioctl helpers the kernel's
 * tests use, and the standard teardown (close, reopen, refs 0 on buffer).
 */
import { expect } from "vitest";
import { runPath } from "../../src/base/path.ts";
import { iommufdClose, iommufdIoctl, iommufdOpen } from "../../src/iommufd/main.ts";
import type { IommufdCtx, IommufdEnv } from "../../src/iommufd/object.ts";
import { closeAccessFd, iommufdTest, IOMMU_TEST_OP_ACCESS_PAGES, IOMMU_TEST_OP_ACCESS_RW, IOMMU_TEST_OP_ADD_RESERVED, IOMMU_TEST_OP_CREATE_ACCESS, IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, IOMMU_TEST_OP_MD_CHECK_MAP, IOMMU_TEST_OP_MD_CHECK_REFS, IOMMU_TEST_OP_MOCK_DOMAIN, IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, type IommuTestCmd } from "../../src/iommufd/selftest.ts";
import * as U from "../../src/iommufd/uapi.ts";
import { Mm, PhysMem } from "../../src/iommufd/user-memory.ts";
import type { KError } from "../../src/lib/errno.ts";
import { MOCK_APERTURE_LAST, MOCK_APERTURE_START } from "../../src/pgtable/mock.ts";
import { PAGE_SIZE, SZ_2M } from "../../src/pgtable/sizes.ts";
import { iommufdEnv } from "../../src/sim/iommufd-env.ts";
import { bootPath } from "../../src/sim/runner.ts";
import { machine } from "../helpers.ts";

export { MOCK_APERTURE_LAST, MOCK_APERTURE_START, PAGE_SIZE, U };
export const MOCK_PAGE_SIZE = PAGE_SIZE / 2;
export const BUFFER_SIZE = 16 * PAGE_SIZE;
export const HUGEPAGE_SIZE = SZ_2M;

const MOCK_MACHINE = `
name: iommufd selftest
iommus:
  - {name: mock-iommu, driver: mock}
`;

export type R = 0 | KError;
/** "ok" or the errno name, for expect(). */
export function e(r: R | number): string {
  return typeof r === "number" ? "ok" : r.errno;
}

export class Fx {
  readonly env: IommufdEnv;
  readonly phys = new PhysMem();
  readonly mm: Mm;
  fd: IommufdCtx;
  readonly buffer: number;

  constructor() {
    const m = machine(MOCK_MACHINE);
    runPath(bootPath(m, []));
    this.env = iommufdEnv(m, this.phys);
    this.mm = new Mm(this.phys, 1);
    this.buffer = this.mm.mmap(BUFFER_SIZE, { align: HUGEPAGE_SIZE });
    this.fd = iommufdOpen(this.env, this.mm);
  }

  ioctl(nr: number, arg: object | null, privileged = true): R {
    return iommufdIoctl(this.fd, nr, arg, { privileged });
  }
  /** An ioctl on the same fd from another process (a forked child). */
  ioctlAs(mm: Mm, nr: number, arg: object): R {
    return iommufdIoctl(this.fd, nr, arg, { mm });
  }
  test(cmd: IommuTestCmd): R {
    return iommufdTest(this.fd, cmd);
  }

  ioasAlloc(): number {
    const c: U.IommuIoasAlloc = { size: 12, flags: 0, out_ioas_id: 0 };
    expect(e(this.ioctl(U.IOMMUFD_CMD_IOAS_ALLOC, c))).toBe("ok");
    return c.out_ioas_id;
  }
  destroy(id: number): R {
    return this.ioctl(U.IOMMUFD_CMD_DESTROY, { size: 8, id });
  }
  /** test_ioctl_ioas_map_id: READABLE|WRITEABLE, FIXED when `fixedIova` is given; returns [result, iova]. */
  map(ioasId: number, va: number, length: number, fixedIova?: number, flags = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE): [R, number] {
    const c: U.IommuIoasMap = { size: 40, flags: flags | (fixedIova !== undefined ? U.IOMMU_IOAS_MAP_FIXED_IOVA : 0), ioas_id: ioasId, __reserved: 0, user_va: va, length, iova: fixedIova ?? 0 };
    const r = this.ioctl(U.IOMMUFD_CMD_IOAS_MAP, c);
    return [r, c.iova];
  }
  unmap(ioasId: number, iova: number, length: number): [R, number] {
    const c: U.IommuIoasUnmap = { size: 24, ioas_id: ioasId, iova, length };
    const r = this.ioctl(U.IOMMUFD_CMD_IOAS_UNMAP, c);
    return [r, c.length];
  }
  mockDomain(ptId: number, flags = 0): [R, { stdev: number; hwpt: number; idev: number }] {
    if (flags !== 0) {
      const c = { op: IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, id: ptId, mock_domain_flags: { out_stdev_id: 0, out_hwpt_id: 0, out_idev_id: 0, dev_flags: flags } };
      const r = this.test(c);
      return [r, { stdev: c.mock_domain_flags.out_stdev_id, hwpt: c.mock_domain_flags.out_hwpt_id, idev: c.mock_domain_flags.out_idev_id }];
    }
    const c = { op: IOMMU_TEST_OP_MOCK_DOMAIN, id: ptId, mock_domain: { out_stdev_id: 0, out_hwpt_id: 0, out_idev_id: 0 } };
    const r = this.test(c);
    return [r, { stdev: c.mock_domain.out_stdev_id, hwpt: c.mock_domain.out_hwpt_id, idev: c.mock_domain.out_idev_id }];
  }
  replace(stdev: number, ptId: number): [R, number] {
    const c = { op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, id: stdev, mock_domain_replace: { pt_id: ptId } };
    const r = this.test(c);
    return [r, c.mock_domain_replace.pt_id];
  }
  addReserved(ioasId: number, start: number, length: number): R {
    return this.test({ op: IOMMU_TEST_OP_ADD_RESERVED, id: ioasId, add_reserved: { start, length } });
  }
  checkMap(hwpt: number, iova: number, length: number, uptr: number): R {
    return this.test({ op: IOMMU_TEST_OP_MD_CHECK_MAP, id: hwpt, check_map: { iova, length, uptr } });
  }
  checkRefs(uptr: number, length: number, refs: number): R {
    return this.test({ op: IOMMU_TEST_OP_MD_CHECK_REFS, id: 0, check_refs: { length, uptr, refs } });
  }
  allowIovas(ioasId: number, ranges: U.IommuIovaRange[]): R {
    return this.ioctl(U.IOMMUFD_CMD_IOAS_ALLOW_IOVAS, { size: 24, ioas_id: ioasId, num_iovas: ranges.length, __reserved: 0, allowed_iovas: ranges });
  }
  option(optionId: number, op: number, objectId: number, val64 = 0, privileged = true): [R, number] {
    const c: U.IommuOption = { size: 24, option_id: optionId, op, __reserved: 0, object_id: objectId, val64 };
    const r = this.ioctl(U.IOMMUFD_CMD_OPTION, c, privileged);
    return [r, c.val64];
  }
  createAccess(ioasId: number, flags: number): [R, number] {
    const c = { op: IOMMU_TEST_OP_CREATE_ACCESS, id: ioasId, create_access: { out_access_fd: 0, flags } };
    const r = this.test(c);
    return [r, c.create_access.out_access_fd];
  }
  accessPin(accessFd: number, iova: number, length: number, uptr: number, flags = 0): [R, number] {
    const c = { op: IOMMU_TEST_OP_ACCESS_PAGES, id: accessFd, access_pages: { flags, out_access_pages_id: 0, iova, length, uptr } };
    const r = this.test(c);
    return [r, c.access_pages.out_access_pages_id];
  }
  accessUnpin(accessFd: number, item: number): R {
    return this.test({ op: IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, id: accessFd, destroy_access_pages: { access_pages_id: item } });
  }
  accessRw(accessFd: number, iova: number, uptr: number, length: number, flags: number): R {
    return this.test({ op: IOMMU_TEST_OP_ACCESS_RW, id: accessFd, access_rw: { iova, length, uptr, flags } });
  }
  closeAccess(fd: number): R {
    return closeAccessFd(this.fd, fd);
  }

  /** teardown_iommufd: close, reopen, and no page of `buffer` may be left pinned. */
  teardown(): void {
    iommufdClose(this.fd);
    expect(this.fd.empty).toBe(true);
    this.fd = iommufdOpen(this.env, this.mm);
    expect(e(this.checkRefs(this.buffer, BUFFER_SIZE, 0))).toBe("ok");
    expect(this.phys.pinnedTotal).toBe(0);
    iommufdClose(this.fd);
  }
}
