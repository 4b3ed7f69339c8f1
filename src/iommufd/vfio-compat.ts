/**
 * The VFIO type1 container ioctls iommufd answers (vfio_compat.c) on the
 * compat IOAS (IOMMU_VFIO_IOAS SET): API version, extensions, SET_IOMMU,
 * MAP_DMA and UNMAP_DMA (type1v2: whole areas only; type1, which gives up
 * huge pages, may cut an area). GET_INFO checks its arguments; its
 * capability chain is not modelled.
 */
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { IoPagetable } from "./io-pagetable.ts";
import { IommufdIoas } from "./ioas.ts";
import type { IommufdCtx } from "./object.ts";
import { IoptPages } from "./pages.ts";
import { ULONG_MAX } from "./uapi.ts";
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
    case VFIO_IOMMU_GET_INFO: {
      // @kernel: iommufd_vfio_iommu_get_info
      if (arg === null || typeof arg !== "object") return kerr("EFAULT", "bad argument");
      const info = arg as VfioIommuType1Info;
      if (info.argsz < 16) return kerr("EINVAL", "argsz too small");
      const ioas = compatIoas(ictx);
      if (isErr(ioas)) return ioas;
      return kerr("ENOTTY", "VFIO_IOMMU_GET_INFO's capability chain is not modelled");
    }
    default:
      return kerr("ENOTTY", `no VFIO ioctl ${nr}`);
  }
}
