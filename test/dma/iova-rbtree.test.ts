import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkRangeTree } from "../../src/dma/iova/check.ts";
import { flsLong, orderBase2, roundupPowOfTwo } from "../../src/dma/iova/log2.ts";
import { isPowerOfTwo as isPowerOf2 } from "../../src/lib/bits.ts";
import { RB_NIL, RangeTree } from "../../src/dma/iova/rbtree.ts";

function inOrder(t: RangeTree): number[] {
  const out: number[] = [];
  const walk = (n: number): void => {
    if (n === RB_NIL) return;
    walk(t.left[n]!);
    out.push(t.pfnLo[n]!);
    walk(t.right[n]!);
  };
  walk(t.root);
  return out;
}

function height(t: RangeTree, n = t.root): number {
  return n === RB_NIL ? 0 : 1 + Math.max(height(t, t.left[n]!), height(t, t.right[n]!));
}

describe("log2 helpers", () => {
  it("match the kernel's fls_long, roundup_pow_of_two and order_base_2, beyond 32 bits too", () => {
    expect([0, 1, 2, 3, 4, 0xffff_ffff, 2 ** 32, 2 ** 52].map(flsLong)).toEqual([0, 1, 2, 2, 3, 32, 33, 53]);
    expect([1, 2, 3, 5, 32, 33, 2 ** 32 + 1].map(roundupPowOfTwo)).toEqual([1, 2, 4, 8, 32, 64, 2 ** 33]);
    expect([1, 2, 3, 4, 31, 32, 33, 64].map(orderBase2)).toEqual([0, 1, 2, 2, 5, 5, 6, 6]);
    expect([1, 4096, 2 ** 40].every(isPowerOf2)).toBe(true);
    expect([0, 3, 4095, 1.5, -4].some(isPowerOf2)).toBe(false);
  });
});

describe("RangeTree", () => {
  it("keeps nodes ordered and balanced when inserted in ascending order", () => {
    const t = new RangeTree(4);
    for (let i = 0; i < 1000; i++) t.insert(t.allocNode(i * 2, i * 2), RB_NIL);
    expect(inOrder(t)).toEqual(Array.from({ length: 1000 }, (_, i) => i * 2));
    expect(checkRangeTree(t)).toEqual([]);
    expect(height(t)).toBeLessThanOrEqual(2 * Math.log2(1001));
  });

  it("walks neighbours with next and prev, and finds the range containing a pfn", () => {
    const t = new RangeTree();
    const nodes = [10, 20, 30].map((lo) => {
      const n = t.allocNode(lo, lo + 4);
      t.insert(n, RB_NIL);
      return n;
    });
    const [a, b, c] = nodes as [number, number, number];
    expect([t.prev(a), t.next(a), t.prev(b), t.next(b), t.next(c)]).toEqual([RB_NIL, b, a, c, RB_NIL]);
    expect([t.find(12), t.find(24), t.find(25), t.find(9)]).toEqual([a, b, RB_NIL, RB_NIL]);
    expect([t.lowestEndingAtOrAbove(15), t.lowestEndingAtOrAbove(14), t.lowestEndingAtOrAbove(35)]).toEqual([b, a, RB_NIL]);
  });

  it("keeps a node's handle valid while other nodes are erased around it", () => {
    const t = new RangeTree();
    const nodes = Array.from({ length: 50 }, (_, i) => {
      const n = t.allocNode(i * 10, i * 10 + 5);
      t.insert(n, RB_NIL);
      return n;
    });
    const keep = nodes[25]!;
    for (const n of nodes) if (n !== keep) t.erase(n);
    expect([t.root, t.pfnLo[keep], t.nodesLive]).toEqual([keep, 250, 1]);
  });

  it("reuses freed slots and counts only linked nodes as live", () => {
    const t = new RangeTree(2);
    const a = t.allocNode(1, 1);
    t.insert(a, RB_NIL);
    t.erase(a);
    t.freeNode(a);
    expect([t.isNode(a), t.slotsInUse, t.nodesLive]).toEqual([false, 0, 0]);
    expect(t.allocNode(5, 5)).toBe(a);
  });

  it("matches a sorted-set model under random inserts and erases (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 300 })), { maxLength: 400 }), (ops) => {
        const t = new RangeTree(2);
        const model = new Map<number, number>();
        for (const [add, key] of ops) {
          if (add && !model.has(key)) {
            const n = t.allocNode(key, key);
            t.insert(n, RB_NIL);
            model.set(key, n);
          } else if (!add && model.has(key)) {
            const n = model.get(key)!;
            t.erase(n);
            t.freeNode(n);
            model.delete(key);
          }
        }
        expect(inOrder(t)).toEqual([...model.keys()].sort((x, y) => x - y));
        expect(checkRangeTree(t)).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });
});
