/**
 * Port of FIXTURE(vfio_compat_mock_domain) of
 * tools/testing/selftests/iommu/iommufd.c, variants Ver1v2 and Ver1v0:
 * the VFIO type1 container ioctls on a compat IOAS with a mock domain.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as V from "../../src/iommufd/vfio-compat.ts";
import { BUFFER_SIZE, e, Fx, HUGEPAGE_SIZE, MOCK_APERTURE_LAST, MOCK_APERTURE_START, PAGE_SIZE, U } from "./harness.ts";

const INFO_SIZE = V.VFIO_IOMMU_TYPE1_INFO_SIZE;
/** offsetof(struct vfio_iommu_type1_info, cap_offset). */
const CAP_OFFSET_AT = 16;
const FILL = 0xaa;

/**
 * ioctl_check_buf: VFIO_IOMMU_GET_INFO into a buffer filled with 0xaa past
 * argsz; nothing may be written there. Returns the struct's fields.
 */
function getInfo(fx: Fx, argsz: number): { rc: string; argsz: number; flags: number; pgsizes: bigint; capOffset: number; buf: Uint8Array } {
  const buf = new Uint8Array(BUFFER_SIZE).fill(FILL);
  const v = new DataView(buf.buffer);
  buf.fill(0, 0, Math.min(argsz, INFO_SIZE));
  v.setUint32(0, argsz, true);
  const r = V.iommufdVfioIoctl(fx.fd, V.VFIO_IOMMU_GET_INFO, buf);
  for (let i = argsz; i < buf.length; i++) if (buf[i] !== FILL) throw new Error(`byte ${i} past argsz ${argsz} was written`);
  return { rc: e(typeof r === "number" ? 0 : r), argsz: v.getUint32(0, true), flags: v.getUint32(4, true), pgsizes: v.getBigUint64(8, true), capOffset: argsz >= 20 ? v.getUint32(16, true) : 0, buf };
}

/** check_vfio_info_cap_chain: every capability is well formed, IOVA_RANGE is the mock aperture. */
function checkCapChain(buf: Uint8Array, capOffset: number, argsz: number): string[] {
  const v = new DataView(buf.buffer);
  const seen: string[] = [];
  for (let at = capOffset; at !== 0; at = v.getUint32(at + 4, true)) {
    expect(at + 8).toBeLessThanOrEqual(argsz);
    // Every capability starts on an 8-byte boundary (iommufd_vfio_iommu_get_info aligns each cap_size).
    expect(at % 8).toBe(0);
    const id = v.getUint16(at, true);
    expect(v.getUint16(at + 2, true)).toBe(1);
    if (id === V.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
      expect(v.getUint32(at + 8, true)).toBe(1);
      expect(v.getBigUint64(at + 16, true)).toBe(BigInt(MOCK_APERTURE_START));
      expect(v.getBigUint64(at + 24, true)).toBe(BigInt(MOCK_APERTURE_LAST));
      seen.push("IOVA_RANGE");
    } else if (id === V.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
      expect(v.getUint32(at + 8, true)).toBe(0xffff_ffff);
      seen.push("DMA_AVAIL");
    } else {
      throw new Error(`unknown capability ${id}`);
    }
  }
  return seen;
}

const VARIANTS: Record<string, { version: number }> = {
  Ver1v2: { version: V.VFIO_TYPE1v2_IOMMU },
  Ver1v0: { version: V.VFIO_TYPE1_IOMMU },
};

for (const [vname, variant] of Object.entries(VARIANTS)) {
  describe(`vfio_compat_mock_domain/${vname}`, () => {
    let fx: Fx;
    let ioasId = 0;
    const T = (name: string, fn: () => void) => it(`vfio_compat_mock_domain/${vname}: ${name}`, fn);
    const vfio = (nr: number, arg: number | object) => {
      const r = V.iommufdVfioIoctl(fx.fd, nr, arg);
      return typeof r === "number" ? r : r.errno;
    };
    const RW = V.VFIO_DMA_MAP_FLAG_READ | V.VFIO_DMA_MAP_FLAG_WRITE;

    beforeEach(() => {
      fx = new Fx();
      ioasId = fx.ioasAlloc();
      expect(e(fx.mockDomain(ioasId)[0])).toBe("ok");
      expect(e(fx.ioctl(U.IOMMUFD_CMD_VFIO_IOAS, { size: 12, ioas_id: ioasId, op: U.IOMMU_VFIO_IOAS_SET, __reserved: 0 }))).toBe("ok");
      expect(vfio(V.VFIO_SET_IOMMU, variant.version)).toBe(0);
    });
    afterEach(() => fx.teardown());

    T("simple_close", () => {
      expect(fx.fd.vfioIoas?.id).toBe(ioasId);
    });

    T("option_huge_pages", () => {
      expect(fx.option(U.IOMMU_OPTION_HUGE_PAGES, U.IOMMU_OPTION_OP_GET, ioasId)).toEqual([0, variant.version === V.VFIO_TYPE1_IOMMU ? 0 : 1]);
    });

    T("get_info", () => {
      const FLAGS = V.VFIO_IOMMU_INFO_PGSIZES | V.VFIO_IOMMU_INFO_CAPS;
      // Pre-cap ABI: argsz up to cap_offset
      let r = getInfo(fx, CAP_OFFSET_AT);
      expect(r.rc).toBe("ok");
      expect(r.pgsizes).not.toBe(0n);
      expect(r.flags).toBe(FLAGS);
      // Read the cap chain size
      r = getInfo(fx, INFO_SIZE);
      expect(r.rc).toBe("ok");
      expect(r.pgsizes).not.toBe(0n);
      expect(r.flags).toBe(FLAGS);
      expect(r.capOffset).toBe(0);
      // The struct (24), DMA_AVAIL (12, padded to 16), IOVA_RANGE with one range (16 + 16).
      expect(r.argsz).toBe(INFO_SIZE + 16 + 16 + 16);
      // Read the caps at every size: the kernel never writes a truncated chain
      const caplen = r.argsz;
      for (let i = INFO_SIZE; i <= caplen; i++) {
        r = getInfo(fx, i);
        expect(r.rc).toBe("ok");
        expect(r.flags).toBe(FLAGS);
        expect(r.argsz).toBe(caplen);
        if (r.capOffset === 0) {
          expect(i).toBeLessThan(caplen);
          continue;
        }
        expect(checkCapChain(r.buf, r.capOffset, i).sort()).toEqual(["DMA_AVAIL", "IOVA_RANGE"]);
      }
    });

    T("map", () => {
      const map = { argsz: 32, flags: RW, vaddr: fx.buffer, iova: MOCK_APERTURE_START, size: BUFFER_SIZE };
      const unmap = { argsz: 24, flags: 0, iova: MOCK_APERTURE_START, size: BUFFER_SIZE };
      expect(vfio(V.VFIO_IOMMU_MAP_DMA, map)).toBe(0);
      expect(vfio(V.VFIO_IOMMU_UNMAP_DMA, unmap)).toBe(0);
      expect(unmap.size).toBe(BUFFER_SIZE);
      // Unmap of empty is success
      expect(vfio(V.VFIO_IOMMU_UNMAP_DMA, unmap)).toBe(0);
      // UNMAP_FLAG_ALL requires 0 iova and size
      expect(vfio(V.VFIO_IOMMU_MAP_DMA, map)).toBe(0);
      unmap.flags = V.VFIO_DMA_UNMAP_FLAG_ALL;
      unmap.size = BUFFER_SIZE;
      expect(vfio(V.VFIO_IOMMU_UNMAP_DMA, unmap)).toBe("EINVAL");
      unmap.iova = 0;
      unmap.size = 0;
      expect(vfio(V.VFIO_IOMMU_UNMAP_DMA, unmap)).toBe(0);
      expect(unmap.size).toBe(BUFFER_SIZE);
      // Small pages
      for (let i = 0; i < BUFFER_SIZE / PAGE_SIZE; i++) {
        expect(vfio(V.VFIO_IOMMU_MAP_DMA, { argsz: 32, flags: RW, vaddr: fx.buffer + i * PAGE_SIZE, iova: MOCK_APERTURE_START + i * PAGE_SIZE, size: PAGE_SIZE })).toBe(0);
      }
      // Unmap in a fixed shuffled order
      const order = [...Array(16).keys()].sort((a, b) => ((a * 7) % 16) - ((b * 7) % 16));
      for (const i of order) {
        const u = { argsz: 24, flags: 0, iova: MOCK_APERTURE_START + i * PAGE_SIZE, size: PAGE_SIZE };
        expect(vfio(V.VFIO_IOMMU_UNMAP_DMA, u)).toBe(0);
        expect(u.size).toBe(PAGE_SIZE);
      }
    });

    T("huge_map", () => {
      const size = 2 * HUGEPAGE_SIZE;
      const buf = fx.mm.mmap(size, { hugetlb: true });
      expect(vfio(V.VFIO_IOMMU_MAP_DMA, { argsz: 32, flags: RW, vaddr: buf, iova: MOCK_APERTURE_START, size })).toBe(0);
      // Type1 cuts the mapping for each slice; type1v2 cannot split it
      const order = [...Array(16).keys()].sort((a, b) => ((a * 5) % 16) - ((b * 5) % 16));
      for (const i of order) {
        const u = { argsz: 24, flags: 0, iova: MOCK_APERTURE_START + (i * size) / 16, size: size / 16 };
        if (variant.version === V.VFIO_TYPE1_IOMMU) {
          expect(vfio(V.VFIO_IOMMU_UNMAP_DMA, u)).toBe(0);
          expect(u.size).toBe(size / 16);
        } else {
          expect(vfio(V.VFIO_IOMMU_UNMAP_DMA, u)).toBe("ENOENT");
        }
      }
      // Every slice of the cut mapping went, and with it every pin.
      if (variant.version === V.VFIO_TYPE1_IOMMU) expect(fx.phys.pinnedTotal).toBe(0);
    });
  });
}

// Not a kernel case: iopt_disable_large_pages's rule reached through VFIO_SET_IOMMU, as through IOMMU_OPTION.
describe("VFIO_SET_IOMMU(VFIO_TYPE1_IOMMU) gives up large pages as iopt_disable_large_pages does", () => {
  it("is EINVAL once a domain is attached and areas are mapped, and leaves large pages on", () => {
    const fx = new Fx();
    try {
      const ioasId = fx.ioasAlloc();
      expect(e(fx.mockDomain(ioasId)[0])).toBe("ok");
      expect(e(fx.map(ioasId, fx.buffer, PAGE_SIZE, MOCK_APERTURE_START)[0])).toBe("ok");
      expect(e(fx.ioctl(U.IOMMUFD_CMD_VFIO_IOAS, { size: 12, ioas_id: ioasId, op: U.IOMMU_VFIO_IOAS_SET, __reserved: 0 }))).toBe("ok");
      const r = V.iommufdVfioIoctl(fx.fd, V.VFIO_SET_IOMMU, V.VFIO_TYPE1_IOMMU);
      expect(typeof r === "number" ? r : r.errno).toBe("EINVAL");
      expect(fx.option(U.IOMMU_OPTION_HUGE_PAGES, U.IOMMU_OPTION_OP_GET, ioasId)).toEqual([0, 1]);
      // The same rule through IOMMU_OPTION.
      expect(e(fx.option(U.IOMMU_OPTION_HUGE_PAGES, U.IOMMU_OPTION_OP_SET, ioasId, 0)[0])).toBe("EINVAL");
    } finally {
      fx.teardown();
    }
  });
});

// Not a kernel case: VFIO_IOMMU_MAP_DMA checks its range in iopt_map_user_pages, as IOAS_MAP does.
describe("VFIO_IOMMU_MAP_DMA's range checks are iopt_map_user_pages's", () => {
  it("size 0 is EINVAL, vaddr + size past U64_MAX is EOVERFLOW, and neither maps anything", () => {
    const fx = new Fx();
    try {
      const ioasId = fx.ioasAlloc();
      expect(e(fx.ioctl(U.IOMMUFD_CMD_VFIO_IOAS, { size: 12, ioas_id: ioasId, op: U.IOMMU_VFIO_IOAS_SET, __reserved: 0 }))).toBe("ok");
      const RW = V.VFIO_DMA_MAP_FLAG_READ | V.VFIO_DMA_MAP_FLAG_WRITE;
      const map = (vaddr: number, size: number) => {
        const r = V.iommufdVfioIoctl(fx.fd, V.VFIO_IOMMU_MAP_DMA, { argsz: 32, flags: RW, vaddr, iova: MOCK_APERTURE_START, size });
        return typeof r === "number" ? r : r.errno;
      };
      expect(map(fx.buffer, 0)).toBe("EINVAL");
      expect(map(U.U64_MAX - PAGE_SIZE, 2 * PAGE_SIZE)).toBe("EOVERFLOW");
      expect(fx.phys.pinnedTotal).toBe(0);
      expect(map(fx.buffer, PAGE_SIZE)).toBe(0);
    } finally {
      fx.teardown();
    }
  });
});
