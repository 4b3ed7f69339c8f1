/**
 * IOVA magazines (iova.c, after Bonwick and Adams' "Magazines and Vmem"):
 * fixed stacks of IOVA_MAG_SIZE cached pfns of one size class.
 *
 * All magazines of a domain live in one pool: a Float64Array of pfns
 * (IOVA_MAG_SIZE per magazine), a size column and a `next` column that links
 * full magazines into a depot list (the kernel overlays `next` on `size`,
 * which is why only full magazines may enter the depot). A magazine is a
 * slot index; freed slots are reused. `limit` caps how many magazines may
 * exist at once, to model a failing GFP_ATOMIC allocation.
 */

/** 127 pfns plus the size word make the kernel's magazine exactly 1024 bytes. */
export const IOVA_MAG_SIZE = 127;

export const NO_MAGAZINE = -1;

const INITIAL_MAGAZINES = 16;

export class IovaMagazines {
  pfns: Float64Array;
  size: Int32Array;
  next: Int32Array;
  /** Magazines allocated and not freed. */
  live = 0;

  private freeSlots: Int32Array;
  private freeTop = 0;
  private nextSlot = 0;

  constructor(readonly limit: number) {
    this.pfns = new Float64Array(INITIAL_MAGAZINES * IOVA_MAG_SIZE);
    this.size = new Int32Array(INITIAL_MAGAZINES);
    this.next = new Int32Array(INITIAL_MAGAZINES);
    this.freeSlots = new Int32Array(INITIAL_MAGAZINES);
  }

  /** An empty magazine, or NO_MAGAZINE when `limit` magazines already exist. */
  // @kernel: iova_magazine_alloc
  alloc(): number {
    if (this.live >= this.limit) return NO_MAGAZINE;
    let m: number;
    if (this.freeTop > 0) {
      m = this.freeSlots[--this.freeTop]!;
    } else {
      if (this.nextSlot === this.size.length) this.grow();
      m = this.nextSlot++;
    }
    this.size[m] = 0;
    this.next[m] = NO_MAGAZINE;
    this.live++;
    return m;
  }

  // @kernel: iova_magazine_free
  free(m: number): void {
    this.freeSlots[this.freeTop++] = m;
    this.live--;
  }

  /** Frees every magazine at once, as free_iova_rcaches does. */
  reset(): void {
    this.freeTop = 0;
    this.nextSlot = 0;
    this.live = 0;
  }

  // @kernel: iova_magazine_full
  full(m: number): boolean {
    return this.size[m] === IOVA_MAG_SIZE;
  }

  // @kernel: iova_magazine_empty
  empty(m: number): boolean {
    return this.size[m] === 0;
  }

  // @kernel: iova_magazine_push
  push(m: number, pfn: number): void {
    this.pfns[m * IOVA_MAG_SIZE + this.size[m]!] = pfn;
    this.size[m]!++;
  }

  /**
   * Takes the topmost pfn at or below limitPfn, moving the current top into
   * its place; 0 when no pfn qualifies (m must not be empty). Scanning the
   * whole magazine rather than looking at the top alone is the "try harder"
   * rule: the tree is the fallback only when nothing in here fits.
   */
  // @kernel: iova_magazine_pop
  pop(m: number, limitPfn: number): number {
    const pfns = this.pfns;
    const base = m * IOVA_MAG_SIZE;
    let i = base + this.size[m]! - 1;
    while (pfns[i]! > limitPfn) {
      if (i === base) return 0;
      i--;
    }
    const pfn = pfns[i]!;
    const top = base + --this.size[m]!;
    pfns[i] = pfns[top]!;
    return pfn;
  }

  private grow(): void {
    const n = this.size.length * 2;
    const pfns = new Float64Array(n * IOVA_MAG_SIZE);
    pfns.set(this.pfns);
    this.pfns = pfns;
    const g32 = (a: Int32Array): Int32Array => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.size = g32(this.size);
    this.next = g32(this.next);
    this.freeSlots = g32(this.freeSlots);
  }
}
