/**
 * The `iommufd:` calls beyond binding, attaching and mapping: IOAS_COPY,
 * HWPT_ALLOC, an in-kernel access (create, pin, unpin, read/write,
 * destroy) and dirty tracking (SET_DIRTY_TRACKING, the selftest's DIRTY
 * op, GET_DIRTY_BITMAP). Each runs the ioctl or kernel entry point it
 * names; a result the call states (`expect_iova`, `expect_bytes`,
 * `expect_dirty`) that differs is EBADE.
 */
import {
  iommufdAccessChangeIoas,
  iommufdAccessCreate,
  iommufdAccessDestroy,
  iommufdAccessPinPages,
  iommufdAccessRw,
  iommufdAccessUnpinPages,
  IOMMUFD_ACCESS_RW_WRITE,
  IommufdAccess,
} from "../iommufd/access.ts";
import { IOMMU_HWPT_DIRTY_TRACKING_ENABLE, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, IOMMU_TEST_OP_DIRTY } from "../iommufd/dirty.ts";
import { iommufdIoctl } from "../iommufd/main.ts";
import { iommufdTest } from "../iommufd/selftest.ts";
import * as U from "../iommufd/uapi.ts";
import { hex } from "../lib/bits.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { PAGE_SIZE } from "../pgtable/sizes.ts";
import type { IommufdCall, ScenarioIommufd } from "./iommufd-actions.ts";
import { parseSize } from "./scenario/atoms.ts";

/** An access a scenario created: what it pinned, so its unmap callback and its destroy unpin exactly that. */
export interface ScenarioAccess {
  readonly access: IommufdAccess;
  readonly pins: { iova: number; length: number }[];
}


function sizeOf(nr: number): number {
  return U.CMD_LAYOUTS.get(nr)!.sizeof;
}

function idOf(s: ScenarioIommufd, n: string): number | KError {
  const id = s.names.get(n);
  return id === undefined ? kerr("ENOENT", `no object is named ${n} in this context`) : id;
}

function accessOf(s: ScenarioIommufd, n: string): ScenarioAccess | KError {
  const id = idOf(s, n);
  if (isErr(id)) return id;
  return s.accesses.get(id) ?? kerr("ENOENT", `${n} is not an access of this context`);
}

function mapFlags(names: readonly ("READABLE" | "WRITEABLE")[] | undefined): number {
  let flags = 0;
  for (const f of names ?? ["READABLE", "WRITEABLE"]) flags |= f === "READABLE" ? U.IOMMU_IOAS_MAP_READABLE : U.IOMMU_IOAS_MAP_WRITEABLE;
  return flags;
}

/** The access's unmap callback (vfio's dma_unmap for an emulated device): unpin every pin the range touches. */
function accessUnmap(sa: ScenarioAccess, iova: number, length: number): void {
  const last = iova + length - 1;
  for (let i = sa.pins.length - 1; i >= 0; i--) {
    const p = sa.pins[i]!;
    if (p.iova > last || p.iova + p.length - 1 < iova) continue;
    iommufdAccessUnpinPages(sa.access, p.iova, p.length);
    sa.pins.splice(i, 1);
  }
}

/** Unpins everything and destroys the access (the driver's release). */
export function accessRelease(s: ScenarioIommufd, sa: ScenarioAccess): void {
  accessUnmap(sa, 0, U.ULONG_MAX);
  s.accesses.delete(sa.access.id);
  iommufdAccessDestroy(s.ictx, sa.access);
}

/** Runs `c` if it is one of this file's calls; null if it is not. */
export function runMoreCall(s: ScenarioIommufd, c: IommufdCall): 0 | KError | null {
  const ictx = s.ictx;
  if (c.ioas_copy !== undefined) {
    const a = c.ioas_copy;
    const src = idOf(s, a.src);
    if (isErr(src)) return src;
    const dst = idOf(s, a.dst);
    if (isErr(dst)) return dst;
    const fixed = a.dst_iova !== undefined;
    const cmd: U.IommuIoasCopy = {
      size: sizeOf(U.IOMMUFD_CMD_IOAS_COPY),
      flags: mapFlags(a.flags) | (fixed ? U.IOMMU_IOAS_MAP_FIXED_IOVA : 0),
      dst_ioas_id: dst,
      src_ioas_id: src,
      length: parseSize(a.length),
      dst_iova: fixed ? parseSize(a.dst_iova!) : 0,
      src_iova: parseSize(a.src_iova),
    };
    const rc = iommufdIoctl(ictx, U.IOMMUFD_CMD_IOAS_COPY, cmd);
    if (rc !== 0) return rc;
    if (a.expect_iova !== undefined && cmd.dst_iova !== parseSize(a.expect_iova)) return kerr("EBADE", `the copy landed at ${hex(cmd.dst_iova)}, not ${hex(parseSize(a.expect_iova))}`);
    return 0;
  }
  if (c.hwpt_alloc !== undefined) {
    const a = c.hwpt_alloc;
    const dev = idOf(s, a.dev);
    if (isErr(dev)) return dev;
    const pt = idOf(s, a.pt);
    if (isErr(pt)) return pt;
    let flags = 0;
    for (const f of a.flags ?? []) flags |= f === "NEST_PARENT" ? U.IOMMU_HWPT_ALLOC_NEST_PARENT : U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
    const cmd: U.IommuHwptAlloc = { size: sizeOf(U.IOMMUFD_CMD_HWPT_ALLOC), flags, dev_id: dev, pt_id: pt, out_hwpt_id: 0, __reserved: 0, data_type: 0, data_len: 0, data_uptr: null, fault_id: 0, __reserved2: 0 };
    const rc = iommufdIoctl(ictx, U.IOMMUFD_CMD_HWPT_ALLOC, cmd);
    if (rc === 0) s.names.set(a.as, cmd.out_hwpt_id);
    return rc;
  }
  if (c.access_create !== undefined) {
    const ioas = idOf(s, c.access_create.ioas);
    if (isErr(ioas)) return ioas;
    const pins: ScenarioAccess["pins"] = [];
    let sa: ScenarioAccess | null = null;
    const access = iommufdAccessCreate(ictx, { needsPinPages: true, unmap: (iova, length) => accessUnmap(sa!, iova, length) });
    if (isErr(access)) return access;
    sa = { access, pins };
    const rc = iommufdAccessChangeIoas(ictx, access, ioas);
    if (rc !== 0) {
      iommufdAccessDestroy(ictx, access);
      return rc;
    }
    s.accesses.set(access.id, sa);
    s.names.set(c.access_create.as, access.id);
    return 0;
  }
  if (c.access_pin !== undefined || c.access_unpin !== undefined || c.access_rw !== undefined || c.access_destroy !== undefined) {
    const sa = accessOf(s, (c.access_pin ?? c.access_unpin ?? c.access_rw ?? c.access_destroy)!.access);
    if (isErr(sa)) return sa;
    if (c.access_destroy !== undefined) {
      accessRelease(s, sa);
      return 0;
    }
    if (c.access_pin !== undefined) {
      const iova = parseSize(c.access_pin.iova);
      const length = parseSize(c.access_pin.length);
      const rc = iommufdAccessPinPages(sa.access, iova, length, c.access_pin.write ?? false);
      if (rc === 0) sa.pins.push({ iova, length });
      return rc;
    }
    if (c.access_unpin !== undefined) {
      const iova = parseSize(c.access_unpin.iova);
      const length = parseSize(c.access_unpin.length);
      const i = sa.pins.findIndex((p) => p.iova === iova && p.length === length);
      // The kernel WARNs on an unpin of pages the access did not pin: the model refuses it.
      if (i < 0) return kerr("EINVAL", `the scenario unpins [${hex(iova)}, +${hex(length)}), which the access did not pin: refused before the call (the kernel would WARN in iommufd_access_unpin_pages)`);
      iommufdAccessUnpinPages(sa.access, iova, length);
      sa.pins.splice(i, 1);
      return 0;
    }
    const a = c.access_rw!;
    const length = parseSize(a.length);
    const data = new Uint8Array(length);
    if (a.write === true) data.fill(a.byte ?? 0);
    const rc = iommufdAccessRw(sa.access, parseSize(a.iova), data, length, a.write === true ? IOMMUFD_ACCESS_RW_WRITE : 0);
    if (rc !== 0) return rc;
    if (a.expect_bytes !== undefined && a.write !== true) {
      const at = data.findIndex((b) => b !== a.expect_bytes);
      if (at >= 0) return kerr("EBADE", `byte ${at} read ${hex(data[at]!)}, not ${hex(a.expect_bytes)}`);
    }
    return 0;
  }
  if (c.set_dirty_tracking !== undefined) {
    const hwpt = idOf(s, c.set_dirty_tracking.hwpt);
    if (isErr(hwpt)) return hwpt;
    const cmd = { size: sizeOf(U.IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING), flags: c.set_dirty_tracking.enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0, hwpt_id: hwpt, __reserved: 0 };
    return iommufdIoctl(ictx, U.IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING, cmd);
  }
  if (c.test_dirty !== undefined) {
    const a = c.test_dirty;
    const hwpt = idOf(s, a.hwpt);
    if (isErr(hwpt)) return hwpt;
    const pageSize = a.page_size === undefined ? PAGE_SIZE : parseSize(a.page_size);
    const length = parseSize(a.length);
    const bitmap = new Uint8Array(Math.ceil(length / pageSize / 8)).fill(0xff);
    return iommufdTest(ictx, { op: IOMMU_TEST_OP_DIRTY, id: hwpt, dirty: { iova: parseSize(a.iova), length, page_size: pageSize, bitmap, out_nr_dirty: 0 } });
  }
  if (c.get_dirty_bitmap !== undefined) {
    const a = c.get_dirty_bitmap;
    const hwpt = idOf(s, a.hwpt);
    if (isErr(hwpt)) return hwpt;
    const pageSize = a.page_size === undefined ? PAGE_SIZE : parseSize(a.page_size);
    const iova = parseSize(a.iova);
    const length = parseSize(a.length);
    const data = new Uint8Array(Math.ceil(length / pageSize / 8));
    const cmd = { size: sizeOf(U.IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP), hwpt_id: hwpt, flags: a.no_clear === true ? IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR : 0, __reserved: 0, iova, length, page_size: pageSize, data };
    const rc = iommufdIoctl(ictx, U.IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP, cmd);
    if (rc !== 0) return rc;
    if (a.expect_dirty !== undefined) {
      const got: number[] = [];
      for (let b = 0; b < length / pageSize; b++) if ((data[b >> 3]! & (1 << (b & 7))) !== 0) got.push(iova + b * pageSize);
      const want = a.expect_dirty.map(parseSize).sort((x, y) => x - y);
      if (JSON.stringify(got) !== JSON.stringify(want)) return kerr("EBADE", `the bitmap reports [${got.map(hex).join(", ")}] dirty, not [${want.map(hex).join(", ")}]`);
    }
    return 0;
  }
  return null;
}
