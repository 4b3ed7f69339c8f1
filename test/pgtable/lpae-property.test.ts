/**
 * Random map/unmap sequences on an Arm LPAE table against a reference that
 * keeps leaves in a Map and tables in a Set, with io-pgtable-arm's rules
 * written out at that level: blocks tear down tables under them, EEXIST on a
 * leaf, partial-block and hole unmaps return 0, batches stop at a table end
 * (a granule-sized chunk of a concatenated pgd), empty tables stay.
 *
 * The same property runs for both stages and every granule: the reference is
 * parameterised by the geometry the Arm ARM gives each configuration, written
 * out below per configuration (not read back from the model).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isErr } from "../../src/lib/errno.ts";
import { allocArmLpaePgtable, type ArmLpaeFmt } from "../../src/pgtable/lpae.ts";
import { SZ_16K, SZ_1G, SZ_2M, SZ_32M, SZ_4K, SZ_4T, SZ_512M, SZ_64K, bitmapOf } from "../../src/pgtable/sizes.ts";
import { IOMMU_READ, IOMMU_WRITE, IO_PGTABLE_QUIRK_NO_WARN } from "../../src/pgtable/types.ts";
import { must } from "./helpers.ts";

/**
 * One configuration and the geometry the format's rules give it. With a
 * granule of 2^g bytes each level resolves g - 3 bits; va_bits = ias - g;
 * levels = ceil(va_bits / (g - 3)); the walk starts at 4 - levels and the pgd
 * has 2^(va_bits - (g - 3) * (levels - 1)) entries (8 bytes each, allocated
 * at least 64 bytes). Stage 2 starts one level lower with concatenated
 * tables where the Arm ARM makes it mandatory (arm_lpae_concat_mandatory).
 */
interface Config {
  name: string;
  fmt: ArmLpaeFmt;
  bitmap: number;
  ias: number;
  oas: number;
  granule: number;
  startLevel: number;
  /** Entries of the pgd (after any concatenation). */
  pgdEntries: number;
  /** Bytes the pgd allocation takes. */
  pgdBytes: number;
  /** Leaf sizes, largest first. */
  leaves: number[];
  numRuns: number;
}

const CONFIGS: Config[] = [
  // 4K: va_bits 36, 9 bits/level: 4 levels, start 0, 512-entry pgd (4 KiB).
  { name: "S1 4K, ias 48", fmt: "ARM_64_LPAE_S1", bitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias: 48, oas: 48, granule: SZ_4K, startLevel: 0, pgdEntries: 512, pgdBytes: SZ_4K, leaves: [SZ_1G, SZ_2M, SZ_4K], numRuns: 100 },
  { name: "S2 4K, ias 48", fmt: "ARM_64_LPAE_S2", bitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias: 48, oas: 48, granule: SZ_4K, startLevel: 0, pgdEntries: 512, pgdBytes: SZ_4K, leaves: [SZ_1G, SZ_2M, SZ_4K], numRuns: 80 },
  // 4K, ias 40: va_bits 28 would start at level 0 with 2 entries; 4K at SL0 with oas 40 must concatenate:
  // start 1 with two concatenated level-1 tables, 1024 entries (8 KiB). 1G leaves live in the pgd.
  { name: "S2 4K, ias 40, concatenated pgd", fmt: "ARM_64_LPAE_S2", bitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias: 40, oas: 40, granule: SZ_4K, startLevel: 1, pgdEntries: 1024, pgdBytes: 2 * SZ_4K, leaves: [SZ_1G, SZ_2M, SZ_4K], numRuns: 80 },
  // 16K: va_bits 34, 11 bits/level: 4 levels, start 0, 2-entry pgd (16 bytes, allocated 64).
  { name: "S1 16K, ias 48", fmt: "ARM_64_LPAE_S1", bitmap: bitmapOf(SZ_16K, SZ_32M), ias: 48, oas: 48, granule: SZ_16K, startLevel: 0, pgdEntries: 2, pgdBytes: 64, leaves: [SZ_32M, SZ_16K], numRuns: 100 },
  // 16K at SL0 with ias 48 must concatenate: start 1 with two level-1 tables, 4096 entries (32 KiB).
  { name: "S2 16K, ias 48, concatenated pgd", fmt: "ARM_64_LPAE_S2", bitmap: bitmapOf(SZ_16K, SZ_32M), ias: 48, oas: 48, granule: SZ_16K, startLevel: 1, pgdEntries: 4096, pgdBytes: 2 * SZ_16K, leaves: [SZ_32M, SZ_16K], numRuns: 100 },
  // 16K, ias 40: va_bits 26: 3 levels, start 1 with 16 entries; 16K at SL1 with oas 40 must concatenate:
  // start 2 with sixteen level-2 tables, 32768 entries (256 KiB). 32M leaves live in the pgd.
  { name: "S2 16K, ias 40, 16 concatenated tables", fmt: "ARM_64_LPAE_S2", bitmap: bitmapOf(SZ_16K, SZ_32M), ias: 40, oas: 40, granule: SZ_16K, startLevel: 2, pgdEntries: 32768, pgdBytes: 16 * SZ_16K, leaves: [SZ_32M, SZ_16K], numRuns: 100 },
  // 64K: va_bits 32, 13 bits/level: 3 levels, start 1, 64-entry pgd (512 bytes). No 4T blocks with oas 48.
  { name: "S1 64K, ias 48", fmt: "ARM_64_LPAE_S1", bitmap: bitmapOf(SZ_64K, SZ_512M), ias: 48, oas: 48, granule: SZ_64K, startLevel: 1, pgdEntries: 64, pgdBytes: 512, leaves: [SZ_512M, SZ_64K], numRuns: 100 },
  { name: "S2 64K, ias 48", fmt: "ARM_64_LPAE_S2", bitmap: bitmapOf(SZ_64K, SZ_512M), ias: 48, oas: 48, granule: SZ_64K, startLevel: 1, pgdEntries: 64, pgdBytes: 512, leaves: [SZ_512M, SZ_64K], numRuns: 100 },
  // 64K, 52 bits: va_bits 36: 3 levels, start 1, 1024-entry pgd (8 KiB); oas > 48 adds 4T blocks in the pgd.
  { name: "S1 64K, ias 52 (4T blocks)", fmt: "ARM_64_LPAE_S1", bitmap: bitmapOf(SZ_64K, SZ_512M, SZ_4T), ias: 52, oas: 52, granule: SZ_64K, startLevel: 1, pgdEntries: 1024, pgdBytes: 8192, leaves: [SZ_4T, SZ_512M, SZ_64K], numRuns: 60 },
  { name: "S2 64K, ias 52 (4T blocks)", fmt: "ARM_64_LPAE_S2", bitmap: bitmapOf(SZ_64K, SZ_512M, SZ_4T), ias: 52, oas: 52, granule: SZ_64K, startLevel: 1, pgdEntries: 1024, pgdBytes: 8192, leaves: [SZ_4T, SZ_512M, SZ_64K], numRuns: 60 },
];

const alignDown = (x: number, a: number): number => x - (x % a);

interface Leaf {
  size: number;
  pa: number;
}

/** The geometry of one configuration, as the Arm ARM states it. */
class Geo {
  readonly bits: number;
  /** Entries of a granule-sized table. */
  readonly ptes: number;
  constructor(readonly c: Config) {
    this.bits = Math.log2(c.granule) - 3;
    this.ptes = c.granule / 8;
  }
  /** VA span of one entry at level l. */
  span(l: number): number {
    return 2 ** ((4 - l) * this.bits + 3);
  }
  levelOf(size: number): number {
    for (let l = this.c.startLevel; l < 4; l++) if (this.span(l) === size) return l;
    throw new Error(`no level maps ${size}`);
  }
}

class ArmRef {
  readonly leaves = new Map<number, Leaf>();
  /** Tables below the pgd, as "level@first-iova". */
  readonly tables = new Set<string>();

  constructor(private readonly g: Geo) {}

  private hasLeaf(iova: number, size: number): boolean {
    return this.leaves.get(iova)?.size === size;
  }

  /** A table entry is cleared: its subtree (leaves and tables) goes. */
  private teardown(start: number, size: number, leafLvl: number): void {
    for (const k of [...this.leaves.keys()]) if (k >= start && k < start + size) this.leaves.delete(k);
    for (const t of [...this.tables]) {
      const [lvl, base] = t.split("@").map(Number) as [number, number];
      if (lvl > leafLvl && base >= start && base < start + size) this.tables.delete(t);
    }
  }

  /** Entries one call may process: up to the end of the (granule-sized chunk of the) table. */
  private batch(iova: number, size: number, n: number): number {
    return Math.min(n, this.g.ptes - ((iova / size) % this.g.ptes));
  }

  map(iova: number, pa: number, size: number, n: number): { err: boolean; bytes: number } {
    const leafLvl = this.g.levelOf(size);
    for (let l = this.g.c.startLevel; l < leafLvl; l++) {
      const base = alignDown(iova, this.g.span(l));
      if (this.hasLeaf(base, this.g.span(l))) return { err: true, bytes: 0 };
      this.tables.add(`${l + 1}@${base}`);
    }
    const num = this.batch(iova, size, n);
    for (let i = 0; i < num; i++) {
      const e = iova + i * size;
      if (this.hasLeaf(e, size)) return { err: true, bytes: 0 };
      if (this.tables.has(`${leafLvl + 1}@${e}`)) this.teardown(e, size, leafLvl);
    }
    for (let i = 0; i < num; i++) this.leaves.set(iova + i * size, { size, pa: pa + i * size });
    return { err: false, bytes: num * size };
  }

  unmap(iova: number, size: number, n: number): number {
    const leafLvl = this.g.levelOf(size);
    for (let l = this.g.c.startLevel; l < leafLvl; l++) {
      const base = alignDown(iova, this.g.span(l));
      if (this.hasLeaf(base, this.g.span(l))) return 0;
      if (!this.tables.has(`${l + 1}@${base}`)) return 0;
    }
    const num = this.batch(iova, size, n);
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
    for (const size of this.g.c.leaves) {
      const l = this.leaves.get(alignDown(iova, size));
      if (l?.size === size) return l.pa + (iova % size);
    }
    return 0;
  }
}

/**
 * Addresses: three "regions", adjacent entries at the level of the largest
 * leaf (two at the end of a table or concatenated-pgd chunk and the first of
 * the next, so batches meet table ends), and below that a few slots at each
 * smaller leaf level, at both ends of their tables. A pgd smaller than a
 * granule holding leaves starts the regions at entry 0, so that no batch runs
 * past the pgd (the kernel would write beyond ias: finding map-beyond-ias).
 */
class Layout {
  readonly top: number;
  readonly regionBase: number;
  constructor(readonly g: Geo) {
    this.top = g.levelOf(g.c.leaves[0]!);
    const smallPgd = this.top === g.c.startLevel && g.c.pgdEntries < g.ptes;
    this.regionBase = smallPgd ? 0 : (g.ptes - 2) * g.span(this.top);
  }
  slots(l: number, probe = false): number[] {
    const n = this.g.ptes;
    if (l === 3) return probe ? [0, 1, 2, 3, 4, n - 3, n - 2, n - 1] : [0, 1, 2, 3, n - 3, n - 2, n - 1];
    return [0, 1, 2, n - 2, n - 1];
  }
  iova(region: number, size: number, slotPicks: readonly number[]): number {
    let iova = this.regionBase + region * this.g.span(this.top);
    const lvl = this.g.levelOf(size);
    for (let l = this.top + 1; l <= lvl; l++) {
      const s = this.slots(l);
      iova += s[slotPicks[l - this.top - 1]! % s.length]! * this.g.span(l);
    }
    return iova;
  }
  probes(): number[] {
    let bases = [0, 1, 2].map((r) => this.regionBase + r * this.g.span(this.top));
    for (let l = this.top + 1; l < 4; l++) bases = bases.flatMap((b) => this.slots(l, true).map((s) => b + s * this.g.span(l)));
    return bases.map((b) => b + 0x18);
  }
}

const COUNTS = [1, 1, 2, 3, 5, 600];

describe.each(CONFIGS)("ARM LPAE $name agrees with a leaf/table reference under random map/unmap", (c) => {
  const g = new Geo(c);
  const layout = new Layout(g);
  const probes = layout.probes();
  const alloc = () => must(allocArmLpaePgtable(c.fmt, { pgsizeBitmap: c.bitmap, ias: c.ias, oas: c.oas, quirks: IO_PGTABLE_QUIRK_NO_WARN }));
  // Smaller leaves are drawn more often; physical frames are chosen so that a batch of 600 stays below 2^oas.
  const sizeArb = fc.constantFrom(...c.leaves.flatMap((s, i) => Array<number>(i + 1).fill(s)));
  const opArb = fc.record({
    unmap: fc.boolean(),
    size: sizeArb,
    region: fc.integer({ min: 0, max: 2 }),
    slots: fc.tuple(fc.nat(), fc.nat()),
    count: fc.constantFrom(...COUNTS),
    pfn: fc.integer({ min: 1, max: 1000 }),
  });

  it("the table has the geometry the Arm ARM gives this configuration", () => {
    const pt = alloc();
    expect(pt.geometry.granule).toBe(c.granule);
    expect(pt.geometry.startLevel).toBe(c.startLevel);
    expect(2 ** pt.geometry.pgdBits).toBe(c.pgdEntries);
    expect(pt.cfg.pgsizeBitmap).toBe(c.bitmap);
    expect(pt.tablePages()).toBe(1);
    expect(pt.tableBytes()).toBe(c.pgdBytes);
    // Every region and probe is inside ias: no batch of the generator can leave it.
    expect(Math.max(...probes) < 2 ** c.ias).toBe(true);
    pt.free();
  });

  it("matches return values, translations and the table count; after a full unmap exactly the tables the rules created remain", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (ops) => {
        const pt = alloc();
        const ref = new ArmRef(g);
        for (const op of ops) {
          const iova = layout.iova(op.region, op.size, op.slots);
          if (op.unmap) {
            expect(pt.unmapPages(iova, op.size, op.count, null)).toBe(ref.unmap(iova, op.size, op.count));
          } else {
            const pfnMax = Math.floor(2 ** c.oas / op.size) - COUNTS.at(-1)! - 1;
            const pa = (1 + (op.pfn % pfnMax)) * op.size;
            const m = { bytes: 0 };
            const ret = pt.mapPages(iova, pa, op.size, op.count, IOMMU_READ | IOMMU_WRITE, m);
            const want = ref.map(iova, pa, op.size, op.count);
            expect(isErr(ret) ? ret.errno : "ok").toBe(want.err ? "EEXIST" : "ok");
            expect(m.bytes).toBe(want.bytes);
          }
          expect(pt.tablePages()).toBe(1 + ref.tables.size);
          expect(pt.leafBytes()).toBe([...ref.leaves.values()].reduce((n, l) => n + l.size, 0));
          for (const p of probes) expect(pt.iovaToPhys(p)).toBe(ref.translate(p));
        }
        for (const [iova, leaf] of [...ref.leaves]) {
          expect(pt.iovaToPhys(iova + leaf.size - 1)).toBe(leaf.pa + leaf.size - 1);
          expect(pt.unmapPages(iova, leaf.size, 1, null)).toBe(leaf.size);
        }
        for (const p of probes) expect(pt.iovaToPhys(p)).toBe(0);
        expect(pt.leafBytes()).toBe(0);
        // ARM never frees a table on a leaf unmap: exactly the tables the rules created remain,
        // each one granule, beside the pgd.
        expect(pt.tablePages()).toBe(1 + ref.tables.size);
        expect(pt.tableBytes()).toBe(c.pgdBytes + ref.tables.size * c.granule);
        pt.free();
        expect(pt.tablePages()).toBe(0);
        expect(pt.tableBytes()).toBe(0);
      }),
      { numRuns: c.numRuns },
    );
  });
});
