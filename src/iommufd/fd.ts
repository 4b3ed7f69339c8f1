/**
 * close() of a file the context handed out: a selftest access fd, or an
 * event queue's (fault queue, vEVENTQ).
 */
import type { KError } from "../lib/errno.ts";
import { EventqFile, iommufdEventqRelease } from "./eventq.ts";
import type { IommufdCtx } from "./object.ts";
import { closeAccessFd } from "./selftest.ts";

export function closeFd(ictx: IommufdCtx, fd: number): 0 | KError {
  if (ictx.fds.get(fd) instanceof EventqFile) return iommufdEventqRelease(ictx, fd);
  return closeAccessFd(ictx, fd);
}
