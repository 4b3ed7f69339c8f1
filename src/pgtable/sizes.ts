/**
 * Size constants and page-size-bitmap helpers.
 *
 * A pgsize bitmap is a sum of powers of two and can hold sizes up to 2^52
 * (ARM's 4 TiB block is 2^42), so it is a JS number and is never passed
 * through the 32-bit bitwise operators. Addresses likewise: JS numbers are
 * exact integers below 2^53, which covers every ias/oas up to 52 bits.
 */

import { hex, isPowerOfTwo } from "../lib/bits.ts";

export const SZ_4K = 0x1000;
export const SZ_16K = 0x4000;
export const SZ_64K = 0x10000;
export const SZ_1M = 0x10_0000;
export const SZ_2M = 0x20_0000;
export const SZ_32M = 0x200_0000;
export const SZ_512M = 0x2000_0000;
export const SZ_1G = 0x4000_0000;
export const SZ_4T = 2 ** 42;

/** CPU page size the model assumes (the kernel's PAGE_SIZE on x86 and most arm64). */
export const PAGE_SIZE = SZ_4K;

export { hex, isPowerOfTwo };

/** log2 of a power of two; -1 if x is not one. */
export function ilog2(x: number): number {
  if (!isPowerOfTwo(x)) return -1;
  let n = 0;
  while (x > 1) {
    x /= 2;
    n++;
  }
  return n;
}

const TWO_32 = 2 ** 32;

/** Whether the bitmap contains the power-of-two size sz. */
export function bitmapHas(bitmap: number, sz: number): boolean {
  return Math.floor(bitmap / sz) % 2 === 1;
}

/** The sizes present in a bitmap, ascending (the bitmap's two 32-bit halves scanned a set bit at a time). */
export function pgsizesOf(bitmap: number): number[] {
  const out: number[] = [];
  let lo = bitmap >>> 0;
  let hi = Math.floor(bitmap / TWO_32) >>> 0;
  while (lo !== 0) {
    const bit = lo & -lo;
    out.push(bit >>> 0);
    lo = (lo ^ bit) >>> 0;
  }
  while (hi !== 0) {
    const bit = hi & -hi;
    out.push((bit >>> 0) * TWO_32);
    hi = (hi ^ bit) >>> 0;
  }
  return out;
}

/** Build a bitmap from sizes (each a power of two, duplicates ignored). */
export function bitmapOf(...sizes: number[]): number {
  let bm = 0;
  for (const sz of sizes) if (!bitmapHas(bm, sz)) bm += sz;
  return bm;
}

/** Union of two bitmaps (JS `|` would cut them to 32 bits). */
export function bitmapOr(a: number, b: number): number {
  return (((a >>> 0) | (b >>> 0)) >>> 0) + (((Math.floor(a / TWO_32) | Math.floor(b / TWO_32)) >>> 0) * TWO_32);
}

/** Intersection of two bitmaps. */
export function bitmapAnd(a: number, b: number): number {
  return (((a >>> 0) & (b >>> 0)) >>> 0) + (((Math.floor(a / TWO_32) & Math.floor(b / TWO_32)) >>> 0) * TWO_32);
}

/** Smallest size in the bitmap (the kernel's `1 << __ffs(bitmap)`); 0 for an empty bitmap. */
export function bitmapMin(bitmap: number): number {
  const lo = bitmap >>> 0;
  if (lo !== 0) return (lo & -lo) >>> 0;
  const hi = Math.floor(bitmap / TWO_32) >>> 0;
  return hi === 0 ? 0 : ((hi & -hi) >>> 0) * TWO_32;
}

/** Largest size in the bitmap (the kernel's `1 << __fls(bitmap)`); 0 for an empty bitmap. */
export function bitmapMax(bitmap: number): number {
  const hi = Math.floor(bitmap / TWO_32) >>> 0;
  if (hi !== 0) return 2 ** (31 - Math.clz32(hi)) * TWO_32;
  const lo = bitmap >>> 0;
  return lo === 0 ? 0 : 2 ** (31 - Math.clz32(lo));
}

/**
 * The kernel's page-size argument check `sz && (sz & bitmap) == sz`: every bit
 * of sz is a size of the bitmap. Note it accepts a sum of several sizes; the
 * table walk then finds no level for it.
 */
export function bitmapCovers(bitmap: number, sz: number): boolean {
  return Number.isInteger(sz) && sz > 0 && bitmapAnd(sz, bitmap) === sz;
}
