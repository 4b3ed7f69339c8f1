/**
 * The flush queue of lazy (DMA-FQ) domains (dma-iommu.c): an unmapped
 * IOVA is not invalidated at once; it waits on a per-CPU ring until a
 * flush of the whole IOTLB has happened after it was queued — when the
 * ring fills, or when the 10 ms timer fires — and only then goes back to
 * the IOVA allocator. Until then the hardware may still translate it.
 */
import { IommuPagesList } from "../pgtable/gather.ts";
import type { IommuDmaCookie } from "./dma-iommu.ts";

/** IOVA_DEFAULT_FQ_SIZE: ring slots (one stays empty: 255 entries). */
export const IOVA_DEFAULT_FQ_SIZE = 256;
/** Why the flush queue flushed the IOTLB: its ring was full (queue_iova), or its timer fired (fq_flush_timeout). */
export type FqFlushReason = "full" | "timer";

/** IOVA_DEFAULT_FQ_TIMEOUT, in milliseconds. */
export const IOVA_DEFAULT_FQ_TIMEOUT = 10;

/** struct iova_fq, one CPU's ring, in typed arrays. */
export class IovaFq {
  readonly pfns = new Float64Array(IOVA_DEFAULT_FQ_SIZE);
  readonly pages = new Float64Array(IOVA_DEFAULT_FQ_SIZE);
  readonly counters = new Float64Array(IOVA_DEFAULT_FQ_SIZE);
  head = 0;
  tail = 0;

  // @kernel: fq_full
  get full(): boolean {
    return ((this.tail + 1) & (IOVA_DEFAULT_FQ_SIZE - 1)) === this.head;
  }

  get length(): number {
    return (this.tail - this.head + IOVA_DEFAULT_FQ_SIZE) & (IOVA_DEFAULT_FQ_SIZE - 1);
  }
}

/** The flush-queue half of struct iommu_dma_cookie. */
export class FlushQueue {
  readonly fq = new IovaFq();
  /** Page-table pages detached by an unmap, freed with their entry once flushed (by ring slot). */
  readonly freelists = new Map<number, IommuPagesList>();
  /** fq_flush_start_cnt / fq_flush_finish_cnt */
  flushStartCnt = 0;
  flushFinishCnt = 0;
  /** fq_timer_on, and when it fires (model milliseconds). */
  timerOn = false;
  timerDeadline = 0;
  /** IOTLB flushes the queue issued so far (for tests and the snapshot): on a full ring, by the timer, in all. */
  fullFlushes = 0;
  timerFlushes = 0;
  get flushes(): number {
    return this.fullFlushes + this.timerFlushes;
  }

  constructor(readonly timeoutMs = IOVA_DEFAULT_FQ_TIMEOUT) {}

  /** Whether an entry covering `pfn` is waiting in the ring (its IOTLB entries may still be live). */
  holds(pfn: number): boolean {
    const fq = this.fq;
    for (let i = fq.head; i !== fq.tail; i = (i + 1) & (IOVA_DEFAULT_FQ_SIZE - 1)) {
      if (pfn >= fq.pfns[i]! && pfn < fq.pfns[i]! + fq.pages[i]!) return true;
    }
    return false;
  }
}

// @kernel: fq_ring_free_locked
function fqRingFree(cookie: IommuDmaCookie, q: FlushQueue): void {
  const fq = q.fq;
  while (fq.head !== fq.tail) {
    const i = fq.head;
    if (fq.counters[i]! >= q.flushFinishCnt) break;
    const pages = q.freelists.get(i);
    if (pages !== undefined) {
      pages.put();
      q.freelists.delete(i);
    }
    cookie.iovad.freeIovaFast(fq.pfns[i]!, fq.pages[i]!);
    fq.head = (i + 1) & (IOVA_DEFAULT_FQ_SIZE - 1);
  }
}

// @kernel: fq_flush_iotlb
function fqFlushIotlb(cookie: IommuDmaCookie, q: FlushQueue, reason: FqFlushReason): void {
  q.flushStartCnt++;
  cookie.domain.ops.flushIotlbAll?.(cookie.domain);
  q.flushFinishCnt++;
  if (reason === "full") q.fullFlushes++;
  else q.timerFlushes++;
  cookie.fqFlushHook?.(cookie, reason);
}

// @kernel: queue_iova
export function queueIova(cookie: IommuDmaCookie, q: FlushQueue, pfn: number, pages: number, freelist: IommuPagesList, now: number): void {
  fqRingFree(cookie, q);
  if (q.fq.full) {
    fqFlushIotlb(cookie, q, "full");
    fqRingFree(cookie, q);
  }
  const fq = q.fq;
  const i = fq.tail;
  fq.tail = (i + 1) & (IOVA_DEFAULT_FQ_SIZE - 1);
  fq.pfns[i] = pfn;
  fq.pages[i] = pages;
  fq.counters[i] = q.flushStartCnt;
  if (freelist.length > 0) {
    const held = new IommuPagesList();
    held.splice(freelist);
    q.freelists.set(i, held);
  }
  if (!q.timerOn) {
    q.timerOn = true;
    q.timerDeadline = now + q.timeoutMs;
  }
}

// @kernel: fq_flush_timeout
export function fqFlushTimeout(cookie: IommuDmaCookie): void {
  const q = cookie.fq;
  if (q === null) return;
  q.timerOn = false;
  fqFlushIotlb(cookie, q, "timer");
  fqRingFree(cookie, q);
}
