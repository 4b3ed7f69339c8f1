/**
 * The range tree of an IOVA domain: a red-black tree of [pfn_lo, pfn_hi]
 * ranges ordered by pfn_lo, the model of iova.c's `rbroot` of `struct iova`.
 *
 * Nodes live in a pool of typed-array columns (pfn_lo, pfn_hi, left, right,
 * parent, colour), so inserting or erasing a range allocates no JS object. A
 * node is a slot index; slot 0 is the nil sentinel (black, never a range).
 * Freed slots go on a stack and are reused; the pool doubles when it is
 * full. Erasing relinks nodes rather than copying keys, so a node handle
 * stays valid for as long as its range is in the tree (the kernel's cached
 * node pointers depend on that).
 *
 * The balancing is the textbook red-black scheme (lib/rbtree.c implements
 * the same invariants); the tree shape never changes an allocation result,
 * only how long the walk takes.
 */

export const RB_NIL = 0;

const INITIAL_SLOTS = 64;

export class RangeTree {
  pfnLo: Float64Array;
  pfnHi: Float64Array;
  left: Int32Array;
  right: Int32Array;
  parent: Int32Array;
  red: Uint8Array;
  root = RB_NIL;
  /** Nodes linked into the tree. */
  nodesLive = 0;

  private freeSlots: Int32Array;
  private freeTop = 0;
  private nextSlot = 1;

  constructor(slots = INITIAL_SLOTS) {
    this.pfnLo = new Float64Array(slots);
    this.pfnHi = new Float64Array(slots);
    this.left = new Int32Array(slots);
    this.right = new Int32Array(slots);
    this.parent = new Int32Array(slots);
    this.red = new Uint8Array(slots);
    this.freeSlots = new Int32Array(slots);
  }

  /** Slots ever handed out and not on the free stack (linked or not). */
  get slotsInUse(): number {
    return this.nextSlot - 1 - this.freeTop;
  }

  /** A slot that holds a node (linked into the tree or about to be). */
  isNode(n: number): boolean {
    return Number.isInteger(n) && n > RB_NIL && n < this.nextSlot && this.pfnLo[n]! >= 0;
  }

  // @kernel: alloc_iova_mem (a fresh, unlinked node)
  allocNode(pfnLo: number, pfnHi: number): number {
    let n: number;
    if (this.freeTop > 0) {
      n = this.freeSlots[--this.freeTop]!;
    } else {
      if (this.nextSlot === this.pfnLo.length) this.grow();
      n = this.nextSlot++;
    }
    this.pfnLo[n] = pfnLo;
    this.pfnHi[n] = pfnHi;
    return n;
  }

  // @kernel: free_iova_mem
  freeNode(n: number): void {
    this.pfnLo[n] = -1;
    this.freeSlots[this.freeTop++] = n;
  }

  /** Drops every node and slot, as put_iova_domain frees them all. */
  reset(): void {
    this.root = RB_NIL;
    this.nodesLive = 0;
    this.freeTop = 0;
    this.nextSlot = 1;
  }

  /**
   * Links node n. The descent may start at `start`, a node whose subtree
   * holds n's position (the allocator passes the node just above the gap
   * it found); the position, and so the tree, is the same as from the root.
   */
  // @kernel: iova_insert_rbtree
  insert(n: number, start: number): void {
    const lo = this.pfnLo;
    const key = lo[n]!;
    let p = RB_NIL;
    let cur = start !== RB_NIL ? start : this.root;
    while (cur !== RB_NIL) {
      p = cur;
      cur = key < lo[cur]! ? this.left[cur]! : this.right[cur]!;
    }
    this.parent[n] = p;
    this.left[n] = RB_NIL;
    this.right[n] = RB_NIL;
    this.red[n] = 1;
    if (p === RB_NIL) this.root = n;
    else if (key < lo[p]!) this.left[p] = n;
    else this.right[p] = n;
    this.nodesLive++;
    this.insertFixup(n);
  }

  // @kernel: rb_erase
  erase(z: number): void {
    const left = this.left;
    const right = this.right;
    const parent = this.parent;
    const red = this.red;
    let x: number;
    let removedBlack = red[z] === 0;
    if (left[z] === RB_NIL) {
      x = right[z]!;
      this.transplant(z, x);
    } else if (right[z] === RB_NIL) {
      x = left[z]!;
      this.transplant(z, x);
    } else {
      let y = right[z]!;
      while (left[y] !== RB_NIL) y = left[y]!;
      removedBlack = red[y] === 0;
      x = right[y]!;
      if (parent[y] === z) {
        parent[x] = y;
      } else {
        this.transplant(y, x);
        right[y] = right[z]!;
        parent[right[y]!] = y;
      }
      this.transplant(z, y);
      left[y] = left[z]!;
      parent[left[y]!] = y;
      red[y] = red[z]!;
    }
    if (removedBlack) this.eraseFixup(x);
    parent[RB_NIL] = RB_NIL;
    this.nodesLive--;
  }

  // @kernel: rb_next
  next(n: number): number {
    const left = this.left;
    const right = this.right;
    const parent = this.parent;
    if (right[n] !== RB_NIL) {
      n = right[n]!;
      while (left[n] !== RB_NIL) n = left[n]!;
      return n;
    }
    let p = parent[n]!;
    while (p !== RB_NIL && n === right[p]) {
      n = p;
      p = parent[p]!;
    }
    return p;
  }

  // @kernel: rb_prev
  prev(n: number): number {
    const left = this.left;
    const right = this.right;
    const parent = this.parent;
    if (left[n] !== RB_NIL) {
      n = left[n]!;
      while (right[n] !== RB_NIL) n = right[n]!;
      return n;
    }
    let p = parent[n]!;
    while (p !== RB_NIL && n === left[p]) {
      n = p;
      p = parent[p]!;
    }
    return p;
  }

  /** The lowest node whose pfn_hi is at or above pfn, or nil. */
  lowestEndingAtOrAbove(pfn: number): number {
    const hi = this.pfnHi;
    let best = RB_NIL;
    let n = this.root;
    while (n !== RB_NIL) {
      if (hi[n]! >= pfn) {
        best = n;
        n = this.left[n]!;
      } else {
        n = this.right[n]!;
      }
    }
    return best;
  }

  /** The node whose range contains pfn, or nil. */
  // @kernel: private_find_iova
  find(pfn: number): number {
    const lo = this.pfnLo;
    const hi = this.pfnHi;
    let n = this.root;
    while (n !== RB_NIL) {
      if (pfn < lo[n]!) n = this.left[n]!;
      else if (pfn > hi[n]!) n = this.right[n]!;
      else return n;
    }
    return RB_NIL;
  }

  private grow(): void {
    const slots = this.pfnLo.length * 2;
    const g64 = (a: Float64Array): Float64Array => {
      const b = new Float64Array(slots);
      b.set(a);
      return b;
    };
    const g32 = (a: Int32Array): Int32Array => {
      const b = new Int32Array(slots);
      b.set(a);
      return b;
    };
    this.pfnLo = g64(this.pfnLo);
    this.pfnHi = g64(this.pfnHi);
    this.left = g32(this.left);
    this.right = g32(this.right);
    this.parent = g32(this.parent);
    this.freeSlots = g32(this.freeSlots);
    const red = new Uint8Array(slots);
    red.set(this.red);
    this.red = red;
  }

  private transplant(u: number, v: number): void {
    const p = this.parent[u]!;
    if (p === RB_NIL) this.root = v;
    else if (u === this.left[p]) this.left[p] = v;
    else this.right[p] = v;
    this.parent[v] = p;
  }

  private rotateLeft(x: number): void {
    const left = this.left;
    const right = this.right;
    const parent = this.parent;
    const y = right[x]!;
    const b = left[y]!;
    right[x] = b;
    if (b !== RB_NIL) parent[b] = x;
    const p = parent[x]!;
    parent[y] = p;
    if (p === RB_NIL) this.root = y;
    else if (x === left[p]) left[p] = y;
    else right[p] = y;
    left[y] = x;
    parent[x] = y;
  }

  private rotateRight(x: number): void {
    const left = this.left;
    const right = this.right;
    const parent = this.parent;
    const y = left[x]!;
    const b = right[y]!;
    left[x] = b;
    if (b !== RB_NIL) parent[b] = x;
    const p = parent[x]!;
    parent[y] = p;
    if (p === RB_NIL) this.root = y;
    else if (x === right[p]) right[p] = y;
    else left[p] = y;
    right[y] = x;
    parent[x] = y;
  }

  // @kernel: rb_insert_color
  private insertFixup(z: number): void {
    const left = this.left;
    const right = this.right;
    const parent = this.parent;
    const red = this.red;
    while (red[parent[z]!] === 1) {
      let p = parent[z]!;
      const g = parent[p]!;
      if (p === left[g]) {
        const u = right[g]!;
        if (red[u] === 1) {
          red[p] = 0;
          red[u] = 0;
          red[g] = 1;
          z = g;
          continue;
        }
        if (z === right[p]) {
          z = p;
          this.rotateLeft(z);
          p = parent[z]!;
        }
        red[p] = 0;
        red[g] = 1;
        this.rotateRight(g);
      } else {
        const u = left[g]!;
        if (red[u] === 1) {
          red[p] = 0;
          red[u] = 0;
          red[g] = 1;
          z = g;
          continue;
        }
        if (z === left[p]) {
          z = p;
          this.rotateRight(z);
          p = parent[z]!;
        }
        red[p] = 0;
        red[g] = 1;
        this.rotateLeft(g);
      }
    }
    red[this.root] = 0;
  }

  private eraseFixup(x: number): void {
    const left = this.left;
    const right = this.right;
    const parent = this.parent;
    const red = this.red;
    while (x !== this.root && red[x] === 0) {
      const xp = parent[x]!;
      if (x === left[xp]) {
        let w = right[xp]!;
        if (red[w] === 1) {
          red[w] = 0;
          red[xp] = 1;
          this.rotateLeft(xp);
          w = right[xp]!;
        }
        if (red[left[w]!] === 0 && red[right[w]!] === 0) {
          red[w] = 1;
          x = xp;
          continue;
        }
        if (red[right[w]!] === 0) {
          red[left[w]!] = 0;
          red[w] = 1;
          this.rotateRight(w);
          w = right[xp]!;
        }
        red[w] = red[xp]!;
        red[xp] = 0;
        red[right[w]!] = 0;
        this.rotateLeft(xp);
      } else {
        let w = left[xp]!;
        if (red[w] === 1) {
          red[w] = 0;
          red[xp] = 1;
          this.rotateRight(xp);
          w = left[xp]!;
        }
        if (red[left[w]!] === 0 && red[right[w]!] === 0) {
          red[w] = 1;
          x = xp;
          continue;
        }
        if (red[left[w]!] === 0) {
          red[right[w]!] = 0;
          red[w] = 1;
          this.rotateLeft(w);
          w = left[xp]!;
        }
        red[w] = red[xp]!;
        red[xp] = 0;
        red[left[w]!] = 0;
        this.rotateRight(xp);
      }
      x = this.root;
    }
    red[x] = 0;
  }
}
