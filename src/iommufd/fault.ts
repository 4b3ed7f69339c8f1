/**
 * Fault queues (eventq.c, IOMMU_FAULT_QUEUE_ALLOC): an object and a file.
 * A HWPT allocated with IOMMU_HWPT_FAULT_ID_VALID sends the I/O page
 * faults of devices attached to it here; reading the file takes them as
 * iommu_hwpt_pgfault records, each given a cookie, and writing an
 * iommu_hwpt_page_response with that cookie completes the fault.
 */
import { isErr, kerr, type KError } from "../lib/errno.ts";
import type { IommufdDevice, IommufdGroup } from "./device.ts";
import { eventqOfFd, IommufdEventq, iommufdEventqInit } from "./eventq.ts";
import type { Hwpt } from "./hw-pagetable.ts";
import type { IommufdCtx } from "./object.ts";
import { IOMMUFD_PAGE_RESP_INVALID, IOMMUFD_PAGE_RESP_SUCCESS, type IommuFaultAlloc, type IommuHwptPageResponse, type IommuHwptPgfault } from "./uapi.ts";

/** sizeof(struct iommu_hwpt_pgfault) */
export const IOMMU_HWPT_PGFAULT_SIZE = 48;
/** sizeof(struct iommu_hwpt_page_response) */
export const IOMMU_HWPT_PAGE_RESPONSE_SIZE = 8;
/** IOMMU_FAULT_PAGE_REQUEST_PASID_VALID, IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE (struct iommu_fault_page_request flags). */
export const IOMMU_FAULT_PAGE_REQUEST_PASID_VALID = 1 << 0;
export const IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE = 1 << 1;

/** struct iommu_fault_page_request */
export interface IommuFaultPageRequest {
  flags: number;
  pasid: number;
  grpid: number;
  perm: number;
  addr: number;
}

/** struct iopf_group: the faults of one page request group, the device they came from, and the attachment they came through. */
interface IopfGroup {
  readonly idev: IommufdDevice;
  /** The attach handle: the group's attachment at this PASID (IOMMU_NO_PASID, 0, for the RID's). */
  readonly handle: { readonly igroup: IommufdGroup; readonly pasid: number };
  readonly faults: IommuFaultPageRequest[];
  cookie: number;
}

export class IommufdFault extends IommufdEventq {
  readonly type = "FAULT" as const;
  /** Groups not yet read. */
  readonly deliver: IopfGroup[] = [];
  /** Groups read and awaiting a response, by cookie. */
  readonly response = new Map<number, IopfGroup>();

  destroy(): void {
    // @kernel: iommufd_fault_destroy (whatever is pending, read or not, is answered IOMMU_PAGE_RESP_INVALID)
    this.deliver.length = 0;
    this.response.clear();
  }

  snapshotDetail(): unknown {
    return { fd: this.fd, deliver: this.deliver.length, response: [...this.response.keys()] };
  }
}

export function getFault(ictx: IommufdCtx, id: number): IommufdFault | KError {
  return ictx.get(id, "FAULT") as IommufdFault | KError;
}

// @kernel: iommufd_fault_alloc
export function faultAllocIoctl(ictx: IommufdCtx, cmd: IommuFaultAlloc): 0 | KError {
  if (cmd.flags !== 0) return kerr("EOPNOTSUPP", "flags must be 0");
  const id = ictx.alloc();
  if (typeof id !== "number") return id;
  const fault = new IommufdFault();
  const fd = iommufdEventqInit(ictx, fault);
  ictx.finalize(id, fault);
  cmd.out_fault_id = id;
  cmd.out_fault_fd = fd;
  return 0;
}

/** An I/O page fault reported against `hwpt`'s domain, attached at `attachPasid` of idev's group: queued for user space. */
// @kernel: iommufd_fault_iopf_handler
export function iommufdFaultIopfHandler(hwpt: Hwpt, idev: IommufdDevice, attachPasid: number, prm: IommuFaultPageRequest): 0 | KError {
  const fault = hwpt.fault as IommufdFault | null;
  if (fault === null) return kerr("ENODEV", `HWPT ${hwpt.id} has no fault queue`);
  fault.deliver.push({ idev, handle: { igroup: idev.igroup, pasid: attachPasid }, faults: [prm], cookie: 0 });
  return 0;
}

/**
 * The group's attachment at `pasid` leaves `hwpt` (its last device detached, or
 * replaced): every fault that came through it, read or not, is answered
 * IOMMU_PAGE_RESP_INVALID and leaves the queue.
 */
// @kernel: iommufd_auto_response_faults
export function iommufdAutoResponseFaults(hwpt: Hwpt, igroup: IommufdGroup, pasid: number): void {
  const fault = hwpt.fault as IommufdFault | null;
  if (fault === null) return;
  const through = (g: IopfGroup) => g.handle.igroup === igroup && g.handle.pasid === pasid;
  for (let i = fault.deliver.length - 1; i >= 0; i--) if (through(fault.deliver[i]!)) fault.deliver.splice(i, 1);
  for (const [cookie, g] of fault.response) if (through(g)) fault.response.delete(cookie);
}

/** read() of a fault fd: whole groups of iommu_hwpt_pgfault records that fit `count` bytes. */
// @kernel: iommufd_fault_fops_read
export function faultFdRead(ictx: IommufdCtx, fd: number, count: number): IommuHwptPgfault[] | KError {
  const q = eventqOfFd(ictx, fd);
  if (isErr(q)) return q;
  if (!(q instanceof IommufdFault)) return kerr("EINVAL", `fd ${fd} is not a fault queue`);
  if (count % IOMMU_HWPT_PGFAULT_SIZE !== 0) return kerr("ESPIPE", `a read of ${count} bytes is not a whole number of records`);
  const out: IommuHwptPgfault[] = [];
  let done = 0;
  while (q.deliver.length > 0) {
    const g = q.deliver[0]!;
    if (done >= count || g.faults.length * IOMMU_HWPT_PGFAULT_SIZE > count - done) break;
    q.deliver.shift();
    // xa_alloc of the response xarray (XA_FLAGS_ALLOC1): the lowest free cookie from 1.
    let cookie = 1;
    while (q.response.has(cookie)) cookie++;
    g.cookie = cookie;
    q.response.set(cookie, g);
    for (const f of g.faults) {
      // @kernel: iommufd_compose_fault_message (length is always 0)
      out.push({ flags: f.flags, dev_id: g.idev.id, pasid: f.pasid, grpid: f.grpid, perm: f.perm, addr: f.addr, length: 0, cookie });
      done += IOMMU_HWPT_PGFAULT_SIZE;
    }
  }
  return out;
}

/** write() of responses to a fault fd: the bytes taken, or the error when none was. */
// @kernel: iommufd_fault_fops_write
export function faultFdWrite(ictx: IommufdCtx, fd: number, responses: IommuHwptPageResponse[]): number | KError {
  const q = eventqOfFd(ictx, fd);
  if (isErr(q)) return q;
  if (!(q instanceof IommufdFault)) return kerr("EINVAL", `fd ${fd} is not a fault queue`);
  let done = 0;
  let rc: KError | null = null;
  for (const r of responses) {
    if (r.code !== IOMMUFD_PAGE_RESP_SUCCESS && r.code !== IOMMUFD_PAGE_RESP_INVALID) {
      rc = kerr("EINVAL", `response code ${r.code} is neither IOMMUFD_PAGE_RESP_SUCCESS nor IOMMUFD_PAGE_RESP_INVALID`);
      break;
    }
    const g = q.response.get(r.cookie);
    if (g === undefined) {
      rc = kerr("EINVAL", `no fault awaits a response with cookie ${r.cookie}`);
      break;
    }
    // iopf_group_response, iopf_free_group: the device gets r.code.
    q.response.delete(r.cookie);
    done += IOMMU_HWPT_PAGE_RESPONSE_SIZE;
  }
  return done === 0 && rc !== null ? rc : done;
}
