/**
 * /dev/iommu (main.c): open and close of a context, and the ioctl
 * framing: unknown numbers are ENOTTY, a NULL argument EFAULT, `size`
 * below the struct's minimum EINVAL, non-zero bytes past the kernel's
 * struct E2BIG (copy_struct_from_user); a short struct reads as zeros past
 * `size`, and only the first `size` bytes are written back.
 */
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { closeFd } from "./fd.ts";
import { faultAllocIoctl } from "./fault.ts";
import { hwQueueAllocIoctl } from "./hw-queue.ts";
import { veventqAllocIoctl } from "./veventq.ts";
import { vdeviceAllocIoctl } from "./vdevice.ts";
import { hwptGetDirtyBitmapIoctl, hwptSetDirtyTrackingIoctl } from "./dirty.ts";
import { getHwInfoIoctl } from "./hw-info.ts";
import { hwptAllocIoctl } from "./hwpt-alloc.ts";
import { hwptInvalidateIoctl, viommuAllocIoctl } from "./viommu.ts";
import {
  getIoas,
  ioasAllocIoctl,
  ioasAllowIovasIoctl,
  ioasChangeProcessIoctl,
  ioasCopyIoctl,
  ioasIovaRangesIoctl,
  ioasMapFileIoctl,
  ioasMapIoctl,
  ioasUnmapIoctl,
  optionIoctl,
} from "./ioas.ts";
import { IommufdCtx, type IommufdEnv } from "./object.ts";
import * as U from "./uapi.ts";
import type { Mm } from "./user-memory.ts";

/** Opens /dev/iommu in process `mm`. */
// @kernel: iommufd_fops_open
export function iommufdOpen(env: IommufdEnv, mm: Mm): IommufdCtx {
  return new IommufdCtx(env, mm);
}

/** Closes the context: access fds first, then objects leaf-first (those only the table holds) until none are left. */
// @kernel: iommufd_fops_release
export function iommufdClose(ictx: IommufdCtx): void {
  for (const fd of [...ictx.fds.keys()]) closeFd(ictx, fd);
  for (;;) {
    let progress = false;
    for (const o of ictx.live()) {
      if (o.users === 1 && ictx.remove(o.id) === 0) progress = true;
    }
    if (!progress) break;
  }
  // Tombstoned ids go with the table.
  for (const id of ictx.tombstones) ictx.abort(id);
  ictx.tombstones.clear();
  ictx.vfioIoas = null;
  ictx.closed = true;
}

// @kernel: iommufd_destroy
function destroyIoctl(ictx: IommufdCtx, cmd: U.IommuDestroy): 0 | KError {
  return ictx.remove(cmd.id);
}

// @kernel: iommufd_vfio_ioas
function vfioIoasIoctl(ictx: IommufdCtx, cmd: U.IommuVfioIoas): 0 | KError {
  if (cmd.__reserved !== 0) return kerr("EOPNOTSUPP", "__reserved must be 0");
  switch (cmd.op) {
    case U.IOMMU_VFIO_IOAS_GET:
      if (ictx.vfioIoas === null) return kerr("ENODEV", "no IOAS is set for VFIO compatibility");
      cmd.ioas_id = ictx.vfioIoas.id;
      return 0;
    case U.IOMMU_VFIO_IOAS_SET: {
      const ioas = getIoas(ictx, cmd.ioas_id);
      if (isErr(ioas)) return ioas;
      ictx.vfioIoas = ioas;
      return 0;
    }
    case U.IOMMU_VFIO_IOAS_CLEAR:
      ictx.vfioIoas = null;
      return 0;
    default:
      return kerr("EOPNOTSUPP", `unknown op ${cmd.op}`);
  }
}

/** Options of an ioctl call that are not in the struct. */
export interface IoctlOptions {
  /** The caller has CAP_SYS_RESOURCE (IOMMU_OPTION RLIMIT_MODE SET). */
  privileged?: boolean;
  /** The calling process (`current->mm`), when not the one that opened the context (a forked child using the fd). */
  mm?: Mm;
}

type Handler = (ictx: IommufdCtx, cmd: never, o: IoctlOptions) => 0 | KError;

const HANDLERS = new Map<number, Handler>([
  [U.IOMMUFD_CMD_DESTROY, destroyIoctl as Handler],
  [U.IOMMUFD_CMD_IOAS_ALLOC, ioasAllocIoctl as Handler],
  [U.IOMMUFD_CMD_IOAS_ALLOW_IOVAS, ioasAllowIovasIoctl as Handler],
  [U.IOMMUFD_CMD_IOAS_COPY, ioasCopyIoctl as Handler],
  [U.IOMMUFD_CMD_IOAS_IOVA_RANGES, ioasIovaRangesIoctl as Handler],
  [U.IOMMUFD_CMD_IOAS_MAP, ((ictx: IommufdCtx, cmd: U.IommuIoasMap, o: IoctlOptions) => ioasMapIoctl(ictx, cmd, o.mm ?? ictx.mm)) as Handler],
  [U.IOMMUFD_CMD_IOAS_UNMAP, ioasUnmapIoctl as Handler],
  [U.IOMMUFD_CMD_OPTION, ((ictx: IommufdCtx, cmd: U.IommuOption, o: IoctlOptions) => optionIoctl(ictx, cmd, o.privileged ?? true)) as Handler],
  [U.IOMMUFD_CMD_VFIO_IOAS, vfioIoasIoctl as Handler],
  [U.IOMMUFD_CMD_HWPT_ALLOC, hwptAllocIoctl as Handler],
  [U.IOMMUFD_CMD_IOAS_MAP_FILE, ((ictx: IommufdCtx, cmd: U.IommuIoasMapFile, o: IoctlOptions) => ioasMapFileIoctl(ictx, cmd, (o.mm ?? ictx.mm).files, o.mm ?? ictx.mm)) as Handler],
  [U.IOMMUFD_CMD_IOAS_CHANGE_PROCESS, ((ictx: IommufdCtx, cmd: U.IommuIoasChangeProcess, o: IoctlOptions) => ioasChangeProcessIoctl(ictx, cmd, o.mm ?? ictx.mm)) as Handler],
  [U.IOMMUFD_CMD_GET_HW_INFO, getHwInfoIoctl as Handler],
  [U.IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING, hwptSetDirtyTrackingIoctl as Handler],
  [U.IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP, hwptGetDirtyBitmapIoctl as Handler],
  [U.IOMMUFD_CMD_HWPT_INVALIDATE, hwptInvalidateIoctl as Handler],
  [U.IOMMUFD_CMD_VIOMMU_ALLOC, viommuAllocIoctl as Handler],
  [U.IOMMUFD_CMD_VDEVICE_ALLOC, vdeviceAllocIoctl as Handler],
  [U.IOMMUFD_CMD_FAULT_QUEUE_ALLOC, faultAllocIoctl as Handler],
  [U.IOMMUFD_CMD_VEVENTQ_ALLOC, veventqAllocIoctl as Handler],
  [U.IOMMUFD_CMD_HW_QUEUE_ALLOC, hwQueueAllocIoctl as Handler],
]);

/**
 * One ioctl on the context: `nr` is the command's number (IOMMUFD_CMD_*),
 * `arg` the struct (null for a NULL pointer). 0, or the errno; outputs are
 * written into `arg`.
 */
// @kernel: iommufd_fops_ioctl
export function iommufdIoctl(ictx: IommufdCtx, nr: number, arg: object | null, o: IoctlOptions = {}): 0 | KError {
  const layout = U.CMD_LAYOUTS.get(nr);
  if (layout === undefined) return kerr("ENOTTY", `no iommufd ioctl 0x${nr.toString(16)}`);
  if (arg === null) return kerr("EFAULT", "the argument pointer is NULL");
  const user = arg as { size: number; __tail?: Uint8Array } & Record<string, unknown>;
  const size = user.size;
  if (size < layout.minSize) return kerr("EINVAL", `size ${size} is below ${layout.name}'s minimum ${layout.minSize}`);
  if (size > layout.sizeof) {
    const tail = user.__tail;
    if (tail !== undefined) {
      for (let i = 0; i < Math.min(tail.length, size - layout.sizeof); i++) if (tail[i] !== 0) return kerr("E2BIG", `byte ${layout.sizeof + i} past ${layout.name} is not zero`);
    }
  }
  const handler = HANDLERS.get(nr);
  if (handler === undefined) return kerr("ENOTTY", `${layout.name} is not modelled`);
  if (size >= layout.sizeof) return handler(ictx, arg as never, o);
  // A short struct: the kernel's copy is zero past `size`, and only `size` bytes go back.
  const k: Record<string, unknown> = { ...user };
  for (const [name, off, w] of layout.fields) if (off + w > size) k[name] = typeof user[name] === "object" ? null : 0;
  const rc = handler(ictx, k as never, o);
  for (const [name, off, w] of layout.fields) if (off + w <= size) user[name] = k[name];
  return rc;
}
