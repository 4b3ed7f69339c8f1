/**
 * Dirty tracking (hw_pagetable.c, io_pagetable.c): IOMMU_HWPT_SET_DIRTY_TRACKING,
 * IOMMU_HWPT_GET_DIRTY_BITMAP over the areas of the HWPT's IOAS, and the
 * selftest's IOMMU_TEST_OP_DIRTY that marks mock entries dirty.
 */
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { MOCK_IO_PAGE_SIZE } from "../pgtable/mock.ts";
import { HwptPaging } from "./hw-pagetable.ts";
import type { IommufdCtx } from "./object.ts";
import { ULONG_MAX } from "./uapi.ts";

export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;
export const IOMMU_TEST_OP_DIRTY = 13;

export interface IommuHwptSetDirtyTracking {
  size: number;
  flags: number;
  hwpt_id: number;
  __reserved: number;
}
export interface IommuHwptGetDirtyBitmap {
  size: number;
  hwpt_id: number;
  flags: number;
  __reserved: number;
  iova: number;
  length: number;
  page_size: number;
  /** The user bitmap (at any byte alignment: a subarray). */
  data: Uint8Array | null;
}

function getPaging(ictx: IommufdCtx, id: number): HwptPaging | KError {
  return ictx.get(id, "HWPT_PAGING") as HwptPaging | KError;
}

// @kernel: iommufd_hwpt_set_dirty_tracking
export function hwptSetDirtyTrackingIoctl(ictx: IommufdCtx, cmd: IommuHwptSetDirtyTracking): 0 | KError {
  if ((cmd.flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0 || cmd.__reserved !== 0) return kerr("EOPNOTSUPP", "unknown flags or a non-zero __reserved");
  const hwpt = getPaging(ictx, cmd.hwpt_id);
  if (isErr(hwpt)) return hwpt;
  const d = hwpt.domain!;
  // @kernel: iopt_set_dirty_tracking
  const set = d.ops.setDirtyTracking;
  if (set === undefined) return kerr("EOPNOTSUPP", `HWPT ${cmd.hwpt_id} was not allocated with DIRTY_TRACKING`);
  const enable = (cmd.flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0;
  if (enable) {
    // @kernel: iopt_clear_dirty_data (stale dirty bits go before tracking starts)
    const rc = set(d, true);
    if (rc !== 0) return rc;
    for (const a of hwpt.ioas.iopt.areas) d.ops.readAndClearDirty?.(d, a.iova, a.length, 0, () => {});
    return 0;
  }
  return set(d, false);
}

// @kernel: iommufd_hwpt_get_dirty_bitmap
export function hwptGetDirtyBitmapIoctl(ictx: IommufdCtx, cmd: IommuHwptGetDirtyBitmap): 0 | KError {
  if ((cmd.flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0 || cmd.__reserved !== 0) return kerr("EOPNOTSUPP", "unknown flags or a non-zero __reserved");
  const hwpt = getPaging(ictx, cmd.hwpt_id);
  if (isErr(hwpt)) return hwpt;
  // @kernel: iopt_read_and_clear_dirty_data
  const iopt = hwpt.ioas.iopt;
  const last = cmd.iova + cmd.length - 1;
  if (cmd.length === 0 || last >= ULONG_MAX) return kerr("EOVERFLOW", "iova + length overflows");
  if (cmd.iova % iopt.iovaAlignment !== 0 || (last + 1) % iopt.iovaAlignment !== 0) return kerr("EINVAL", "the range is not aligned to the IOAS");
  if (cmd.page_size === 0 || cmd.iova % cmd.page_size !== 0 || (last + 1) % cmd.page_size !== 0) return kerr("EINVAL", "the range is not aligned to page_size");
  const d = hwpt.domain!;
  const read = d.ops.readAndClearDirty;
  if (read === undefined) return kerr("EOPNOTSUPP", `HWPT ${cmd.hwpt_id} has no dirty tracking`);
  const data = cmd.data;
  if (data === null) return kerr("EFAULT", "data is NULL");
  const nbits = cmd.length / cmd.page_size;
  if (data.length * 8 < nbits) return kerr("EFAULT", "the bitmap is shorter than the range needs");
  // @kernel: iommu_dirty_bitmap_record (every page_size unit a dirty range touches)
  const record = (iova: number, length: number) => {
    const lo = Math.max(iova, cmd.iova);
    const hi = Math.min(iova + length - 1, last);
    for (let b = Math.floor((lo - cmd.iova) / cmd.page_size); b <= Math.floor((hi - cmd.iova) / cmd.page_size); b++) data[b >> 3] = data[b >> 3]! | (1 << (b & 7));
  };
  for (const a of iopt.areasIn(cmd.iova, last)) {
    const s = Math.max(a.iova, cmd.iova);
    const e = Math.min(a.last, last);
    const rc = read(d, s, e - s + 1, cmd.flags, record);
    if (rc !== 0) return rc;
  }
  return 0;
}

/** IOMMU_TEST_OP_DIRTY: for each bit set in `bitmap`, the mock entry at iova + bit × page_size is marked dirty if mapped; the count marked. */
// @kernel: iommufd_test_dirty
export function testDirty(ictx: IommufdCtx, hwptId: number, c: { iova: number; length: number; page_size: number; bitmap: Uint8Array | null; out_nr_dirty: number }): 0 | KError {
  if (c.page_size === 0 || c.length === 0 || c.iova % c.page_size !== 0 || c.length % c.page_size !== 0 || c.bitmap === null) {
    return kerr("EINVAL", "page_size, length, alignment or bitmap is wrong");
  }
  const hwpt = getPaging(ictx, hwptId);
  if (isErr(hwpt)) return hwpt;
  const d = hwpt.domain!;
  if (d.pgtableFormat !== "IOMMUFD_MOCK" || d.ops.testSetDirty === undefined) return kerr("EINVAL", `HWPT ${hwptId} is not a dirty-tracking mock domain`);
  const probe = d.ops.readAndClearDirty?.(d, c.iova, MOCK_IO_PAGE_SIZE, 1, () => {});
  if (probe !== 0 && probe !== undefined) return probe;
  let count = 0;
  const max = c.length / c.page_size;
  for (let i = 0; i < max; i++) {
    if ((c.bitmap[i >> 3]! & (1 << (i & 7))) === 0) continue;
    if (d.ops.testSetDirty(d, c.iova + i * c.page_size)) count++;
  }
  c.out_nr_dirty = count;
  return 0;
}
