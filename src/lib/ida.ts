/**
 * An ID allocator that always hands out the lowest free id, like the
 * kernel's IDA (`ida_alloc`), in O(log n) per operation: ids below `next`
 * that were freed sit in a binary min-heap.
 */
export class Ida {
  private next: number;
  private readonly freed: number[] = [];

  constructor(private readonly first = 0) {
    this.next = first;
  }

  // @kernel: ida_alloc (the lowest free id)
  alloc(): number {
    const h = this.freed;
    if (h.length === 0) return this.next++;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < n && h[l]! < h[m]!) m = l;
        if (r < n && h[r]! < h[m]!) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }

  // @kernel: ida_free
  free(id: number): void {
    if (id < this.first || id >= this.next) throw new RangeError(`ida: freeing id ${id} that was never allocated`);
    const h = this.freed;
    h.push(id);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]! <= h[i]!) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  /** Number of ids currently allocated. */
  get inUse(): number {
    return this.next - this.first - this.freed.length;
  }
}
