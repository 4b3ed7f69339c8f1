/**
 * Page-size bitmap helpers: bitmaps reach 2^52, past JS's 32-bit bitwise
 * operators, so the helpers work on the two 32-bit halves. Checked against
 * the definition (bit n is set when floor(bitmap / 2^n) is odd) on random
 * bitmaps over all 53 bits.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bitmapAnd, bitmapCovers, bitmapMax, bitmapMin, bitmapOr, pgsizesOf } from "../../src/pgtable/sizes.ts";

const sizesByDefinition = (bitmap: number): number[] => {
  const out: number[] = [];
  for (let n = 0; n <= 52; n++) if (Math.floor(bitmap / 2 ** n) % 2 === 1) out.push(2 ** n);
  return out;
};
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const arbBitmap = fc.array(fc.boolean(), { minLength: 53, maxLength: 53 }).map((bits) => sum(bits.map((b, n) => (b ? 2 ** n : 0))));

describe("page-size bitmaps", () => {
  it("list, intersect, unite and bound the sizes as the definition does, over all 53 bits", () => {
    fc.assert(
      fc.property(arbBitmap, arbBitmap, (a, b) => {
        const sa = sizesByDefinition(a);
        const sb = sizesByDefinition(b);
        expect(pgsizesOf(a)).toEqual(sa);
        expect(bitmapAnd(a, b)).toBe(sum(sa.filter((s) => sb.includes(s))));
        expect(bitmapOr(a, b)).toBe(sum([...new Set([...sa, ...sb])]));
        expect(bitmapMin(a)).toBe(sa[0] ?? 0);
        expect(bitmapMax(a)).toBe(sa[sa.length - 1] ?? 0);
      }),
      { numRuns: 2000 },
    );
  });

  it("the kernel's argument check accepts sums of supported sizes only", () => {
    const arm = 0x1000 + 0x200000 + 0x40000000;
    expect(bitmapCovers(arm, 0x1000)).toBe(true);
    expect(bitmapCovers(arm, 0x201000)).toBe(true);
    expect(bitmapCovers(arm, 0x2000)).toBe(false);
    expect(bitmapCovers(arm, 2 ** 42)).toBe(false);
    expect(bitmapCovers(arm + 2 ** 42, 2 ** 42)).toBe(true);
    expect(bitmapCovers(arm, 0)).toBe(false);
  });
});
