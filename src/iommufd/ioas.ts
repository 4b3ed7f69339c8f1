/**
 * The IOAS object and its ioctls (ioas.c): ALLOC, MAP, MAP_FILE, UNMAP,
 * COPY, IOVA_RANGES, ALLOW_IOVAS, CHANGE_PROCESS, and IOMMU_OPTION.
 * Each validates in the kernel's order and changes nothing on failure
 * (IOAS_UNMAP across several areas excepted, as in the kernel).
 */
import { kerr, type KError } from "../lib/errno.ts";
import { DmaBuf } from "./dmabuf.ts";
import { IoPagetable, type IovaRange, type PagesElm } from "./io-pagetable.ts";
import { IommufdObject, type IommufdCtx } from "./object.ts";
import { IoptPages } from "./pages.ts";
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  U64_MAX,
  ULONG_MAX,
  type IommuIoasAlloc,
  type IommuIoasAllowIovas,
  type IommuIoasChangeProcess,
  type IommuIoasCopy,
  type IommuIoasIovaRanges,
  type IommuIoasMap,
  type IommuIoasMapFile,
  type IommuIoasUnmap,
  type IommuOption,
} from "./uapi.ts";
import type { MemFile, Mm } from "./user-memory.ts";

/** Something attached to an IOAS that lives on its hwpt list (a HWPT_PAGING). */
export interface IoasHwpt {
  readonly autoDomain: boolean;
}

export class IommufdIoas extends IommufdObject {
  readonly type = "IOAS" as const;
  readonly iopt = new IoPagetable();
  /** HWPT_PAGINGs built on this IOAS (ioas->hwpt_list), auto domains among them. */
  readonly hwptList: IoasHwpt[] = [];

  destroy(): void {
    // @kernel: iommufd_ioas_destroy (iopt_destroy_table: every area goes)
    this.iopt.unmapIovaRange(0, ULONG_MAX);
  }
}

const MAP_FLAGS = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

function protOf(flags: number): number {
  return IoPagetable.protOf((flags & IOMMU_IOAS_MAP_READABLE) !== 0, (flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0);
}

export function getIoas(ictx: IommufdCtx, id: number): IommufdIoas | KError {
  return ictx.get(id, "IOAS") as IommufdIoas | KError;
}

// @kernel: iommufd_ioas_alloc_ioctl
export function ioasAllocIoctl(ictx: IommufdCtx, cmd: IommuIoasAlloc): 0 | KError {
  if (cmd.flags !== 0) return kerr("EOPNOTSUPP", "IOMMU_IOAS_ALLOC takes no flags");
  const ioas = ictx.add(new IommufdIoas());
  if (!(ioas instanceof IommufdIoas)) return ioas;
  ioas.iopt.shouldFail = () => ictx.shouldFail();
  cmd.out_ioas_id = ioas.id;
  return 0;
}

// @kernel: iommufd_ioas_map
export function ioasMapIoctl(ictx: IommufdCtx, cmd: IommuIoasMap, mm: Mm = ictx.mm): 0 | KError {
  if ((cmd.flags & ~MAP_FLAGS) !== 0 || cmd.__reserved !== 0) return kerr("EOPNOTSUPP", "unknown flags or a non-zero __reserved");
  if (cmd.iova >= ULONG_MAX || cmd.length >= ULONG_MAX) return kerr("EOVERFLOW", "iova or length does not fit");
  if ((cmd.flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)) === 0) return kerr("EINVAL", "a map must be READABLE, WRITEABLE or both");
  const ioas = getIoas(ictx, cmd.ioas_id);
  if (!(ioas instanceof IommufdIoas)) return ioas;
  // @kernel: iopt_map_user_pages
  if (cmd.length === 0) return kerr("EINVAL", "a map of length 0");
  if (cmd.user_va + cmd.length - 1 >= ULONG_MAX) return kerr("EOVERFLOW", "user_va + length overflows");
  return mapNewPages(ictx, ioas, cmd, mm, null, cmd.user_va);
}

/**
 * IOAS_MAP and IOAS_MAP_FILE once their arguments are checked: pages over
 * the user range (or the file's), mapped at cmd.iova (FIXED_IOVA) or at an
 * allocated IOVA, which goes back in cmd.iova.
 */
function mapNewPages(ictx: IommufdCtx, ioas: IommufdIoas, cmd: { flags: number; iova: number; length: number }, mm: Mm, file: MemFile | null, start: number): 0 | KError {
  const pages = new IoptPages(ictx.env.phys, mm, file, start, cmd.length, (cmd.flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0, ictx.accountMode === "mm");
  const fixed = (cmd.flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
  const r = ioas.iopt.mapPages([{ pages, pagesByte: pages.pageOffset, length: cmd.length }], cmd.length, cmd.iova, fixed, start, protOf(cmd.flags));
  if (typeof r !== "number") return r;
  cmd.iova = r;
  return 0;
}

/** The model's file table: fd → memfd (what IOAS_MAP_FILE resolves). */
export type FileTable = ReadonlyMap<number, MemFile>;

// @kernel: iommufd_ioas_map_file
export function ioasMapFileIoctl(ictx: IommufdCtx, cmd: IommuIoasMapFile, files: FileTable, mm: Mm = ictx.mm): 0 | KError {
  if ((cmd.flags & ~MAP_FLAGS) !== 0) return kerr("EOPNOTSUPP", "unknown flags");
  if (cmd.iova >= ULONG_MAX || cmd.length >= ULONG_MAX) return kerr("EOVERFLOW", "iova or length does not fit");
  if ((cmd.flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)) === 0) return kerr("EINVAL", "a map must be READABLE, WRITEABLE or both");
  const ioas = getIoas(ictx, cmd.ioas_id);
  if (!(ioas instanceof IommufdIoas)) return ioas;
  const file = files.get(cmd.fd);
  if (file === undefined) return kerr("EBADF", `fd ${cmd.fd} is not open`);
  // @kernel: iopt_alloc_file_pages
  if (cmd.length === 0) return kerr("EINVAL", "a map of length 0");
  if (cmd.start + cmd.length > file.size) return kerr("EINVAL", `[${cmd.start}, +${cmd.length}) lies beyond the file's ${file.size} bytes`);
  // @kernel: iopt_map_dmabuf (the exporter refuses a revoked buffer)
  if (file instanceof DmaBuf && file.revoked) return kerr("ENODEV", `the dma-buf behind fd ${cmd.fd} is revoked`);
  return mapNewPages(ictx, ioas, cmd, mm, file, cmd.start);
}

// @kernel: iommufd_ioas_unmap
export function ioasUnmapIoctl(ictx: IommufdCtx, cmd: IommuIoasUnmap): 0 | KError {
  const ioas = getIoas(ictx, cmd.ioas_id);
  if (!(ioas instanceof IommufdIoas)) return ioas;
  let r: number | KError;
  if (cmd.iova === 0 && cmd.length >= U64_MAX) {
    // @kernel: iopt_unmap_all
    r = ioas.iopt.unmapIovaRange(0, ULONG_MAX);
  } else {
    if (cmd.iova >= ULONG_MAX || cmd.length >= ULONG_MAX) return kerr("EOVERFLOW", "iova or length does not fit");
    // @kernel: iopt_unmap_iova
    if (cmd.length === 0) return kerr("EINVAL", "an unmap of length 0");
    if (cmd.iova + cmd.length - 1 >= ULONG_MAX) return kerr("EOVERFLOW", "iova + length overflows");
    r = ioas.iopt.unmapIovaRange(cmd.iova, cmd.iova + cmd.length - 1);
    if (r === 0) return kerr("ENOENT", `nothing is mapped in [0x${cmd.iova.toString(16)}, +0x${cmd.length.toString(16)})`);
  }
  if (typeof r !== "number") return r;
  cmd.length = r;
  return 0;
}

// @kernel: iommufd_ioas_copy
export function ioasCopyIoctl(ictx: IommufdCtx, cmd: IommuIoasCopy): 0 | KError {
  if ((cmd.flags & ~MAP_FLAGS) !== 0) return kerr("EOPNOTSUPP", "unknown flags");
  if (cmd.length >= ULONG_MAX || cmd.src_iova >= ULONG_MAX || cmd.dst_iova >= ULONG_MAX) return kerr("EOVERFLOW", "length or an IOVA does not fit");
  if ((cmd.flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)) === 0) return kerr("EINVAL", "a copy must be READABLE, WRITEABLE or both");
  const src = getIoas(ictx, cmd.src_ioas_id);
  if (!(src instanceof IommufdIoas)) return src;
  const elms = src.iopt.getPages(cmd.src_iova, cmd.length);
  if (!Array.isArray(elms)) return elms as KError;
  const dst = getIoas(ictx, cmd.dst_ioas_id);
  if (!(dst instanceof IommufdIoas)) return dst;
  const first = (elms as PagesElm[])[0]!;
  const uptr = first.pages.base + first.pagesByte;
  const r = dst.iopt.mapPages(elms as PagesElm[], cmd.length, cmd.dst_iova, (cmd.flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0, uptr, protOf(cmd.flags));
  if (typeof r !== "number") return r;
  cmd.dst_iova = r;
  return 0;
}

// @kernel: iommufd_ioas_iova_ranges
export function ioasIovaRangesIoctl(ictx: IommufdCtx, cmd: IommuIoasIovaRanges): 0 | KError {
  if (cmd.__reserved !== 0) return kerr("EOPNOTSUPP", "__reserved must be 0");
  const ioas = getIoas(ictx, cmd.ioas_id);
  if (!(ioas instanceof IommufdIoas)) return ioas;
  const ranges = ioas.iopt.iovaRanges();
  const cap = cmd.num_iovas;
  for (let i = 0; i < ranges.length && i < cap; i++) {
    if (cmd.allowed_iovas === null) return kerr("EFAULT", "allowed_iovas is NULL");
    cmd.allowed_iovas[i] = { ...ranges[i]! };
  }
  cmd.num_iovas = ranges.length;
  cmd.out_iova_alignment = ioas.iopt.iovaAlignment;
  if (ranges.length > cap) return kerr("EMSGSIZE", `${ranges.length} ranges do not fit in ${cap}`);
  return 0;
}

// @kernel: iommufd_ioas_allow_iovas
export function ioasAllowIovasIoctl(ictx: IommufdCtx, cmd: IommuIoasAllowIovas): 0 | KError {
  if (cmd.__reserved !== 0) return kerr("EOPNOTSUPP", "__reserved must be 0");
  const ioas = getIoas(ictx, cmd.ioas_id);
  if (!(ioas instanceof IommufdIoas)) return ioas;
  const ranges: IovaRange[] = [];
  for (let i = 0; i < cmd.num_iovas; i++) {
    const r = cmd.allowed_iovas?.[i];
    if (r === undefined) return kerr("EFAULT", "allowed_iovas cannot be read");
    if (r.start >= r.last) return kerr("EINVAL", `range [0x${r.start.toString(16)}, 0x${r.last.toString(16)}] is empty or reversed`);
    for (const o of ranges) if (o.start <= r.last && o.last >= r.start) return kerr("EINVAL", "the allowed ranges overlap");
    ranges.push({ start: r.start, last: r.last });
  }
  return ioas.iopt.setAllowIova(ranges);
}

// @kernel: iommufd_ioas_change_process
export function ioasChangeProcessIoctl(ictx: IommufdCtx, cmd: IommuIoasChangeProcess, mm: Mm = ictx.mm): 0 | KError {
  if (cmd.__reserved !== 0) return kerr("EOPNOTSUPP", "__reserved must be 0");
  const all: IoptPages[] = [];
  for (const o of ictx.live()) {
    if (!(o instanceof IommufdIoas)) continue;
    for (const a of o.iopt.areas) {
      if (a.pages.file === null) return kerr("EINVAL", "an area maps user memory, not a file: only file maps can change process");
      if (!all.includes(a.pages)) all.push(a.pages);
    }
  }
  for (const p of all) {
    const n = p.pinnedPages();
    p.accountMm.pinnedVm -= n;
    mm.pinnedVm += n;
    if (p.lockAccount) {
      p.accountMm.lockedVm -= n;
      mm.lockedVm += n;
    }
    p.accountMm = mm;
  }
  return 0;
}

// @kernel: iommufd_option
export function optionIoctl(ictx: IommufdCtx, cmd: IommuOption, privileged: boolean): 0 | KError {
  if (cmd.__reserved !== 0) return kerr("EOPNOTSUPP", "__reserved must be 0");
  if (cmd.op !== IOMMU_OPTION_OP_GET && cmd.op !== IOMMU_OPTION_OP_SET) return kerr("EOPNOTSUPP", `unknown op ${cmd.op}`);
  if (cmd.option_id === IOMMU_OPTION_RLIMIT_MODE) {
    // @kernel: iommufd_option_rlimit_mode
    if (cmd.object_id !== 0) return kerr("EOPNOTSUPP", "RLIMIT_MODE is global: object_id must be 0");
    if (cmd.op === IOMMU_OPTION_OP_GET) {
      cmd.val64 = ictx.accountMode === "mm" ? 1 : 0;
      return 0;
    }
    if (!privileged) return kerr("EPERM", "setting RLIMIT_MODE needs CAP_SYS_RESOURCE");
    if (!ictx.empty) return kerr("EBUSY", "objects exist: RLIMIT_MODE can only change on an empty context");
    if (cmd.val64 === 0) ictx.accountMode = "user";
    else if (cmd.val64 === 1) ictx.accountMode = "mm";
    else return kerr("EINVAL", `RLIMIT_MODE takes 0 or 1, not ${cmd.val64}`);
    return 0;
  }
  if (cmd.option_id === IOMMU_OPTION_HUGE_PAGES) {
    // @kernel: iommufd_ioas_option
    const ioas = getIoas(ictx, cmd.object_id);
    if (!(ioas instanceof IommufdIoas)) return ioas;
    const iopt = ioas.iopt;
    if (cmd.op === IOMMU_OPTION_OP_GET) {
      cmd.val64 = iopt.disableLargePages ? 0 : 1;
      return 0;
    }
    if (cmd.val64 === 0) return iopt.disableLargePagesNow();
    if (cmd.val64 === 1) {
      // @kernel: iopt_enable_large_pages
      iopt.disableLargePages = false;
      return iopt.calculateIovaAlignment();
    }
    return kerr("EINVAL", `HUGE_PAGES takes 0 or 1, not ${cmd.val64}`);
  }
  return kerr("EOPNOTSUPP", `unknown option ${cmd.option_id}`);
}
