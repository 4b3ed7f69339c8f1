/**
 * In-kernel accesses (device.c, iommufd_access_*): a driver's handle on
 * an IOAS that pins pages of it and reads or writes through it. Pins are
 * counted per area (`num_accesses`); an unmap that meets a pinned area
 * asks every access to drop its pins in the range first.
 */
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { PAGE_SIZE } from "../pgtable/sizes.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../pgtable/types.ts";
import type { IoptAccessHook, IoptArea } from "./io-pagetable.ts";
import { getIoas, type IommufdIoas } from "./ioas.ts";
import { IommufdObject, type IommufdCtx } from "./object.ts";
import { ULONG_MAX } from "./uapi.ts";

/** IOMMUFD_ACCESS_RW_WRITE */
export const IOMMUFD_ACCESS_RW_WRITE = 1 << 0;

export interface AccessOps {
  readonly needsPinPages: boolean;
  /** Called when [iova, iova+length) is being unmapped: drop every pin in it. */
  unmap(iova: number, length: number): void;
}

export class IommufdAccess extends IommufdObject implements IoptAccessHook {
  readonly type = "ACCESS" as const;
  ioas: IommufdIoas | null = null;
  constructor(readonly ops: AccessOps) {
    super();
  }

  get iovaAlignment(): number {
    return this.ops.needsPinPages ? PAGE_SIZE : 1;
  }

  unmap(iova: number, length: number): void {
    this.ops.unmap(iova, length);
  }

  destroy(): void {
    // @kernel: iommufd_access_destroy_object
    if (this.ioas !== null) accessDetachIoas(this);
  }
}

function accessDetachIoas(a: IommufdAccess): void {
  const ioas = a.ioas!;
  const list = ioas.iopt.accesses;
  list.splice(list.indexOf(a), 1);
  ioas.iopt.calculateIovaAlignment();
  ioas.users--;
  a.ioas = null;
}

// @kernel: iommufd_access_create
export function iommufdAccessCreate(ictx: IommufdCtx, ops: AccessOps): IommufdAccess | KError {
  const a = ictx.add(new IommufdAccess(ops));
  if (isErr(a)) return a;
  // The driver's reference.
  a.users++;
  return a;
}

/** Attaches (or moves) the access to an IOAS (iommufd_access_attach / iommufd_access_replace). */
// @kernel: iommufd_access_change_ioas_id
export function iommufdAccessChangeIoas(ictx: IommufdCtx, a: IommufdAccess, ioasId: number): 0 | KError {
  const ioas = getIoas(ictx, ioasId);
  if (isErr(ioas)) return ioas;
  if (a.ioas === ioas) return 0;
  const list = ioas.iopt.accesses;
  // @kernel: iopt_add_access
  list.push(a);
  const rc = ioas.iopt.calculateIovaAlignment();
  if (rc !== 0) {
    list.pop();
    return rc;
  }
  ioas.users++;
  if (a.ioas !== null) {
    // Every pin of the old IOAS goes through the unmap callback first.
    a.ops.unmap(0, ULONG_MAX);
    accessDetachIoas(a);
  }
  a.ioas = ioas;
  return 0;
}

/** Releases the driver's reference and destroys the access. */
// @kernel: iommufd_access_destroy
export function iommufdAccessDestroy(ictx: IommufdCtx, a: IommufdAccess): void {
  a.users--;
  ictx.remove(a.id);
}

interface Piece {
  area: IoptArea;
  /** First IOVA of the piece, and its length. */
  iova: number;
  length: number;
}

/** The areas covering [iova, last] contiguously (iopt_for_each_contig_area), or ENOENT. */
function contigPieces(a: IommufdAccess, iova: number, last: number): Piece[] | KError {
  const iopt = a.ioas!.iopt;
  const out: Piece[] = [];
  let cur = iova;
  for (const area of iopt.areasIn(iova, last)) {
    if (area.iova > cur) break;
    const end = Math.min(area.last, last);
    out.push({ area, iova: cur, length: end - cur + 1 });
    cur = end + 1;
  }
  if (cur <= last) return kerr("ENOENT", `[0x${iova.toString(16)}, 0x${last.toString(16)}] is not wholly mapped`);
  return out;
}

function pageIndexOf(area: IoptArea, iova: number): number {
  return Math.floor((area.pagesByte + (iova - area.iova)) / PAGE_SIZE);
}

// @kernel: iommufd_access_pin_pages
export function iommufdAccessPinPages(a: IommufdAccess, iova: number, length: number, write: boolean): 0 | KError {
  if (length === 0) return kerr("EINVAL", "a pin of length 0");
  const last = iova + length - 1;
  if (last >= ULONG_MAX) return kerr("EOVERFLOW", "iova + length overflows");
  if (a.ioas === null) return kerr("ENOENT", "the access is not attached to an IOAS");
  const pieces = contigPieces(a, iova, last);
  if (isErr(pieces)) return pieces;
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    // @kernel: iopt_area_contig_is_aligned
    const startByte = p.area.pagesByte + (p.iova - p.area.iova);
    if ((i > 0 && startByte % PAGE_SIZE !== 0) || (i < pieces.length - 1 && (startByte + p.length) % PAGE_SIZE !== 0)) {
      return kerr("EINVAL", "the pinned range crosses areas off page boundaries");
    }
    if (write ? (p.area.iommuProt & IOMMU_WRITE) === 0 : (p.area.iommuProt & IOMMU_READ) === 0) return kerr("EPERM", "the area does not allow that access");
    // A dma-buf has no struct pages to pin.
    if (p.area.pages.dmabuf !== null) return kerr("EINVAL", "the range is mapped from a dma-buf: it has no pages to pin");
  }
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    const rc = p.area.pages.addUsers(pageIndexOf(p.area, p.iova), pageIndexOf(p.area, p.iova + p.length - 1));
    if (rc !== 0) {
      for (let j = 0; j < i; j++) unpinPiece(pieces[j]!);
      return rc;
    }
    p.area.numAccesses++;
  }
  return 0;
}

function unpinPiece(p: Piece): void {
  p.area.pages.dropUsers(pageIndexOf(p.area, p.iova), pageIndexOf(p.area, p.iova + p.length - 1));
  p.area.numAccesses--;
}

// @kernel: iommufd_access_unpin_pages
export function iommufdAccessUnpinPages(a: IommufdAccess, iova: number, length: number): void {
  if (a.ioas === null || length === 0) return;
  const pieces = contigPieces(a, iova, iova + length - 1);
  if (isErr(pieces)) return;
  for (const p of pieces) unpinPiece(p);
}

// @kernel: iommufd_access_rw
export function iommufdAccessRw(a: IommufdAccess, iova: number, data: Uint8Array, length: number, flags: number): 0 | KError {
  if (length === 0) return kerr("EINVAL", "an access of length 0");
  const last = iova + length - 1;
  if (last >= ULONG_MAX) return kerr("EOVERFLOW", "iova + length overflows");
  if (a.ioas === null) return kerr("ENOENT", "the access is not attached to an IOAS");
  const write = (flags & IOMMUFD_ACCESS_RW_WRITE) !== 0;
  const iopt = a.ioas.iopt;
  let cur = iova;
  let done = 0;
  // Check coverage and permission first: a failed access copies nothing.
  for (let area = iopt.areaIterFirst(cur, last); cur <= last; area = iopt.areaIterFirst(cur, last)) {
    if (area === null || area.iova > cur) return kerr("ENOENT", `0x${cur.toString(16)} is not mapped`);
    if (write && (area.iommuProt & IOMMU_WRITE) === 0) return kerr("EPERM", "a write into an area that is not writeable");
    // @kernel: iopt_pages_rw_access (a dma-buf is physical ranges the CPU does not reach through iommufd)
    if (area.pages.dmabuf !== null) return kerr("EINVAL", `0x${cur.toString(16)} is mapped from a dma-buf: an access cannot read or write it`);
    cur = area.last + 1;
  }
  cur = iova;
  while (cur <= last) {
    const area = iopt.areaIterFirst(cur, last)!;
    const pages = area.pages;
    const phys = pages.phys;
    const end = Math.min(area.last, last);
    while (cur <= end) {
      const off = area.pagesByte + (cur - area.iova);
      const idx = Math.floor(off / PAGE_SIZE);
      const inPage = off - idx * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - inPage, end - cur + 1);
      const pfn = pages.peekPfn(idx);
      if (pfn < 0) return kerr("EFAULT", "the memory behind the IOVA is gone");
      const seg = phys.seg(pfn);
      const so = phys.segOffset(pfn) + inPage;
      if (write) seg.set(data.subarray(done, done + n), so);
      else data.set(seg.subarray(so, so + n), done);
      done += n;
      cur += n;
    }
  }
  return 0;
}
