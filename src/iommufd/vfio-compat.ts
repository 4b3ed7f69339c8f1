/**
 * The VFIO type1 container ioctls iommufd answers (vfio_compat.c) on the
 * compat IOAS (IOMMU_VFIO_IOAS SET): API version, extensions, SET_IOMMU,
 * MAP_DMA and UNMAP_DMA (type1v2: whole areas only; type1, which gives up
 * huge pages, may cut an area), and GET_INFO with its capability chain
 * (DMA_AVAIL, then IOVA_RANGE) written into the caller's buffer as the
 * kernel lays it out.
 */
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { IoPagetable } from "./io-pagetable.ts";
import { IommufdIoas } from "./ioas.ts";
import type { IommufdCtx } from "./object.ts";
import { IoptPages } from "./pages.ts";
import { U64_MAX, ULONG_MAX } from "./uapi.ts";
import { PAGE_SIZE } from "../pgtable/sizes.ts";
import type { Mm } from "./user-memory.ts";

/** _IO(VFIO_TYPE, VFIO_BASE + n) numbers, VFIO_BASE = 100. */
export const VFIO_GET_API_VERSION = 100;
export const VFIO_CHECK_EXTENSION = 101;
export const VFIO_SET_IOMMU = 102;
export const VFIO_IOMMU_GET_INFO = 112;
export const VFIO_IOMMU_MAP_DMA = 113;
export const VFIO_IOMMU_UNMAP_DMA = 114;

export const VFIO_API_VERSION = 0;
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;
/** sizeof(struct vfio_iommu_type1_info): argsz, flags, iova_pgsizes (u64), cap_offset, pad. */
export const VFIO_IOMMU_TYPE1_INFO_SIZE = 24;
/** offsetofend(struct vfio_iommu_type1_info, iova_pgsizes). */
const INFO_MINSZ = 16;
/** sizeof(struct vfio_iommu_type1_info_dma_avail): header (id u16, version u16, next u32), avail u32. */
const CAP_DMA_AVAIL_SIZE = 12;
/** sizeof(struct vfio_iommu_type1_info_cap_iova_range) without its ranges: header, nr_iovas, reserved. */
const CAP_IOVA_RANGE_SIZE = 16;
/** sizeof(struct vfio_iova_range): start, end (u64 each). */
const IOVA_RANGE_SIZE = 16;

export interface VfioIommuType1DmaMap {
  argsz: number;
  flags: number;
  vaddr: number;
  iova: number;
  size: number;
}
export interface VfioIommuType1DmaUnmap {
  argsz: number;
  flags: number;
  iova: number;
  size: number;
}
export interface VfioIommuType1Info {
  argsz: number;
  flags: number;
  iova_pgsizes: number;
  cap_offset: number;
}

// @kernel: get_compat_ioas
function compatIoas(ictx: IommufdCtx): IommufdIoas | KError {
  const o = ictx.vfioIoas;
  if (!(o instanceof IommufdIoas)) return kerr("ENODEV", "no IOAS is set for VFIO compatibility");
  return o;
}

// @kernel: iommufd_vfio_map_dma
function mapDma(ictx: IommufdCtx, m: VfioIommuType1DmaMap, mm: Mm): 0 | KError {
  if (m.argsz < 32 || (m.flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) !== 0) return kerr("EINVAL", "argsz too small or unknown flags");
  const ioas = compatIoas(ictx);
  if (isErr(ioas)) return ioas;
  // @kernel: iopt_map_user_pages (as IOAS_MAP: EINVAL for length 0, EOVERFLOW when vaddr + size wraps)
  if (m.size === 0) return kerr("EINVAL", "a map of size 0");
  if (m.vaddr + m.size - 1 >= ULONG_MAX) return kerr("EOVERFLOW", "vaddr + size overflows");
  const pages = new IoptPages(ictx.env.phys, mm, null, m.vaddr, m.size, (m.flags & VFIO_DMA_MAP_FLAG_WRITE) !== 0, ictx.accountMode === "mm");
  const prot = IoPagetable.protOf((m.flags & VFIO_DMA_MAP_FLAG_READ) !== 0, (m.flags & VFIO_DMA_MAP_FLAG_WRITE) !== 0);
  const r = ioas.iopt.mapPages([{ pages, pagesByte: pages.pageOffset, length: m.size }], m.size, m.iova, true, m.vaddr, prot);
  return typeof r === "number" ? 0 : r;
}

// @kernel: iommufd_vfio_unmap_dma
function unmapDma(ictx: IommufdCtx, u: VfioIommuType1DmaUnmap): 0 | KError {
  if (u.argsz < 24 || (u.flags & ~VFIO_DMA_UNMAP_FLAG_ALL) !== 0) return kerr("EINVAL", "argsz too small or unknown flags");
  const ioas = compatIoas(ictx);
  if (isErr(ioas)) return ioas;
  let r: number | KError;
  if ((u.flags & VFIO_DMA_UNMAP_FLAG_ALL) !== 0) {
    if (u.iova !== 0 || u.size !== 0) return kerr("EINVAL", "VFIO_DMA_UNMAP_FLAG_ALL takes iova 0 and size 0");
    r = ioas.iopt.unmapIovaRange(0, ULONG_MAX);
  } else {
    if (u.size === 0) return kerr("EINVAL", "an unmap of size 0");
    if (u.iova + u.size - 1 >= ULONG_MAX) return kerr("EOVERFLOW", "iova + size overflows");
    if (ioas.iopt.disableLargePages) {
      // Type1 lets an unmap cut a mapping: cut at both ends of the range first.
      const rc = ioas.iopt.cutIova(u.iova !== 0 ? [u.iova + u.size - 1, u.iova - 1] : [u.iova + u.size - 1]);
      if (rc !== 0) return rc;
    }
    r = ioas.iopt.unmapIovaRange(u.iova, u.iova + u.size - 1);
  }
  if (isErr(r)) return r;
  u.size = r;
  return 0;
}

/**
 * One VFIO container ioctl on the context (`arg`: the integer argument, or
 * the struct). The call's value (the API version, an extension's answer, 0),
 * or the errno.
 */
// @kernel: iommufd_vfio_ioctl
export function iommufdVfioIoctl(ictx: IommufdCtx, nr: number, arg: number | object | null, mm: Mm = ictx.mm): number | KError {
  switch (nr) {
    case VFIO_GET_API_VERSION:
      return VFIO_API_VERSION;
    case VFIO_CHECK_EXTENSION:
      return arg === VFIO_TYPE1_IOMMU || arg === VFIO_TYPE1v2_IOMMU || arg === VFIO_UNMAP_ALL ? 1 : 0;
    case VFIO_SET_IOMMU: {
      // @kernel: iommufd_vfio_set_iommu
      const ioas = compatIoas(ictx);
      if (isErr(ioas)) return ioas;
      if (arg !== VFIO_TYPE1_IOMMU && arg !== VFIO_TYPE1v2_IOMMU) return kerr("EINVAL", `unsupported IOMMU type ${String(arg)}`);
      // Type1 can split mappings: the IOAS gives up huge pages.
      if (arg === VFIO_TYPE1_IOMMU) return ioas.iopt.disableLargePagesNow();
      return 0;
    }
    case VFIO_IOMMU_MAP_DMA:
      if (arg === null || typeof arg !== "object") return kerr("EFAULT", "bad argument");
      return mapDma(ictx, arg as VfioIommuType1DmaMap, mm);
    case VFIO_IOMMU_UNMAP_DMA:
      if (arg === null || typeof arg !== "object") return kerr("EFAULT", "bad argument");
      return unmapDma(ictx, arg as VfioIommuType1DmaUnmap);
    case VFIO_IOMMU_GET_INFO:
      if (arg instanceof Uint8Array) return getInfo(ictx, arg);
      if (arg === null || typeof arg !== "object") return kerr("EFAULT", "bad argument");
      return getInfoStruct(ictx, arg as VfioIommuType1Info);
    default:
      return kerr("ENOTTY", `no VFIO ioctl ${nr}`);
  }
}

/** A u64 field's bytes: the model's U64_MAX (a double's 2^64) is 2^64 - 1. */
function putU64(v: DataView, at: number, x: number): void {
  v.setBigUint64(at, x >= U64_MAX ? 0xffff_ffff_ffff_ffffn : BigInt(x), true);
}

/** The page sizes every domain of the IOAS can map, as VFIO reports them. */
// @kernel: iommufd_get_pagesizes
function getPagesizes(ioas: IommufdIoas): bigint {
  let bitmap = 0xffff_ffff_ffff_ffffn;
  for (const d of ioas.iopt.domains) {
    let b = 0n;
    for (const sz of d.pgsizes) b |= BigInt(sz);
    bitmap &= b;
  }
  // Sizes below PAGE_SIZE fold into PAGE_SIZE (vfio_update_pgsize_bitmap).
  const pageMask = ~BigInt(PAGE_SIZE - 1) & 0xffff_ffff_ffff_ffffn;
  if ((bitmap & ~pageMask) !== 0n) bitmap = (bitmap & pageMask) | BigInt(PAGE_SIZE);
  const align = BigInt(ioas.iopt.iovaAlignment);
  return bitmap > align ? bitmap : align;
}

/** Writes the DMA_AVAIL capability at `at` when `avail` bytes hold it; its size. */
// @kernel: iommufd_fill_cap_dma_avail
function fillCapDmaAvail(v: DataView, at: number, avail: number): number {
  if (avail >= CAP_DMA_AVAIL_SIZE) {
    v.setUint16(at, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, true);
    v.setUint16(at + 2, 1, true);
    v.setUint32(at + 4, 0, true);
    // iommufd's limit is the memory cgroup's: it reports U32_MAX.
    v.setUint32(at + 8, 0xffff_ffff, true);
  }
  return CAP_DMA_AVAIL_SIZE;
}

/** Writes the IOVA_RANGE capability (the holes of the reserved ranges), each range only where it fits; its full size. */
// @kernel: iommufd_fill_cap_iova
function fillCapIova(ioas: IommufdIoas, v: DataView, at: number, avail: number): number {
  const ranges = ioas.iopt.iovaRanges();
  ranges.forEach((r, i) => {
    if (avail >= CAP_IOVA_RANGE_SIZE + (i + 1) * IOVA_RANGE_SIZE) {
      putU64(v, at + CAP_IOVA_RANGE_SIZE + i * IOVA_RANGE_SIZE, r.start);
      putU64(v, at + CAP_IOVA_RANGE_SIZE + i * IOVA_RANGE_SIZE + 8, r.last);
    }
  });
  const size = CAP_IOVA_RANGE_SIZE + ranges.length * IOVA_RANGE_SIZE;
  if (avail >= size) {
    v.setUint16(at, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, true);
    v.setUint16(at + 2, 1, true);
    v.setUint32(at + 4, 0, true);
    v.setUint32(at + 8, ranges.length, true);
    v.setUint32(at + 12, 0, true);
  }
  return size;
}

/**
 * VFIO_IOMMU_GET_INFO on the caller's memory: `buf` holds struct
 * vfio_iommu_type1_info and the room after it (its argsz says how much the
 * kernel may write). The struct's first min(argsz, 24) bytes are written
 * back; the capabilities go after it, each only where it fits whole, each
 * `next` set only when the capability it points to fits too; argsz comes
 * back as the size of the whole answer, cap_offset 0 when the chain did not fit.
 */
// @kernel: iommufd_vfio_iommu_get_info
function getInfo(ictx: IommufdCtx, buf: Uint8Array): 0 | KError {
  if (buf.length < INFO_MINSZ) return kerr("EFAULT", "the buffer does not hold struct vfio_iommu_type1_info up to iova_pgsizes");
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const argsz = v.getUint32(0, true);
  if (argsz < INFO_MINSZ) return kerr("EINVAL", `argsz ${argsz} is below ${INFO_MINSZ}`);
  if (argsz > buf.length) return kerr("EFAULT", `argsz ${argsz} runs past the ${buf.length}-byte buffer`);
  const ioas = compatIoas(ictx);
  if (isErr(ioas)) return ioas;
  let total = VFIO_IOMMU_TYPE1_INFO_SIZE;
  let lastCap = -1;
  for (let i = 0; i < 2; i++) {
    const avail = argsz > total ? argsz - total : 0;
    const filled = i === 0 ? fillCapDmaAvail(v, total, avail) : fillCapIova(ioas, v, total, avail);
    // Each capability starts on an 8-byte boundary (ALIGN(cap_size, sizeof(u64))).
    const size = Math.ceil(filled / 8) * 8;
    if (lastCap >= 0 && argsz >= total) v.setUint32(lastCap + 4, total, true);
    lastCap = total;
    total += size;
  }
  const minsz = Math.min(argsz, VFIO_IOMMU_TYPE1_INFO_SIZE);
  const info = new DataView(new ArrayBuffer(VFIO_IOMMU_TYPE1_INFO_SIZE));
  info.setUint32(0, total, true);
  info.setUint32(4, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS, true);
  info.setBigUint64(8, getPagesizes(ioas), true);
  info.setUint32(16, argsz >= total ? VFIO_IOMMU_TYPE1_INFO_SIZE : 0, true);
  buf.set(new Uint8Array(info.buffer, 0, minsz), 0);
  return 0;
}

/** GET_INFO with the struct as an object (no room past it for capabilities: argsz above its size is EFAULT). */
function getInfoStruct(ictx: IommufdCtx, info: VfioIommuType1Info): 0 | KError {
  const buf = new Uint8Array(VFIO_IOMMU_TYPE1_INFO_SIZE);
  const v = new DataView(buf.buffer);
  v.setUint32(0, Math.min(info.argsz, 0xffff_ffff), true);
  if (info.argsz < INFO_MINSZ) return kerr("EINVAL", `argsz ${info.argsz} is below ${INFO_MINSZ}`);
  if (info.argsz > VFIO_IOMMU_TYPE1_INFO_SIZE) return kerr("EFAULT", "the struct has no room after it for the capability chain: pass a buffer");
  const argsz = info.argsz;
  const rc = getInfo(ictx, buf);
  if (rc !== 0) return rc;
  info.argsz = v.getUint32(0, true);
  info.flags = v.getUint32(4, true);
  info.iova_pgsizes = Number(v.getBigUint64(8, true));
  if (argsz >= 20) info.cap_offset = v.getUint32(16, true);
  return 0;
}
