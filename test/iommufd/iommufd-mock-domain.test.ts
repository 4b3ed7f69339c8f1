/**
 * Port of FIXTURE(iommufd_mock_domain) of tools/testing/selftests/iommu/iommufd.c,
 * its six variants (one or two mock domains; anonymous or hugetlb memory;
 * user memory or a memfd).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, IOMMU_TEST_OP_ACCESS_REPLACE_IOAS } from "../../src/iommufd/selftest.ts";
import { MemFile } from "../../src/iommufd/user-memory.ts";
import { BUFFER_SIZE, e, Fx, HUGEPAGE_SIZE, MOCK_APERTURE_START, MOCK_PAGE_SIZE, PAGE_SIZE, U } from "./harness.ts";

interface Variant {
  mockDomains: number;
  hugepages: boolean;
  file: boolean;
}
const VARIANTS: Record<string, Variant> = {
  one_domain: { mockDomains: 1, hugepages: false, file: false },
  two_domains: { mockDomains: 2, hugepages: false, file: false },
  one_domain_hugepage: { mockDomains: 1, hugepages: true, file: false },
  two_domains_hugepage: { mockDomains: 2, hugepages: true, file: false },
  one_domain_file: { mockDomains: 1, hugepages: false, file: true },
  one_domain_file_hugepage: { mockDomains: 1, hugepages: true, file: true },
};

for (const [vname, variant] of Object.entries(VARIANTS)) {
  describe(`iommufd_mock_domain/${vname}`, () => {
    let fx: Fx;
    let ioasId = 0;
    let stdevIds: number[] = [];
    let hwptIds: number[] = [];
    let idevIds: number[] = [];
    let mfd = 0;
    let mfdBuffer = 0;
    const mmapBufSize = variant.hugepages ? 2 * HUGEPAGE_SIZE : 8 * PAGE_SIZE;
    const T = (name: string, fn: () => void) => it(`iommufd_mock_domain/${vname}: ${name}`, fn);
    const { IOMMU_IOAS_MAP_READABLE: RD, IOMMU_IOAS_MAP_WRITEABLE: WR, IOMMU_IOAS_MAP_FIXED_IOVA: FIXED } = U;

    /** A memfd of `size` bytes in the process's file table (memfd_create + ftruncate). */
    const memfd = (size: number): [number, MemFile] => {
      const f = new MemFile(fx.phys, size, variant.hugepages);
      const fd = fx.mm.nextFd++;
      fx.mm.files.set(fd, f);
      return [fd, f];
    };
    const mapFile = (ioas: number, fd: number, start: number, length: number): [string, number] => {
      const c: U.IommuIoasMapFile = { size: 40, flags: RD | WR, ioas_id: ioas, fd, start, length, iova: 0 };
      return [e(fx.ioctl(U.IOMMUFD_CMD_IOAS_MAP_FILE, c)), c.iova];
    };
    /** check_mock_iova: MD_CHECK_MAP on hwpt_ids[0], and on hwpt_ids[1] when set. */
    const checkMockIova = (uptr: number, iova: number, length: number) => {
      expect(e(fx.checkMap(hwptIds[0]!, iova, length, uptr))).toBe("ok");
      if ((hwptIds[1] ?? 0) !== 0) expect(e(fx.checkMap(hwptIds[1]!, iova, length, uptr))).toBe("ok");
    };
    const hwptAlloc = (idev: number, pt: number, flags: number): [string, number] => {
      const c: U.IommuHwptAlloc = { size: 48, flags, dev_id: idev, pt_id: pt, out_hwpt_id: 0, __reserved: 0, data_type: 0, data_len: 0, data_uptr: null, fault_id: 0, __reserved2: 0 };
      return [e(fx.ioctl(U.IOMMUFD_CMD_HWPT_ALLOC, c)), c.out_hwpt_id];
    };

    beforeEach(() => {
      fx = new Fx();
      ioasId = fx.ioasAlloc();
      stdevIds = [];
      hwptIds = [];
      idevIds = [];
      for (let i = 0; i < variant.mockDomains; i++) {
        const [r, ids] = fx.mockDomain(ioasId);
        expect(e(r)).toBe("ok");
        stdevIds.push(ids.stdev);
        hwptIds.push(ids.hwpt);
        idevIds.push(ids.idev);
      }
      [mfd] = memfd(BUFFER_SIZE);
      mfdBuffer = fx.mm.mmap(BUFFER_SIZE, { file: fx.mm.files.get(mfd)! });
    });
    afterEach(() => fx.teardown());

    T("basic", () => {
      if (variant.file) {
        const [r, iova] = mapFile(ioasId, mfd, 0, PAGE_SIZE);
        expect(r).toBe("ok");
        checkMockIova(mfdBuffer, iova, PAGE_SIZE);
        const [fd, f] = memfd(mmapBufSize);
        expect(mapFile(ioasId, fd, 0, mmapBufSize + 1)[0]).toBe("EINVAL");
        f.truncate(0);
        expect(mapFile(ioasId, fd, 0, mmapBufSize)[0]).toBe("EINVAL");
        return;
      }
      const [r, iova] = fx.map(ioasId, fx.buffer, PAGE_SIZE);
      expect(e(r)).toBe("ok");
      checkMockIova(fx.buffer, iova, PAGE_SIZE);
      const buf = fx.mm.mmap(mmapBufSize, { hugetlb: variant.hugepages });
      // EFAULT half way through mapping
      fx.mm.munmap(buf + mmapBufSize / 2, mmapBufSize / 2);
      expect(e(fx.map(ioasId, buf, mmapBufSize)[0])).toBe("EFAULT");
      // EFAULT on first page
      fx.mm.munmap(buf, mmapBufSize / 2);
      expect(e(fx.map(ioasId, buf, mmapBufSize)[0])).toBe("EFAULT");
    });

    T("ro_unshare", () => {
      // A private read/write mapping of a file page, mapped read-only into the IOAS, then written by the CPU.
      const [fd, f] = memfd(PAGE_SIZE);
      void fd;
      const buf = fx.mm.mmap(PAGE_SIZE, { file: f, cow: true });
      const [r, iova] = fx.map(ioasId, buf, PAGE_SIZE, undefined, RD);
      expect(e(r)).toBe("ok");
      checkMockIova(buf, iova, PAGE_SIZE);
      fx.mm.write(buf, new Uint8Array([1]));
      checkMockIova(buf, iova, PAGE_SIZE);
      expect(e(fx.unmap(ioasId, iova, PAGE_SIZE)[0])).toBe("ok");
    });

    const allAligns = (copy: boolean) => {
      const testStep = variant.hugepages ? mmapBufSize / 16 : MOCK_PAGE_SIZE;
      let buf: number;
      let fd = 0;
      if (variant.file) {
        const [d, f] = memfd(mmapBufSize);
        fd = d;
        buf = fx.mm.mmap(mmapBufSize, { file: f });
      } else {
        buf = fx.mm.mmap(mmapBufSize, { hugetlb: variant.hugepages });
      }
      expect(e(fx.checkRefs(buf, mmapBufSize, 0))).toBe("ok");
      let steps = 0;
      for (let start = 0; start < mmapBufSize; start += testStep) {
        let end = variant.hugepages ? mmapBufSize : start + MOCK_PAGE_SIZE;
        for (; end < mmapBufSize; end += MOCK_PAGE_SIZE) {
          const length = end - start;
          let iova: number;
          if (variant.file) {
            const [r, i] = mapFile(ioasId, fd, start, length);
            expect(r).toBe("ok");
            iova = i;
          } else {
            const [r, i] = fx.map(ioasId, buf + start, length);
            expect(e(r)).toBe("ok");
            iova = i;
          }
          let oldId = 0;
          let stdev = 0;
          if (copy) {
            // Add and destroy a domain while the area exists
            oldId = hwptIds[1] ?? 0;
            const [r, ids] = fx.mockDomain(ioasId);
            expect(e(r)).toBe("ok");
            stdev = ids.stdev;
            hwptIds[1] = ids.hwpt;
          }
          checkMockIova(buf + start, iova, length);
          const lo = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
          expect(e(fx.checkRefs(buf + lo, Math.floor(end / PAGE_SIZE) * PAGE_SIZE - lo, 1))).toBe("ok");
          if (copy) {
            expect(e(fx.destroy(stdev))).toBe("ok");
            hwptIds[1] = oldId;
          }
          expect(e(fx.unmap(ioasId, iova, length)[0])).toBe("ok");
          steps++;
        }
      }
      expect(steps).toBe(variant.hugepages ? 0 : (16 * 15) / 2);
      expect(e(fx.checkRefs(buf, mmapBufSize, 0))).toBe("ok");
    };

    T("all_aligns", () => allAligns(false));
    T("all_aligns_copy", () => allAligns(true));

    T("user_copy", () => {
      const uptr = variant.file ? mfdBuffer : fx.buffer;
      const mapSrc = (ioas: number): number => {
        if (variant.file) {
          const [r, iova] = mapFile(ioas, mfd, 0, BUFFER_SIZE);
          expect(r).toBe("ok");
          return iova;
        }
        const [r, iova] = fx.map(ioas, fx.buffer, BUFFER_SIZE);
        expect(e(r)).toBe("ok");
        return iova;
      };
      const copy = (src: number, srcIova: number) => {
        const c: U.IommuIoasCopy = { size: 40, flags: FIXED | WR | RD, dst_ioas_id: ioasId, src_ioas_id: src, length: BUFFER_SIZE, dst_iova: MOCK_APERTURE_START, src_iova: srcIova };
        expect(e(fx.ioctl(U.IOMMUFD_CMD_IOAS_COPY, c))).toBe("ok");
      };
      // Pin the pages in an IOAS with no domains, then copy to an IOAS with domains
      const ioas = fx.ioasAlloc();
      let iova = mapSrc(ioas);
      const [r, access] = fx.createAccess(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
      expect(e(r)).toBe("ok");
      let [r1, item] = fx.accessPin(access, iova, BUFFER_SIZE, uptr);
      expect(e(r1)).toBe("ok");
      copy(ioas, iova);
      checkMockIova(uptr, MOCK_APERTURE_START, BUFFER_SIZE);
      // Now replace the IOAS with a new one
      const newIoas = fx.ioasAlloc();
      iova = mapSrc(newIoas);
      expect(e(fx.test({ op: IOMMU_TEST_OP_ACCESS_REPLACE_IOAS, id: access, access_replace_ioas: { ioas_id: newIoas } }))).toBe("ok");
      expect(e(fx.unmap(ioasId, MOCK_APERTURE_START, BUFFER_SIZE)[0])).toBe("ok");
      expect(e(fx.destroy(ioas))).toBe("ok");
      [r1, item] = fx.accessPin(access, iova, BUFFER_SIZE, uptr);
      expect(e(r1)).toBe("ok");
      copy(newIoas, iova);
      checkMockIova(uptr, MOCK_APERTURE_START, BUFFER_SIZE);
      expect(e(fx.accessUnpin(access, item))).toBe("ok");
      expect(e(fx.closeAccess(access))).toBe("ok");
      expect(e(fx.destroy(newIoas))).toBe("ok");
    });

    T("replace", () => {
      const ioas = fx.ioasAlloc();
      expect(e(fx.replace(stdevIds[0]!, ioas)[0])).toBe("ok");
      // Replacing the IOAS frees the prior auto HWPT: its id is gone
      if (variant.mockDomains === 1) expect(e(fx.replace(stdevIds[0]!, hwptIds[0]!)[0])).toBe("ENOENT");
      expect(e(fx.replace(stdevIds[0]!, ioas)[0])).toBe("ok");
      if (variant.mockDomains >= 2) {
        expect(e(fx.replace(stdevIds[0]!, hwptIds[1]!)[0])).toBe("ok");
        expect(e(fx.replace(stdevIds[0]!, hwptIds[1]!)[0])).toBe("ok");
        expect(e(fx.replace(stdevIds[0]!, hwptIds[0]!)[0])).toBe("ok");
      }
      expect(e(fx.replace(stdevIds[0]!, ioasId)[0])).toBe("ok");
      expect(e(fx.destroy(ioas))).toBe("ok");
    });

    T("alloc_hwpt", () => {
      for (let i = 0; i < variant.mockDomains; i++) {
        expect(hwptAlloc(idevIds[i]!, ioasId, ~U.IOMMU_HWPT_ALLOC_NEST_PARENT)[0]).toBe("EOPNOTSUPP");
        const [r0, h0] = hwptAlloc(idevIds[i]!, ioasId, 0);
        const [r1, h1] = hwptAlloc(idevIds[i]!, ioasId, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
        expect([r0, r1]).toEqual(["ok", "ok"]);
        // A hw_pagetable rotation
        expect(e(fx.replace(stdevIds[i]!, h0)[0])).toBe("ok");
        expect(e(fx.destroy(h0))).toBe("EBUSY");
        expect(e(fx.replace(stdevIds[i]!, h1)[0])).toBe("ok");
        expect(e(fx.destroy(h1))).toBe("EBUSY");
        expect(e(fx.replace(stdevIds[i]!, ioasId)[0])).toBe("ok");
        expect(e(fx.destroy(h1))).toBe("ok");
        const [r2, ids] = fx.mockDomain(h0);
        expect(e(r2)).toBe("ok");
        expect(e(fx.destroy(ids.stdev))).toBe("ok");
        expect(e(fx.destroy(h0))).toBe("ok");
      }
    });
  });
}
