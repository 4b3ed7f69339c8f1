/**
 * The bit helpers iova.c leans on (include/linux/log2.h, bitops.h), for
 * pfns and sizes held in JS numbers: exact integers up to 2^53. JS bitwise
 * operators work on 32 bits, so values above 2^32 take the arithmetic path.
 */

const TWO_32 = 0x1_0000_0000;

/** 2^i for i in 0..63: a table read, where `2 ** i` would call pow(). */
const POW2 = Float64Array.from({ length: 64 }, (_, i) => 2 ** i);

// @kernel: fls_long (1-based index of the highest set bit; 0 for 0)
export function flsLong(x: number): number {
  if (x < TWO_32) return 32 - Math.clz32(x);
  return 64 - Math.clz32(Math.floor(x / TWO_32));
}

// @kernel: roundup_pow_of_two (x >= 1)
export function roundupPowOfTwo(x: number): number {
  return POW2[flsLong(x - 1)]!;
}

// @kernel: order_base_2 (ceil(log2(x)); 0 for x <= 1)
export function orderBase2(x: number): number {
  return x <= 1 ? 0 : flsLong(x - 1);
}

