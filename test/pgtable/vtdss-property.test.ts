/**
 * Random map/unmap sequences on a VT-d second-stage table against a reference
 * of leaves (Map) and tables (Set) that states generic_pt's rules at that
 * level: leaves go in address order until something is in the way
 * (EADDRINUSE), a larger leaf swallows empty tables, unmap removes whole
 * entries, stops at holes or inside a large entry's start, and frees the
 * tables it fully covers.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isErr } from "../../src/lib/errno.ts";
import { SZ_1G, SZ_2M, SZ_4K, bitmapOf } from "../../src/pgtable/sizes.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../../src/pgtable/types.ts";
import { allocVtdssPgtable } from "../../src/pgtable/vtdss.ts";
import { must } from "./helpers.ts";

const G4 = 4 * SZ_1G;
const TOP = 3;
/** Bytes one entry maps at generic_pt level l (0: 4K ... 3: 512G). */
const item = (l: number): number => 2 ** (12 + 9 * l);
const alignDown = (x: number, a: number): number => x - (x % a);

class VtdRef {
  readonly leaves = new Map<number, { size: number; pa: number }>();
  /** Tables below the top, as "level@first-iova". */
  readonly tables = new Set<string>();
  private unmapped = 0;

  private leafAt(level: number, e: number): boolean {
    return level <= 2 && this.leaves.get(e)?.size === item(level);
  }

  map(iova: number, pa: number, pgsize: number, pgcount: number): { err: string; bytes: number } {
    const len = pgsize * pgcount;
    let leaf = SZ_4K;
    if (!(pgsize === SZ_4K && pgcount === 1)) {
      leaf = [SZ_1G, SZ_2M, SZ_4K].find((s) => s <= len && iova % s === 0 && pa % s === 0)!;
    }
    const leafLvl = leaf === SZ_4K ? 0 : leaf === SZ_2M ? 1 : 2;
    let oa = pa;
    for (let s = iova; s < iova + len; s += leaf) {
      for (let l = TOP; l > leafLvl; l--) {
        const e = alignDown(s, item(l));
        if (this.leafAt(l, e)) return { err: "EADDRINUSE", bytes: oa - pa };
        this.tables.add(`${l - 1}@${e}`);
      }
      if (this.leafAt(leafLvl, s)) return { err: "EADDRINUSE", bytes: oa - pa };
      if (leafLvl > 0 && this.tables.has(`${leafLvl - 1}@${s}`)) {
        for (const k of this.leaves.keys()) if (k >= s && k < s + leaf) return { err: "EADDRINUSE", bytes: oa - pa };
        for (const t of [...this.tables]) {
          const [lvl, base] = t.split("@").map(Number) as [number, number];
          if (lvl < leafLvl && base >= s && base < s + leaf) this.tables.delete(t);
        }
      }
      this.leaves.set(s, { size: leaf, pa: oa });
      oa += leaf;
    }
    return { err: "ok", bytes: oa - pa };
  }

  unmap(iova: number, pgsize: number, pgcount: number): number {
    this.unmapped = 0;
    this.walk(TOP, iova, iova + pgsize * pgcount - 1);
    return this.unmapped;
  }

  /** true = stop. */
  private walk(level: number, va: number, last: number): boolean {
    const first = alignDown(va, item(level));
    if (this.leafAt(level, first) && va !== first) return true;
    for (let e = first; e <= last; e += item(level)) {
      const entVa = e === first ? va : e;
      if (this.leafAt(level, e)) {
        this.leaves.delete(e);
        this.unmapped += item(level);
      } else if (level > 0 && this.tables.has(`${level - 1}@${e}`)) {
        const fully = entVa === e && last >= e + item(level) - 1;
        if (this.walk(level - 1, entVa, Math.min(last, e + item(level) - 1))) return true;
        if (fully) this.tables.delete(`${level - 1}@${e}`);
      } else {
        return true;
      }
    }
    return false;
  }

  translate(iova: number): number {
    for (const size of [SZ_4K, SZ_2M, SZ_1G]) {
      const l = this.leaves.get(alignDown(iova, size));
      if (l?.size === size) return l.pa + (iova % size);
    }
    return 0;
  }
}

const opArb = fc.record({
  unmap: fc.boolean(),
  pgsize: fc.constantFrom(SZ_4K, SZ_4K, SZ_4K, SZ_2M, SZ_1G),
  region: fc.integer({ min: 0, max: 1 }),
  slot2m: fc.constantFrom(0, 1, 2, 510, 511),
  slot4k: fc.constantFrom(0, 1, 2, 3, 510, 511),
  count: fc.constantFrom(1, 1, 2, 3, 512, 600),
  paAlign: fc.constantFrom(SZ_4K, SZ_2M, SZ_1G),
  pfn: fc.integer({ min: 1, max: 1000 }),
});
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

/** Large pages get small counts: a 600 x 1G map of 4K leaves would be 157M entries. */
function countOf(op: Op): number {
  return op.pgsize === SZ_4K ? op.count : Math.min(op.count, 3);
}

/** 1G requests get 1G-aligned output so they are 1G leaves, not 262144 4K leaves each. */
function paOf(op: Op): number {
  return op.pfn * (op.pgsize === SZ_1G ? SZ_1G : op.paAlign);
}

function iovaOf(op: Op): number {
  const region = G4 + op.region * SZ_1G;
  if (op.pgsize === SZ_1G) return region;
  if (op.pgsize === SZ_2M) return region + op.slot2m * SZ_2M;
  return region + op.slot2m * SZ_2M + op.slot4k * SZ_4K;
}

const PROBES: number[] = [];
for (const r of [0, 1, 2]) {
  for (const s2 of [0, 1, 2, 3, 510, 511]) {
    for (const s4 of [0, 1, 2, 3, 4, 300, 510, 511]) PROBES.push(G4 + r * SZ_1G + s2 * SZ_2M + s4 * SZ_4K + 0x28);
  }
}

describe("VT-d second stage agrees with a leaf/table reference under random map/unmap", () => {
  it("matches return values, mapped bytes, translations and the table count", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 25 }), (ops) => {
        const pt = must(allocVtdssPgtable({ pgsizeBitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias: 48, oas: 52 }));
        const ref = new VtdRef();
        for (const op of ops) {
          const iova = iovaOf(op);
          const count = countOf(op);
          if (op.unmap) {
            expect(pt.unmapPages(iova, op.pgsize, count, null)).toBe(ref.unmap(iova, op.pgsize, count));
          } else {
            const pa = paOf(op);
            const m = { bytes: 0 };
            const ret = pt.mapPages(iova, pa, op.pgsize, count, IOMMU_READ | IOMMU_WRITE, m);
            const want = ref.map(iova, pa, op.pgsize, count);
            expect(isErr(ret) ? ret.errno : "ok").toBe(want.err);
            expect(m.bytes).toBe(want.bytes);
          }
          expect(pt.tablePages()).toBe(1 + ref.tables.size);
          expect(pt.leafBytes()).toBe([...ref.leaves.values()].reduce((n, l) => n + l.size, 0));
          for (const p of PROBES) expect(pt.iovaToPhys(p)).toBe(ref.translate(p));
        }
        for (const [iova, leaf] of [...ref.leaves]) {
          expect(pt.unmapPages(iova, leaf.size, 1, null)).toBe(leaf.size);
          ref.leaves.delete(iova);
        }
        for (const p of PROBES) expect(pt.iovaToPhys(p)).toBe(0);
        expect(pt.leafBytes()).toBe(0);
        // Leaf-by-leaf unmaps cover no table: exactly the tables the reference kept remain.
        expect(pt.tablePages()).toBe(1 + ref.tables.size);
        pt.free();
        expect(pt.tablePages()).toBe(0);
      }),
      { numRuns: 150 },
    );
  });

  it("frees every table when populated regions are unmapped in one call each", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 63 }), { minLength: 1, maxLength: 8 }), (slots) => {
        const pt = must(allocVtdssPgtable({ pgsizeBitmap: SZ_4K, ias: 48, oas: 52 }));
        for (const s of slots) expect(pt.mapPages(G4 + s * SZ_2M, s * SZ_2M + SZ_4K, SZ_4K, 512, IOMMU_WRITE, { bytes: 0 })).toBe(0);
        expect(pt.tablePages()).toBe(3 + slots.length);
        expect(pt.leafBytes()).toBe(slots.length * SZ_2M);
        for (const s of slots) expect(pt.unmapPages(G4 + s * SZ_2M, SZ_4K, 512, null)).toBe(SZ_2M);
        // The leaf tables were fully covered; the level-1 and level-2 tables were not.
        expect(pt.tablePages()).toBe(3);
        expect(pt.leafBytes()).toBe(0);
      }),
      { numRuns: 50 },
    );
  });
});
