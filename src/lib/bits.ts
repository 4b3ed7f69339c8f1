/**
 * Bit helpers for addresses and sizes above 2^32. JS bitwise operators work
 * on 32 bits, so IOVAs, physical addresses and page sizes (up to 2^52) are
 * handled with arithmetic. All inputs are non-negative integers below 2^53.
 */

const TWO32 = 4294967296;

/** Count trailing zeros (`__ffs`); 64 for zero. */
export function ctz(x: number): number {
  if (x === 0) return 64;
  const lo = x % TWO32;
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  const hi = Math.floor(x / TWO32);
  return 32 + 31 - Math.clz32(hi & -hi);
}

/**
 * `x & (a - 1)` for a power-of-two `a`: the offset of x inside an a-aligned
 * block. `%` on numbers above 2^31 is a call to fmod; for a <= 2^31 the low
 * 32 bits (`x >>> 0`, exact for integers below 2^53) are enough.
 */
export function modPow2(x: number, a: number): number {
  return a <= 0x80000000 ? (x >>> 0) & (a - 1) : x - Math.floor(x / a) * a;
}

/** `IS_ALIGNED(x, a)` for a power-of-two `a`. */
export function isAligned(x: number, a: number): boolean {
  return modPow2(x, a) === 0;
}

/** `ALIGN(x, a)`: round up to a multiple of the power of two `a`. */
export function alignUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

/** Round down to a multiple of the power of two `a`. */
export function alignDown(x: number, a: number): number {
  return Math.floor(x / a) * a;
}

// @kernel: is_power_of_2 (false for 0, negatives and non-integers)
export function isPowerOfTwo(x: number): boolean {
  return Number.isInteger(x) && x > 0 && x <= Number.MAX_SAFE_INTEGER && 2 ** ctz(x) === x;
}

/** An address or size as hex, for messages. */
export function hex(x: number): string {
  return "0x" + x.toString(16);
}
