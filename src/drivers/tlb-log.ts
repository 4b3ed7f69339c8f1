/**
 * The record of a paging domain's IOTLB invalidations (what its driver's
 * flush_all, flush_walk, add_page and sync callbacks did), which the
 * snapshot's `tlb` and the tests read.
 */
import type { IommuIotlbGather, TlbInvalidation, TlbInvalidationKind, TlbStats } from "../iommu/ops.ts";

/** How many of a domain's most recent IOTLB invalidations its TlbLog keeps (a power of two). */
export const TLB_LOG_RECENT = 64;

const TLB_KINDS: readonly TlbInvalidationKind[] = ["flush_all", "flush_walk", "sync"];
const KIND_FLUSH_ALL = 0;
const KIND_FLUSH_WALK = 1;
const KIND_SYNC = 2;

/**
 * Invalidations a domain's driver issued, so tests can see what a change
 * caused: counts per callback, and a ring of the last TLB_LOG_RECENT
 * invalidations (kind, iova, size) in one typed array allocated with the
 * log, so recording one is three array writes and a counter.
 */
export class TlbLog {
  flushAll = 0;
  flushWalk = 0;
  addPage = 0;
  sync = 0;
  /** Invalidations recorded so far; the next one goes to ring slot `recorded % TLB_LOG_RECENT`. */
  recorded = 0;
  /** The ring: per slot, kind, iova and size. */
  private readonly ring = new Float64Array(3 * TLB_LOG_RECENT);

  private record(kind: number, iova: number, size: number): void {
    const r = this.ring;
    // `&` keeps the slot right past 2^31 records too (ToInt32 wraps by 2^32, a multiple of the ring size).
    const i = (this.recorded & (TLB_LOG_RECENT - 1)) * 3;
    r[i] = kind;
    r[i + 1] = iova;
    r[i + 2] = size;
    this.recorded++;
  }

  /** The whole IOTLB was invalidated (tlb_flush_all, flush_iotlb_all). */
  recordFlushAll(): void {
    this.flushAll++;
    this.record(KIND_FLUSH_ALL, 0, 0);
  }

  /** A table went away: walk caches and leaves for [iova, iova + size) were invalidated (tlb_flush_walk). */
  recordFlushWalk(iova: number, size: number): void {
    this.flushWalk++;
    this.record(KIND_FLUSH_WALK, iova, size);
  }

  /**
   * iotlb_sync of a gather; a non-empty gather invalidated [start, end].
   * Takes the gather, not its addresses: a call V8 does not inline would
   * box each address of 2^31 or more into a new heap number.
   */
  recordSync(gather: IommuIotlbGather): void {
    this.sync++;
    if (gather.end >= gather.start) this.record(KIND_SYNC, gather.start, gather.end - gather.start + 1);
  }

  /** The counts and the recorded invalidations, oldest first, as plain data. */
  stats(): TlbStats {
    const n = Math.min(this.recorded, TLB_LOG_RECENT);
    const invalidations: TlbInvalidation[] = [];
    for (let k = this.recorded - n; k < this.recorded; k++) {
      const i = (k & (TLB_LOG_RECENT - 1)) * 3;
      const kind = TLB_KINDS[this.ring[i]!]!;
      invalidations.push(kind === "flush_all" ? { kind, iova: null, size: null } : { kind, iova: this.ring[i + 1]!, size: this.ring[i + 2]! });
    }
    return {
      flushAll: this.flushAll,
      flushWalk: this.flushWalk,
      addPage: this.addPage,
      sync: this.sync,
      invalidations,
      invalidationsTotal: this.recorded,
    };
  }
}

export function newTlbLog(): TlbLog {
  return new TlbLog();
}

/** What a domain whose driver issued no invalidation reports. */
export function noTlbStats(): TlbStats {
  return { flushAll: 0, flushWalk: 0, addPage: 0, sync: 0, invalidations: [], invalidationsTotal: 0 };
}
