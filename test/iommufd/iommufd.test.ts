/**
 * Port of FIXTURE(iommufd) of tools/testing/selftests/iommu/iommufd.c:
 * ioctl framing, global options and IOMMU_VFIO_IOAS.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as V from "../../src/iommufd/vfio-compat.ts";
import { e, Fx, U } from "./harness.ts";

describe("iommufd", () => {
  let fx: Fx;
  beforeEach(() => {
    fx = new Fx();
  });
  afterEach(() => fx.teardown());

  it("iommufd: simple_close", () => {
    expect(fx.fd.empty).toBe(true);
  });

  it("iommufd: cmd_fail", () => {
    expect(e(fx.destroy(0))).toBe("ENOENT");
    expect(e(fx.ioctl(U.IOMMUFD_CMD_DESTROY, null))).toBe("EFAULT");
    expect(e(fx.ioctl(0x7f, { size: 8 }))).toBe("ENOTTY");
  });

  it("iommufd: cmd_length", () => {
    const cmds = [
      U.IOMMUFD_CMD_DESTROY,
      U.IOMMUFD_CMD_GET_HW_INFO,
      U.IOMMUFD_CMD_HWPT_ALLOC,
      U.IOMMUFD_CMD_HWPT_INVALIDATE,
      U.IOMMUFD_CMD_IOAS_ALLOC,
      U.IOMMUFD_CMD_IOAS_IOVA_RANGES,
      U.IOMMUFD_CMD_IOAS_ALLOW_IOVAS,
      U.IOMMUFD_CMD_IOAS_MAP,
      U.IOMMUFD_CMD_IOAS_COPY,
      U.IOMMUFD_CMD_IOAS_UNMAP,
      U.IOMMUFD_CMD_OPTION,
      U.IOMMUFD_CMD_VFIO_IOAS,
      U.IOMMUFD_CMD_IOAS_MAP_FILE,
      U.IOMMUFD_CMD_VIOMMU_ALLOC,
      U.IOMMUFD_CMD_VDEVICE_ALLOC,
      U.IOMMUFD_CMD_IOAS_CHANGE_PROCESS,
    ];
    const zeroed = (nr: number, size: number, tail?: number): Record<string, unknown> => {
      const o: Record<string, unknown> = { size };
      for (const [name] of U.CMD_LAYOUTS.get(nr)!.fields) o[name] = name === "allowed_iovas" || name.endsWith("uptr") ? null : 0;
      if (tail !== undefined) o.__tail = new Uint8Array([tail]);
      return o;
    };
    const results: Record<string, string> = {};
    for (const nr of cmds) {
      const l = U.CMD_LAYOUTS.get(nr)!;
      expect(e(fx.ioctl(nr, zeroed(nr, l.minSize - 1))), l.name).toBe("EINVAL");
      expect(e(fx.ioctl(nr, zeroed(nr, l.sizeof + 1, 0xff))), l.name).toBe("E2BIG");
      const r = e(fx.ioctl(nr, zeroed(nr, l.sizeof)));
      expect(e(fx.ioctl(nr, zeroed(nr, l.sizeof + 1, 0))), l.name).toBe(r);
      results[l.name] = r;
    }
    // The results the catalogue expects of a zeroed struct on this fd, every one.
    expect(results).toMatchObject({
      iommu_destroy: "ENOENT",
      iommu_hw_info: "ENOENT",
      iommu_hwpt_invalidate: "ENOENT",
      iommu_viommu_alloc: "EOPNOTSUPP",
      iommu_vdevice_alloc: "ENOENT",
      iommu_hwpt_alloc: "ENOENT",
      iommu_ioas_alloc: "ok",
      iommu_ioas_iova_ranges: "ENOENT",
      iommu_ioas_allow_iovas: "ENOENT",
      iommu_ioas_map: "EINVAL",
      iommu_ioas_copy: "EINVAL",
      iommu_ioas_unmap: "ENOENT",
      iommu_option: "EBUSY",
      iommu_vfio_ioas: "ENODEV",
      iommu_ioas_map_file: "EINVAL",
      iommu_ioas_change_process: "ok",
    });
  });

  it("iommufd: cmd_ex_fail", () => {
    const cmd = (size: number, tail: number[]) => ({ size, id: 0, __tail: new Uint8Array(tail) });
    expect(e(fx.ioctl(U.IOMMUFD_CMD_DESTROY, cmd(16, [0, 0, 0, 0, 0, 0, 0, 0])))).toBe("ENOENT");
    expect(e(fx.ioctl(U.IOMMUFD_CMD_DESTROY, cmd(16, [0, 0, 0, 0, 0, 0, 0, 0xff])))).toBe("E2BIG");
    expect(e(fx.ioctl(U.IOMMUFD_CMD_DESTROY, cmd(8, [0xff])))).toBe("ENOENT");
    expect(e(fx.ioctl(U.IOMMUFD_CMD_DESTROY, cmd(7, [])))).toBe("EINVAL");
  });

  it("iommufd: global_options", () => {
    const { IOMMU_OPTION_RLIMIT_MODE: RL, IOMMU_OPTION_HUGE_PAGES: HP, IOMMU_OPTION_OP_GET: GET, IOMMU_OPTION_OP_SET: SET } = U;
    expect(fx.option(RL, GET, 0)).toEqual([0, 0]);
    expect(e(fx.option(RL, SET, 0, 1)[0])).toBe("ok");
    expect(e(fx.option(RL, SET, 0, 2)[0])).toBe("EINVAL");
    expect(fx.option(RL, GET, 0)).toEqual([0, 1]);
    expect(e(fx.option(RL, SET, 0, 0)[0])).toBe("ok");
    expect(e(fx.option(HP, GET, 0)[0])).toBe("ENOENT");
    expect(e(fx.option(HP, SET, 0)[0])).toBe("ENOENT");
  });

  const vfio = (nr: number, arg: number | object) => {
    const r = V.iommufdVfioIoctl(fx.fd, nr, arg);
    return typeof r === "number" ? r : r.errno;
  };

  it("iommufd: simple_ioctls", () => {
    expect(vfio(V.VFIO_GET_API_VERSION, 0)).toBe(V.VFIO_API_VERSION);
    expect(vfio(V.VFIO_CHECK_EXTENSION, V.VFIO_TYPE1v2_IOMMU)).toBe(1);
  });

  it("iommufd: unmap_cmd", () => {
    const cmd = { argsz: 1, flags: 0, iova: 0, size: 0 };
    expect(vfio(V.VFIO_IOMMU_UNMAP_DMA, cmd)).toBe("EINVAL");
    cmd.argsz = 24;
    cmd.flags = 2 ** 31;
    expect(vfio(V.VFIO_IOMMU_UNMAP_DMA, cmd)).toBe("EINVAL");
    cmd.flags = 0;
    expect(vfio(V.VFIO_IOMMU_UNMAP_DMA, cmd)).toBe("ENODEV");
  });

  it("iommufd: map_cmd", () => {
    const cmd = { argsz: 1, flags: 0, vaddr: fx.buffer, iova: 0, size: 4096 };
    expect(vfio(V.VFIO_IOMMU_MAP_DMA, cmd)).toBe("EINVAL");
    cmd.argsz = 32;
    cmd.flags = 2 ** 31;
    expect(vfio(V.VFIO_IOMMU_MAP_DMA, cmd)).toBe("EINVAL");
    cmd.flags = V.VFIO_DMA_MAP_FLAG_READ | V.VFIO_DMA_MAP_FLAG_WRITE;
    expect(vfio(V.VFIO_IOMMU_MAP_DMA, cmd)).toBe("ENODEV");
  });

  it("iommufd: info_cmd", () => {
    const cmd = { argsz: 1, flags: 0, iova_pgsizes: 0, cap_offset: 0 };
    expect(vfio(V.VFIO_IOMMU_GET_INFO, cmd)).toBe("EINVAL");
    cmd.argsz = 24;
    expect(vfio(V.VFIO_IOMMU_GET_INFO, cmd)).toBe("ENODEV");
  });

  it("iommufd: set_iommu_cmd", () => {
    // Requires a compat IOAS
    expect(vfio(V.VFIO_SET_IOMMU, V.VFIO_TYPE1v2_IOMMU)).toBe("ENODEV");
    expect(vfio(V.VFIO_SET_IOMMU, V.VFIO_TYPE1_IOMMU)).toBe("ENODEV");
  });

  it("iommufd: vfio_ioas", () => {
    const c: U.IommuVfioIoas = { size: 12, ioas_id: 0, op: U.IOMMU_VFIO_IOAS_GET, __reserved: 0 };
    expect(e(fx.ioctl(U.IOMMUFD_CMD_VFIO_IOAS, c))).toBe("ENODEV");
    c.op = U.IOMMU_VFIO_IOAS_SET;
    expect(e(fx.ioctl(U.IOMMUFD_CMD_VFIO_IOAS, c))).toBe("ENOENT");
    const ioas = fx.ioasAlloc();
    c.ioas_id = ioas;
    expect(e(fx.ioctl(U.IOMMUFD_CMD_VFIO_IOAS, c))).toBe("ok");
    c.op = U.IOMMU_VFIO_IOAS_GET;
    c.ioas_id = 0;
    expect(e(fx.ioctl(U.IOMMUFD_CMD_VFIO_IOAS, c))).toBe("ok");
    expect(c.ioas_id).toBe(ioas);
    c.op = U.IOMMU_VFIO_IOAS_CLEAR;
    expect(e(fx.ioctl(U.IOMMUFD_CMD_VFIO_IOAS, c))).toBe("ok");
    c.op = U.IOMMU_VFIO_IOAS_GET;
    expect(e(fx.ioctl(U.IOMMUFD_CMD_VFIO_IOAS, c))).toBe("ENODEV");
  });
});
