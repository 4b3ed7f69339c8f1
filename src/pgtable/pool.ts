/**
 * Simulated physical memory for page-table pages.
 *
 * One growable Uint32Array holds every table page of one page table; each
 * 64-bit descriptor is two 32-bit words, low word first (little-endian, as the
 * hardware reads it). A page's simulated physical address is
 * `base + wordOffset * 4`, so a table descriptor holds the physical address of
 * the next-level table and a walk follows descriptors exactly like hardware.
 * Freed pages go onto a free list and are zeroed when handed out again (the
 * kernel allocates table pages with __GFP_ZERO).
 *
 * When its page table is freed, a pool is released: its memory goes to a
 * small process-wide spare list from which new (or growing) pools take
 * theirs, zeroing pages as they hand them out, as the kernel's page
 * allocator recycles freed pages. Fresh memory costs a page fault per 4 KiB
 * on first touch, and growing by copying costs more; a table that is freed
 * and built again pays neither. A released pool refuses to allocate.
 *
 * Memory cap: the pools of one machine draw their buffers from one
 * PgtableMemory budget (default PGTABLE_MEMORY_DEFAULT_LIMIT; `boot`'s and
 * the runner's `pgtableMemoryLimit`, the CLI's `--pgtable-memory`). A pool
 * that would grow past it does not allocate: `alloc` returns -1 and the
 * format fails the map with ENOMEM, as the kernel's table allocation
 * (__arm_lpae_alloc_pages, pt_iommu_new_table, xa_store) does when memory
 * runs out. So running the whole allocator out is an errno reached in well
 * under a second, with the process holding about the cap.
 */
import { hex } from "./sizes.ts";

/** Default simulated physical address of a pool's first page: 1 GiB. */
export const TABLE_POOL_DEFAULT_BASE = 0x4000_0000;
/**
 * A pool spans less than 4 GiB, so `(pa - base)` of any of its pages fits in
 * 32 bits and formats can recover a word offset from the low address word
 * alone (see `offsetOfLo`).
 */
export const TABLE_POOL_MAX_BYTES = 2 ** 32;

/** The default cap on the table memory of one machine's pools: 128 MiB (32,768 4 KiB tables: 64 GiB mapped in 4K pages). */
export const PGTABLE_MEMORY_DEFAULT_LIMIT = 128 * 2 ** 20;

/**
 * The budget a machine's table pools draw their memory from: every pool's
 * buffer is charged to it while the pool lives, and a pool never grows
 * past what is left.
 */
export class PgtableMemory {
  /** Bytes of pool buffers charged now. */
  used = 0;
  constructor(readonly limit: number = PGTABLE_MEMORY_DEFAULT_LIMIT) {
    if (!(Number.isSafeInteger(limit) && limit >= 0)) throw new RangeError(`page-table memory limit ${limit} is not a whole number of bytes`);
  }

  /** Bytes still free for pool buffers. */
  get room(): number {
    return this.limit - this.used;
  }
}

/** At most this much released pool memory is kept for reuse; the oldest goes first. */
export const TABLE_POOL_SPARE_MAX_BYTES = 64 * 2 ** 20;
/** A new pool takes a spare buffer at most this many times the size it asks for (growing pools take any). */
const SPARE_MAX_OVERSIZE = 64;

/** Released pools' buffers, oldest first, and how many leading bytes of each may be non-zero. */
const spareBuffers: ArrayBuffer[] = [];
const spareDirtyBytes: number[] = [];
let spareBytes = 0;

/** The smallest spare buffer of minBytes to maxBytes, removed from the spare list; null if none. */
function takeSpare(minBytes: number, maxBytes: number): { buffer: ArrayBuffer; dirtyBytes: number } | null {
  let best = -1;
  for (let i = 0; i < spareBuffers.length; i++) {
    const len = spareBuffers[i]!.byteLength;
    if (len >= minBytes && len <= maxBytes && (best < 0 || len < spareBuffers[best]!.byteLength)) best = i;
  }
  if (best < 0) return null;
  const buffer = spareBuffers.splice(best, 1)[0]!;
  const dirtyBytes = spareDirtyBytes.splice(best, 1)[0]!;
  spareBytes -= buffer.byteLength;
  return { buffer, dirtyBytes };
}

/** Keep a released buffer, the oldest ones making room. */
function putSpare(buffer: ArrayBuffer, dirtyBytes: number): void {
  if (buffer.byteLength > TABLE_POOL_SPARE_MAX_BYTES) return;
  spareBuffers.push(buffer);
  spareDirtyBytes.push(dirtyBytes);
  spareBytes += buffer.byteLength;
  while (spareBytes > TABLE_POOL_SPARE_MAX_BYTES) {
    spareBytes -= spareBuffers.shift()!.byteLength;
    spareDirtyBytes.shift();
  }
}

const RELEASED_WORDS = new Uint32Array(0);
const RELEASED_I32 = new Int32Array(0);

export class TablePool {
  // `declare`d fields take their type from the constructor's first store (no undefined first).
  /** The memory. Re-read after every `alloc`: growing replaces the array. */
  declare words: Uint32Array;
  /**
   * The same memory as signed 32-bit words, for the hot paths: their
   * descriptor arithmetic stays in int32 (V8 small integers). Replaced
   * together with `words`.
   */
  declare i32: Int32Array;
  /** Bytes in one page of this pool (the table granule). */
  declare readonly pageBytes: number;
  /** 32-bit words in one page. */
  declare readonly pageWords: number;
  /** Simulated physical address of word 0. */
  declare readonly base: number;
  /** The low 32 bits of base. */
  declare readonly baseLo: number;
  /** Live allocations. */
  declare allocations: number;
  /** Bytes accounted to live allocations. */
  declare bytes: number;

  declare private nextPage: number;
  declare private freeList: Int32Array;
  declare private freeCount: number;
  /** Words at and beyond this offset are known to be zero; pages below it are zeroed when handed out. */
  declare private cleanFrom: number;
  declare private released: boolean;
  /** The budget this pool's buffer is charged to. */
  declare readonly memory: PgtableMemory;

  constructor(pageBytes: number, base: number, initialPages = 4, memory: PgtableMemory = new PgtableMemory()) {
    if (base % pageBytes !== 0) throw new RangeError(`table pool base ${hex(base)} is not ${hex(pageBytes)}-aligned`);
    this.memory = memory;
    // A budget too small for the first pages leaves the pool empty: its first alloc fails.
    const want = memory.room >= pageBytes * initialPages ? pageBytes * initialPages : 0;
    const spare = want === 0 ? null : takeSpare(want, Math.min(want * SPARE_MAX_OVERSIZE, memory.room));
    this.words = spare !== null ? new Uint32Array(spare.buffer) : new Uint32Array(want / 4);
    memory.used += this.words.byteLength;
    this.i32 = new Int32Array(this.words.buffer);
    this.cleanFrom = spare !== null ? spare.dirtyBytes / 4 : 0;
    this.released = false;
    this.pageBytes = pageBytes;
    this.pageWords = pageBytes / 4;
    this.base = base;
    this.baseLo = base >>> 0;
    this.allocations = 0;
    this.bytes = 0;
    this.nextPage = 0;
    this.freeList = new Int32Array(64);
    this.freeCount = 0;
  }

  /**
   * Allocate `pages` contiguous zeroed pages, accounted as `bytes`. Returns the
   * word offset of the first page, or -1 (nothing allocated) when the pool
   * would have to grow past its memory budget or 4 GiB: the format's ENOMEM.
   * Single pages come from the free list first.
   */
  alloc(pages: number, bytes: number): number {
    let off: number;
    if (pages === 1 && this.freeCount > 0) {
      off = this.freeList[--this.freeCount]!;
      this.words.fill(0, off, off + this.pageWords);
    } else {
      if (this.released) throw new RangeError("a table pool cannot allocate after its page table was freed");
      off = this.nextPage * this.pageWords;
      const next = this.nextPage + pages;
      const need = next * this.pageWords;
      if (need > this.words.length && !this.grow(need)) return -1;
      this.nextPage = next;
      if (off < this.cleanFrom) this.words.fill(0, off, need);
    }
    this.allocations++;
    this.bytes += bytes;
    return off;
  }

  /** Return an allocation made with `alloc(pages, bytes)`; each page joins the free list. */
  free(off: number, pages: number, bytes: number): void {
    for (let i = 0; i < pages; i++) {
      if (this.freeCount === this.freeList.length) {
        const fl = new Int32Array(this.freeList.length * 2);
        fl.set(this.freeList);
        this.freeList = fl;
      }
      this.freeList[this.freeCount++] = off + i * this.pageWords;
    }
    this.allocations--;
    this.bytes -= bytes;
  }

  /**
   * Whether `pages` single-page allocations would succeed now: free pages,
   * then room in the buffer, then room in the budget (the fail-fast check
   * a format makes before a walk that must not stop half-way).
   */
  canAlloc(pages: number): boolean {
    const more = pages - this.freeCount;
    if (more <= 0) return true;
    const need = (this.nextPage + more) * this.pageWords;
    if (need <= this.words.length) return true;
    return need * 4 <= TABLE_POOL_MAX_BYTES && need * 4 - this.words.byteLength <= this.memory.room;
  }

  /**
   * The page table is gone: hand the memory to the spare list for later
   * pools. Every page must have been freed or abandoned; the pool's arrays
   * become empty and it refuses to allocate.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.memory.used -= this.words.byteLength;
    const buffer = this.words.buffer as ArrayBuffer;
    putSpare(buffer, Math.min(Math.max(this.nextPage * this.pageBytes, this.cleanFrom * 4), buffer.byteLength));
    this.words = RELEASED_WORDS;
    this.i32 = RELEASED_I32;
    this.freeCount = 0;
  }

  /** Simulated physical address of a word offset. */
  physOf(off: number): number {
    return this.base + off * 4;
  }

  /** Word offset of a simulated physical address inside this pool. */
  offsetOf(phys: number): number {
    return (phys - this.base) / 4;
  }

  /**
   * Word offset of the page whose physical address has low word `addrLo`
   * (already masked to the page alignment): exact because the pool spans
   * less than 4 GiB, and computed in 32-bit integers for the walkers.
   */
  offsetOfLo(addrLo: number): number {
    return (addrLo - this.baseLo) >>> 2;
  }

  /**
   * A buffer of at least `need` words, doubling while the budget allows and
   * no further than it does; false (nothing changed) when not even `need`
   * fits in the budget or in 4 GiB. Checked before anything is allocated.
   */
  private grow(need: number): boolean {
    const have = this.words.byteLength;
    // Bytes the buffer may reach: the cap on one pool, and what the budget leaves it.
    const max = Math.min(TABLE_POOL_MAX_BYTES, have + this.memory.room);
    if (need * 4 > max) return false;
    let len = Math.max(this.words.length * 2, this.pageWords);
    while (len < need) len *= 2;
    // Whole pages (need is a whole number of pages, so this stays at least need).
    len = Math.min(len, Math.floor(max / 4 / this.pageWords) * this.pageWords);
    // A spare buffer may hold old pages beyond what is copied: they are zeroed when handed out.
    const spare = takeSpare(need * 4, max);
    const w = spare !== null ? new Uint32Array(spare.buffer) : new Uint32Array(len);
    if (spare !== null) this.cleanFrom = Math.max(this.cleanFrom, spare.dirtyBytes / 4);
    this.memory.used += w.byteLength - have;
    w.set(this.words);
    this.words = w;
    this.i32 = new Int32Array(w.buffer);
    return true;
  }
}
