/**
 * Port of FIXTURE(change_process) of tools/testing/selftests/iommu/iommufd.c:
 * IOAS_CHANGE_PROCESS moves the pinned-memory charge (VmPin, and VmLck in
 * RLIMIT_MODE mm) from the process that mapped to the caller.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemFile } from "../../src/iommufd/user-memory.ts";
import { e, Fx, PAGE_SIZE, U } from "./harness.ts";

const VARIANTS: Record<string, { accounting: number | null }> = {
  account_none: { accounting: null },
  account_user: { accounting: 0 },
  account_mm: { accounting: 1 },
};

for (const [vname, variant] of Object.entries(VARIANTS)) {
  describe(`change_process/${vname}`, () => {
    let fx: Fx;
    let ioasId = 0;
    beforeEach(() => {
      fx = new Fx();
      // CAP_IPC_LOCK is dropped (the model has no rlimit to exceed).
      if (variant.accounting !== null) expect(e(fx.option(U.IOMMU_OPTION_RLIMIT_MODE, U.IOMMU_OPTION_OP_SET, 0, variant.accounting)[0])).toBe("ok");
      ioasId = fx.ioasAlloc();
      expect(e(fx.mockDomain(ioasId)[0])).toBe("ok");
    });
    afterEach(() => fx.teardown());

    it(`change_process/${vname}: basic`, () => {
      const change = (mm = fx.mm) => e(fx.ioctlAs(mm, U.IOMMUFD_CMD_IOAS_CHANGE_PROCESS, { size: 8, __reserved: 0 }));
      // A user-memory map cannot change process
      const [r, iova] = fx.map(ioasId, fx.buffer, PAGE_SIZE);
      expect(e(r)).toBe("ok");
      expect(change()).toBe("EINVAL");
      expect(e(fx.unmap(ioasId, iova, PAGE_SIZE)[0])).toBe("ok");
      // A file map can, in the same process
      const fd = fx.mm.nextFd++;
      fx.mm.files.set(fd, new MemFile(fx.phys, PAGE_SIZE));
      const c: U.IommuIoasMapFile = { size: 40, flags: U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, ioas_id: ioasId, fd, start: 0, length: PAGE_SIZE, iova: 0 };
      expect(e(fx.ioctl(U.IOMMUFD_CMD_IOAS_MAP_FILE, c))).toBe("ok");
      expect(change()).toBe("ok");
      // The child takes the charge: /proc VmPin is PAGE_SIZE / 1024 kB (and VmLck in mm mode)
      const kB = (pages: number) => (pages * PAGE_SIZE) / 1024;
      const child = fx.mm.fork(2);
      expect(kB(fx.mm.pinnedVm)).toBe(PAGE_SIZE / 1024);
      expect(kB(fx.mm.lockedVm)).toBe(variant.accounting === 1 ? PAGE_SIZE / 1024 : 0);
      expect([child.pinnedVm, child.lockedVm]).toEqual([0, 0]);
      expect(change(child)).toBe("ok");
      expect([fx.mm.pinnedVm, fx.mm.lockedVm]).toEqual([0, 0]);
      expect(kB(child.pinnedVm)).toBe(PAGE_SIZE / 1024);
      expect(kB(child.lockedVm)).toBe(variant.accounting === 1 ? PAGE_SIZE / 1024 : 0);
    });
  });
}
