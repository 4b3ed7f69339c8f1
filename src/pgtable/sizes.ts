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

/** Whether the bitmap contains the power-of-two size sz. */
export function bitmapHas(bitmap: number, sz: number): boolean {
  return Math.floor(bitmap / sz) % 2 === 1;
}

/** The sizes present in a bitmap, ascending. */
export function pgsizesOf(bitmap: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < 64 && 2 ** n <= bitmap; n++) {
    if (bitmapHas(bitmap, 2 ** n)) out.push(2 ** n);
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
  return bitmapOf(...pgsizesOf(a), ...pgsizesOf(b));
}

/** Intersection of two bitmaps. */
export function bitmapAnd(a: number, b: number): number {
  let out = 0;
  for (const sz of pgsizesOf(a)) if (bitmapHas(b, sz)) out += sz;
  return out;
}

/** Smallest size in the bitmap (the kernel's `1 << __ffs(bitmap)`); 0 for an empty bitmap. */
export function bitmapMin(bitmap: number): number {
  return pgsizesOf(bitmap)[0] ?? 0;
}

/** Largest size in the bitmap (the kernel's `1 << __fls(bitmap)`); 0 for an empty bitmap. */
export function bitmapMax(bitmap: number): number {
  const s = pgsizesOf(bitmap);
  return s[s.length - 1] ?? 0;
}

/**
 * The kernel's page-size argument check `sz && (sz & bitmap) == sz`: every bit
 * of sz is a size of the bitmap. Note it accepts a sum of several sizes; the
 * table walk then finds no level for it.
 */
export function bitmapCovers(bitmap: number, sz: number): boolean {
  return Number.isInteger(sz) && sz > 0 && bitmapAnd(sz, bitmap) === sz;
}
