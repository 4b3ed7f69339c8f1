/**
 * What fault queues and vEVENTQs share (eventq.c, struct iommufd_eventq):
 * an object with a file the context hands out, whose open file holds a
 * reference on the object until it is closed.
 */
import { kerr, type KError } from "../lib/errno.ts";
import { IommufdObject, type IommufdCtx } from "./object.ts";

export abstract class IommufdEventq extends IommufdObject {
  /** The fd of its file, -1 once closed. */
  fd = -1;
}

/** An open eventq file in the context's fd table. */
export class EventqFile {
  constructor(readonly eventq: IommufdEventq) {}
}

/** Gives the eventq its file; the file's reference keeps the object busy. */
// @kernel: iommufd_eventq_init
export function iommufdEventqInit(ictx: IommufdCtx, eventq: IommufdEventq): number {
  const fd = ictx.mm.nextFd++;
  ictx.fds.set(fd, new EventqFile(eventq));
  eventq.fd = fd;
  eventq.users++;
  return fd;
}

/** The eventq behind an fd of the context, or EBADF. */
export function eventqOfFd(ictx: IommufdCtx, fd: number): IommufdEventq | KError {
  const f = ictx.fds.get(fd);
  if (!(f instanceof EventqFile)) return kerr("EBADF", `fd ${fd} is not an event queue`);
  return f.eventq;
}

/** close() of an eventq fd: only the file's reference goes; what is queued stays until the object is destroyed. */
// @kernel: iommufd_eventq_fops_release
export function iommufdEventqRelease(ictx: IommufdCtx, fd: number): 0 | KError {
  const q = eventqOfFd(ictx, fd);
  if (!(q instanceof IommufdEventq)) return q;
  ictx.fds.delete(fd);
  q.fd = -1;
  q.users--;
  return 0;
}
