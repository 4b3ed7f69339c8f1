/**
 * The areas of an io_pagetable, sorted by IOVA (the kernel's area interval
 * tree, `iopt->area_itree`). A two-level sorted array: chunks of at most
 * CHUNK areas, found by binary search on each chunk's last area, then by
 * binary search inside it; an insert or remove moves at most a chunk, and
 * the chunk list changes only when a chunk splits or empties. Lookups are
 * logarithmic, updates O(CHUNK + areas/CHUNK), with no allocation per
 * operation but a split.
 */

/** What the store needs of an area: a non-empty [iova, last] range. */
export interface StoredRange {
  iova: number;
  last: number;
}

const CHUNK = 256;

export class AreaStore<T extends StoredRange> {
  private chunks: T[][] = [];
  size = 0;

  /** Index of the first chunk whose last area ends at or after iova (chunks.length if none). */
  private chunkFor(iova: number): number {
    const c = this.chunks;
    let lo = 0;
    let hi = c.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const ch = c[mid]!;
      if (ch[ch.length - 1]!.last < iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private static within<T extends StoredRange>(ch: T[], iova: number): number {
    let lo = 0;
    let hi = ch.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ch[mid]!.last < iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The first area whose last >= iova, or null. */
  atOrAfter(iova: number): T | null {
    const ci = this.chunkFor(iova);
    const ch = this.chunks[ci];
    if (ch === undefined) return null;
    return ch[AreaStore.within(ch, iova)]!;
  }

  /** The first area intersecting [start, last], or null. */
  first(start: number, last: number): T | null {
    const a = this.atOrAfter(start);
    return a !== null && a.iova <= last ? a : null;
  }

  /** The area after `a` (by IOVA), or null. */
  next(a: T): T | null {
    return this.atOrAfter(a.last + 1);
  }

  insert(a: T): void {
    this.size++;
    let ci = this.chunkFor(a.iova);
    if (ci === this.chunks.length) {
      if (ci === 0 || this.chunks[ci - 1]!.length >= CHUNK) {
        this.chunks.push([a]);
        return;
      }
      ci--;
    }
    const ch = this.chunks[ci]!;
    ch.splice(AreaStore.within(ch, a.iova), 0, a);
    if (ch.length > 2 * CHUNK) this.chunks.splice(ci + 1, 0, ch.splice(CHUNK));
  }

  /** Removes `a` (which must be stored). */
  remove(a: T): void {
    const ci = this.chunkFor(a.iova);
    const ch = this.chunks[ci]!;
    const i = AreaStore.within(ch, a.iova);
    if (ch[i] !== a) throw new Error("AreaStore.remove: the area is not stored");
    ch.splice(i, 1);
    this.size--;
    if (ch.length === 0) this.chunks.splice(ci, 1);
  }

  /** Every area, ascending (a fresh array). */
  toArray(): T[] {
    const out: T[] = [];
    for (const ch of this.chunks) for (const a of ch) out.push(a);
    return out;
  }
}
