/**
 * vEVENTQs (eventq.c, IOMMU_VEVENTQ_ALLOC): one queue per (vIOMMU, event
 * type), with a file. A driver's events for a vIOMMU go to the queue of
 * their type, each with a sequence number (wrapping at INT_MAX to 0). A
 * queue holds at most `veventq_depth` events; past that, events are lost
 * and a header flagged IOMMU_VEVENTQ_FLAG_LOST_EVENTS, carrying the next
 * sequence number, sits at the queue's tail until the next event or read.
 */
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { eventqOfFd, IommufdEventq, iommufdEventqInit } from "./eventq.ts";
import type { IommufdCtx } from "./object.ts";
import { IOMMU_VEVENTQ_FLAG_LOST_EVENTS, IOMMU_VEVENTQ_TYPE_DEFAULT, type IommuVeventqAlloc } from "./uapi.ts";
import { setU32 } from "./user-data.ts";
import type { Viommu } from "./viommu.ts";

/** sizeof(struct iommufd_vevent_header): flags, sequence. */
export const IOMMUFD_VEVENT_HEADER_SIZE = 8;
const INT_MAX = 0x7fff_ffff;

/** struct iommufd_vevent */
interface Vevent {
  flags: number;
  sequence: number;
  data: Uint8Array;
}

export class IommufdVeventq extends IommufdEventq {
  readonly type = "VEVENTQ" as const;
  readonly deliver: Vevent[] = [];
  /** Events queued, the lost-events header not counted. */
  numEvents = 0;
  sequence = 0;
  /** lost_events_header: one object, in `deliver` at most once. */
  readonly lostEventsHeader: Vevent = { flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 0, data: new Uint8Array(0) };
  constructor(
    readonly viommu: Viommu,
    readonly veventqType: number,
    readonly depth: number,
  ) {
    super();
  }

  destroy(): void {
    // @kernel: iommufd_veventq_destroy
    this.deliver.length = 0;
    this.numEvents = 0;
    if (this.viommu.veventqs.get(this.veventqType) === this) this.viommu.veventqs.delete(this.veventqType);
    this.viommu.users--;
  }

  snapshotDetail(): unknown {
    return { viommu: this.viommu.id, veventqType: this.veventqType, depth: this.depth, fd: this.fd, queued: this.deliver.map((v) => [v.flags, v.sequence]), sequence: this.sequence };
  }
}

// @kernel: iommufd_veventq_alloc
export function veventqAllocIoctl(ictx: IommufdCtx, cmd: IommuVeventqAlloc): 0 | KError {
  if (cmd.flags !== 0 || cmd.__reserved !== 0 || cmd.type === IOMMU_VEVENTQ_TYPE_DEFAULT) return kerr("EOPNOTSUPP", "flags and __reserved must be 0 and the type not DEFAULT");
  if (cmd.veventq_depth === 0) return kerr("EINVAL", "veventq_depth must not be 0");
  const vo = ictx.get(cmd.viommu_id, "VIOMMU");
  if (isErr(vo)) return vo;
  const viommu = vo as Viommu;
  if (viommu.veventqs.has(cmd.type)) return kerr("EEXIST", `vIOMMU ${viommu.id} has a vEVENTQ of type 0x${cmd.type.toString(16)}`);
  const id = ictx.alloc();
  if (typeof id !== "number") return id;
  const q = new IommufdVeventq(viommu, cmd.type, cmd.veventq_depth);
  viommu.users++;
  viommu.veventqs.set(cmd.type, q);
  const fd = iommufdEventqInit(ictx, q);
  ictx.finalize(id, q);
  cmd.out_veventq_id = id;
  cmd.out_veventq_fd = fd;
  return 0;
}

/** Queues `v` (an event or the lost-events header) with the next sequence number. */
// @kernel: iommufd_vevent_handler
function veventHandler(q: IommufdVeventq, v: Vevent): void {
  // The lost-events header leaves the tail when something follows it (or moves there again).
  const last = q.deliver.length - 1;
  if (last >= 0 && q.deliver[last] === q.lostEventsHeader) q.deliver.pop();
  q.deliver.push(v);
  v.sequence = q.sequence;
  q.sequence = (q.sequence + 1) & INT_MAX;
}

/** A driver's event for a vIOMMU. */
// @kernel: iommufd_viommu_report_event
export function iommufdViommuReportEvent(viommu: Viommu, type: number, data: Uint8Array): 0 | KError {
  const q = viommu.veventqs.get(type) as IommufdVeventq | undefined;
  if (q === undefined) return kerr("EOPNOTSUPP", `vIOMMU ${viommu.id} has no vEVENTQ of type 0x${type.toString(16)}`);
  if (q.numEvents === q.depth) {
    veventHandler(q, q.lostEventsHeader);
    return 0;
  }
  q.numEvents++;
  veventHandler(q, { flags: 0, sequence: 0, data: data.slice() });
  return 0;
}

/** read() of a vEVENTQ fd: whole records (header, then the event's data) that fit `count` bytes. */
// @kernel: iommufd_veventq_fops_read
export function veventqFdRead(ictx: IommufdCtx, fd: number, count: number): Uint8Array | KError {
  const q = eventqOfFd(ictx, fd);
  if (isErr(q)) return q;
  if (!(q instanceof IommufdVeventq)) return kerr("EINVAL", `fd ${fd} is not a vEVENTQ`);
  const out: number[] = [];
  while (q.deliver.length > 0) {
    const v = q.deliver[0]!;
    const need = IOMMUFD_VEVENT_HEADER_SIZE + v.data.length;
    if (out.length >= count || need > count - out.length) break;
    // @kernel: iommufd_veventq_deliver_fetch
    q.deliver.shift();
    if (v !== q.lostEventsHeader) q.numEvents--;
    const hdr = new Uint8Array(IOMMUFD_VEVENT_HEADER_SIZE);
    setU32(hdr, 0, v.flags);
    setU32(hdr, 4, v.sequence);
    out.push(...hdr, ...v.data);
  }
  return new Uint8Array(out);
}
