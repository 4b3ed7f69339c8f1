/**
 * Random map/unmap sequences on an Arm LPAE table against a reference that
 * keeps leaves in a Map and tables in a Set, with io-pgtable-arm's rules
 * written out at that level: blocks tear down tables under them, EEXIST on a
 * leaf, partial-block and hole unmaps return 0, batches stop at a table end,
 * empty tables stay.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isErr } from "../../src/lib/errno.ts";
import { allocArmLpaePgtable } from "../../src/pgtable/lpae.ts";
import { SZ_1G, SZ_2M, SZ_4K, bitmapOf } from "../../src/pgtable/sizes.ts";
import { IOMMU_READ, IOMMU_WRITE, IO_PGTABLE_QUIRK_NO_WARN } from "../../src/pgtable/types.ts";
import { must } from "./helpers.ts";

const G4 = 4 * SZ_1G;
const ENTRIES = 512;
/** VA span of one entry at level l (4-level, 4K granule). */
const span = (l: number): number => 2 ** (12 + 9 * (3 - l));
const levelOf = (size: number): number => (size === SZ_4K ? 3 : size === SZ_2M ? 2 : 1);
const alignDown = (x: number, a: number): number => x - (x % a);

interface Leaf {
  size: number;
  pa: number;
}

class ArmRef {
  readonly leaves = new Map<number, Leaf>();
  /** Tables below the pgd, as "level@first-iova". */
  readonly tables = new Set<string>();

  private hasLeaf(iova: number, size: number): boolean {
    return this.leaves.get(iova)?.size === size;
  }

  private teardown(start: number, size: number, leafLvl: number): void {
    for (const k of [...this.leaves.keys()]) if (k >= start && k < start + size) this.leaves.delete(k);
    for (const t of [...this.tables]) {
      const [lvl, base] = t.split("@").map(Number) as [number, number];
      if (lvl > leafLvl && base >= start && base < start + size) this.tables.delete(t);
    }
  }

  map(iova: number, pa: number, size: number, n: number): { err: boolean; bytes: number } {
    const leafLvl = levelOf(size);
    for (let l = 0; l < leafLvl; l++) {
      const base = alignDown(iova, span(l));
      if (l >= 1 && this.hasLeaf(base, span(l))) return { err: true, bytes: 0 };
      this.tables.add(`${l + 1}@${base}`);
    }
    const num = Math.min(n, ENTRIES - ((iova / size) % ENTRIES));
    for (let i = 0; i < num; i++) {
      const e = iova + i * size;
      if (this.hasLeaf(e, size)) return { err: true, bytes: 0 };
      if (this.tables.has(`${leafLvl + 1}@${e}`)) this.teardown(e, size, leafLvl);
    }
    for (let i = 0; i < num; i++) this.leaves.set(iova + i * size, { size, pa: pa + i * size });
    return { err: false, bytes: num * size };
  }

  unmap(iova: number, size: number, n: number): number {
    const leafLvl = levelOf(size);
    for (let l = 0; l < leafLvl; l++) {
      const base = alignDown(iova, span(l));
      if (l >= 1 && this.hasLeaf(base, span(l))) return 0;
      if (!this.tables.has(`${l + 1}@${base}`)) return 0;
    }
    const num = Math.min(n, ENTRIES - ((iova / size) % ENTRIES));
    let i = 0;
    for (; i < num; i++) {
      const e = iova + i * size;
      if (this.hasLeaf(e, size)) this.leaves.delete(e);
      else if (this.tables.has(`${leafLvl + 1}@${e}`)) this.teardown(e, size, leafLvl);
      else break;
    }
    return i * size;
  }

  translate(iova: number): number {
    for (const size of [SZ_4K, SZ_2M, SZ_1G]) {
      const l = this.leaves.get(alignDown(iova, size));
      if (l?.size === size) return l.pa + (iova % size);
    }
    return 0;
  }
}

const sizeArb = fc.constantFrom(SZ_4K, SZ_4K, SZ_4K, SZ_2M, SZ_2M, SZ_1G);
const opArb = fc.record({
  unmap: fc.boolean(),
  size: sizeArb,
  region: fc.integer({ min: 0, max: 1 }),
  slot2m: fc.constantFrom(0, 1, 2, 510, 511),
  slot4k: fc.constantFrom(0, 1, 2, 3, 509, 510, 511),
  count: fc.constantFrom(1, 1, 2, 3, 5, 600),
  pfn: fc.integer({ min: 1, max: 1000 }),
});
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

function iovaOf(op: Op): number {
  const region = G4 + op.region * SZ_1G;
  if (op.size === SZ_1G) return region;
  if (op.size === SZ_2M) return region + op.slot2m * SZ_2M;
  return region + op.slot2m * SZ_2M + op.slot4k * SZ_4K;
}

const PROBES: number[] = [];
for (const r of [0, 1]) {
  for (const s2 of [0, 1, 2, 510, 511]) {
    for (const s4 of [0, 1, 2, 3, 4, 509, 510, 511]) PROBES.push(G4 + r * SZ_1G + s2 * SZ_2M + s4 * SZ_4K + 0x18);
  }
}

describe("ARM LPAE agrees with a leaf/table reference under random map/unmap", () => {
  it("matches return values, translations and the table count; empty tables survive full unmap", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (ops) => {
        const pt = must(
          allocArmLpaePgtable("ARM_64_LPAE_S1", { pgsizeBitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias: 48, oas: 48, quirks: IO_PGTABLE_QUIRK_NO_WARN }),
        );
        const ref = new ArmRef();
        for (const op of ops) {
          const iova = iovaOf(op);
          if (op.unmap) {
            expect(pt.unmapPages(iova, op.size, op.count, null)).toBe(ref.unmap(iova, op.size, op.count));
          } else {
            const pa = op.pfn * op.size;
            const m = { bytes: 0 };
            const ret = pt.mapPages(iova, pa, op.size, op.count, IOMMU_READ | IOMMU_WRITE, m);
            const want = ref.map(iova, pa, op.size, op.count);
            expect(isErr(ret) ? ret.errno : "ok").toBe(want.err ? "EEXIST" : "ok");
            expect(m.bytes).toBe(want.bytes);
          }
          expect(pt.tablePages()).toBe(1 + ref.tables.size);
          for (const p of PROBES) expect(pt.iovaToPhys(p)).toBe(ref.translate(p));
        }
        for (const [iova, leaf] of [...ref.leaves]) {
          expect(pt.iovaToPhys(iova + leaf.size - 1)).toBe(leaf.pa + leaf.size - 1);
          expect(pt.unmapPages(iova, leaf.size, 1, null)).toBe(leaf.size);
        }
        for (const p of PROBES) expect(pt.iovaToPhys(p)).toBe(0);
        // ARM never frees a table on a leaf unmap: exactly the tables the rules created remain.
        expect(pt.tablePages()).toBe(1 + ref.tables.size);
        expect(pt.tableBytes()).toBe((1 + ref.tables.size) * SZ_4K);
        pt.free();
        expect(pt.tablePages()).toBe(0);
      }),
      { numRuns: 150 },
    );
  });
});
