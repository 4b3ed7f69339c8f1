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
 */
import { hex } from "./sizes.ts";

/** Default simulated physical address of a pool's first page: 1 GiB. */
export const TABLE_POOL_DEFAULT_BASE = 0x4000_0000;

export class TablePool {
  /** The memory. Re-read after every `alloc`: growing replaces the array. */
  words: Uint32Array;
  /** Bytes in one page of this pool (the table granule). */
  readonly pageBytes: number;
  /** 32-bit words in one page. */
  readonly pageWords: number;
  /** Simulated physical address of word 0. */
  readonly base: number;
  /** Live allocations. */
  allocations = 0;
  /** Bytes accounted to live allocations. */
  bytes = 0;

  private nextPage = 0;
  private freeList: Int32Array = new Int32Array(64);
  private freeCount = 0;

  constructor(pageBytes: number, base: number, initialPages = 4) {
    if (base % pageBytes !== 0) throw new RangeError(`table pool base ${hex(base)} is not ${hex(pageBytes)}-aligned`);
    this.pageBytes = pageBytes;
    this.pageWords = pageBytes / 4;
    this.base = base;
    this.words = new Uint32Array(this.pageWords * initialPages);
  }

  /**
   * Allocate `pages` contiguous zeroed pages, accounted as `bytes`. Returns the
   * word offset of the first page. Single pages come from the free list first.
   */
  alloc(pages: number, bytes: number): number {
    let off: number;
    if (pages === 1 && this.freeCount > 0) {
      off = this.freeList[--this.freeCount]!;
      this.words.fill(0, off, off + this.pageWords);
    } else {
      off = this.nextPage * this.pageWords;
      this.nextPage += pages;
      const need = this.nextPage * this.pageWords;
      if (need > this.words.length) this.grow(need);
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

  /** Simulated physical address of a word offset. */
  physOf(off: number): number {
    return this.base + off * 4;
  }

  /** Word offset of a simulated physical address inside this pool. */
  offsetOf(phys: number): number {
    return (phys - this.base) / 4;
  }

  private grow(need: number): void {
    let len = this.words.length * 2;
    while (len < need) len *= 2;
    const w = new Uint32Array(len);
    w.set(this.words);
    this.words = w;
  }
}
