/** io-pgtable-arm: configuration, error cases, batching, PTE encoding, table lifetime, TLB callbacks. */
import { describe, expect, it } from "vitest";
import { isErr, type KError } from "../../src/lib/errno.ts";
import { newIommuIotlbGather } from "../../src/pgtable/gather.ts";
import { allocArmLpaePgtable, type ArmLpaeFmt, type ArmLpaeIoPgtable } from "../../src/pgtable/lpae.ts";
import { SZ_16K, SZ_1G, SZ_1M, SZ_2M, SZ_32M, SZ_4K, SZ_4T, SZ_512M, SZ_64K, bitmapOf } from "../../src/pgtable/sizes.ts";
import {
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  IO_PGTABLE_QUIRK_ARM_HD,
  IO_PGTABLE_QUIRK_ARM_NS,
  IO_PGTABLE_QUIRK_ARM_OUTER_WBWA,
  IO_PGTABLE_QUIRK_ARM_S2FWB,
  IO_PGTABLE_QUIRK_ARM_TTBR1,
  IO_PGTABLE_QUIRK_NO_WARN,
  newPgtableWalkData,
  type IoPgtableCfgInit,
} from "../../src/pgtable/types.ts";
import { Recorder, must } from "./helpers.ts";

const RW = IOMMU_READ | IOMMU_WRITE;
const BM_4K = bitmapOf(SZ_4K, SZ_2M, SZ_1G);
const G4 = 4 * SZ_1G;
const PA = 256 * SZ_1G;

function errno(x: unknown): string {
  return isErr(x) ? (x as KError).errno : "ok";
}

function arm(fmt: ArmLpaeFmt, init: Partial<IoPgtableCfgInit> = {}, rec = new Recorder()): ArmLpaeIoPgtable {
  return must(allocArmLpaePgtable(fmt, { pgsizeBitmap: BM_4K, ias: 48, oas: 48, tlb: rec.tlb, onFinding: rec.onFinding, ...init }));
}

/** The 64-bit descriptor at level lvl on iova's walk, as a BigInt (tests only). */
function pte(ops: ArmLpaeIoPgtable, iova: number, lvl: number): bigint {
  const wd = newPgtableWalkData();
  ops.pgtableWalk(iova, wd);
  return (BigInt(wd.hi[lvl]!) << 32n) | BigInt(wd.lo[lvl]!);
}

const b = (n: number): bigint => 1n << BigInt(n);

describe("granule selection and geometry (arm_lpae_restrict_pgsizes, arm_lpae_alloc_pgtable)", () => {
  it.each([
    // [bitmap, ias, oas, levels, startLevel, pgdEntries, pgdAllocBytes]
    [BM_4K, 48, 48, 4, 0, 512, 4096],
    [BM_4K, 39, 48, 3, 1, 512, 4096],
    [BM_4K, 32, 48, 3, 1, 4, 64],
    [bitmapOf(SZ_16K, SZ_32M), 48, 48, 4, 0, 2, 64],
    [bitmapOf(SZ_64K, SZ_512M), 48, 48, 3, 1, 64, 512],
    [bitmapOf(SZ_64K, SZ_512M, SZ_4T), 52, 52, 3, 1, 1024, 8192],
  ])("bitmap %s ias %i oas %i: %i levels from level %i, %i pgd entries, %i-byte pgd", (bm, ias, oas, levels, start, entries, bytes) => {
    const ops = arm("ARM_64_LPAE_S1", { pgsizeBitmap: bm, ias, oas });
    expect(ops.geometry.levels).toBe(levels);
    expect(ops.geometry.startLevel).toBe(start);
    expect(2 ** ops.geometry.pgdBits).toBe(entries);
    expect(ops.geometry.pgdAllocBytes).toBe(bytes);
    expect(ops.tablePages()).toBe(1);
    expect(ops.tableBytes()).toBe(bytes);
  });

  it("prefers the CPU page size, then the largest size below it, then the smallest above", () => {
    expect(arm("ARM_64_LPAE_S1", { pgsizeBitmap: bitmapOf(SZ_4K, SZ_64K, SZ_2M) }).cfg.pgsizeBitmap).toBe(bitmapOf(SZ_4K, SZ_2M));
    expect(arm("ARM_64_LPAE_S1", { pgsizeBitmap: bitmapOf(SZ_16K, SZ_64K, SZ_2M, SZ_32M) }).cfg.pgsizeBitmap).toBe(bitmapOf(SZ_16K, SZ_32M));
    // A granule below 4K exists in no LPAE regime: nothing is left.
    expect(errno(allocArmLpaePgtable("ARM_64_LPAE_S1", { pgsizeBitmap: bitmapOf(0x800, SZ_64K), ias: 48, oas: 48 }))).toBe("EINVAL");
  });

  it("clamps ias and oas to 48 bits, or 52 with the 64K granule; 4T blocks only when oas > 48", () => {
    const a = arm("ARM_64_LPAE_S1", { ias: 52, oas: 52 });
    expect([a.cfg.ias, a.cfg.oas]).toEqual([48, 48]);
    const c = arm("ARM_64_LPAE_S1", { pgsizeBitmap: bitmapOf(SZ_64K, SZ_512M, SZ_4T), ias: 52, oas: 48 });
    expect(c.cfg.pgsizeBitmap).toBe(bitmapOf(SZ_64K, SZ_512M));
  });

  it("refuses an oas without a TCR.IPS encoding, foreign quirks, TTBR1 and OUTER_WBWA on a coherent walk", () => {
    expect(errno(allocArmLpaePgtable("ARM_64_LPAE_S1", { pgsizeBitmap: BM_4K, ias: 40, oas: 46 }))).toBe("EINVAL");
    expect(errno(allocArmLpaePgtable("ARM_64_LPAE_S2", { pgsizeBitmap: BM_4K, ias: 40, oas: 48, quirks: IO_PGTABLE_QUIRK_ARM_NS }))).toBe("EINVAL");
    expect(errno(allocArmLpaePgtable("ARM_64_LPAE_S1", { pgsizeBitmap: BM_4K, ias: 40, oas: 48, quirks: IO_PGTABLE_QUIRK_ARM_S2FWB }))).toBe("EINVAL");
    expect(errno(allocArmLpaePgtable("ARM_64_LPAE_S1", { pgsizeBitmap: BM_4K, ias: 40, oas: 48, quirks: IO_PGTABLE_QUIRK_ARM_TTBR1 }))).toBe("EINVAL");
    expect(errno(allocArmLpaePgtable("ARM_64_LPAE_S1", { pgsizeBitmap: BM_4K, ias: 40, oas: 48, quirks: IO_PGTABLE_QUIRK_ARM_OUTER_WBWA }))).toBe("EINVAL");
    const nc = arm("ARM_64_LPAE_S1", { coherentWalk: false, quirks: IO_PGTABLE_QUIRK_ARM_OUTER_WBWA });
    expect(nc.cfg.armLpaeS1Cfg!.tcr).toMatchObject({ sh: 2, irgn: 0, orgn: 1 });
  });

  it("writes TTBR, TCR and MAIR for stage 1", () => {
    const ops = arm("ARM_64_LPAE_S1", { ias: 48, oas: 40 });
    expect(ops.cfg.armLpaeS1Cfg).toEqual({
      ttbr: ops.cfg.tableBase,
      tcr: { sh: 3, irgn: 1, orgn: 1, tg: 0, ips: 2, tsz: 16 },
      mair: 0xf404ff44,
    });
  });
});

describe("stage-2 concatenated pgd (arm_lpae_concat_mandatory)", () => {
  it("starts a 4K, 40-bit table at level 1 with two concatenated tables", () => {
    const ops = arm("ARM_64_LPAE_S2", { ias: 40, oas: 40 });
    expect(ops.geometry).toMatchObject({ startLevel: 1, pgdBits: 10, pgdSize: 8192, concatenated: true });
    expect(ops.tableBytes()).toBe(8192);
    // SL0 for the 4K granule is ~(start_level + 1) & 3.
    expect(ops.cfg.armLpaeS2Cfg!.vtcr).toEqual({ sh: 3, irgn: 1, orgn: 1, tg: 0, ps: 2, tsz: 24, sl: 1 });
  });

  it("concatenates 16K tables at 48 bits and refuses a pgd too large to concatenate", () => {
    const ops = arm("ARM_64_LPAE_S2", { pgsizeBitmap: bitmapOf(SZ_16K, SZ_32M), ias: 48, oas: 48 });
    expect(ops.geometry).toMatchObject({ startLevel: 1, pgdBits: 12, concatenated: true });
    expect(errno(allocArmLpaePgtable("ARM_64_LPAE_S2", { pgsizeBitmap: BM_4K, ias: 48, oas: 40 }))).toBe("EINVAL");
  });

  it("caps a start-level batch at the granule-sized chunk of the concatenated pgd (arm_lpae_max_entries)", () => {
    const ops = arm("ARM_64_LPAE_S2", { ias: 40, oas: 40 });
    const m = { bytes: 0 };
    expect(ops.mapPages(0, 0, SZ_1G, 600, RW, m)).toBe(0);
    expect(m.bytes).toBe(512 * SZ_1G);
    expect(ops.iovaToPhys(512 * SZ_1G)).toBe(0);
    expect(ops.mapPages(512 * SZ_1G, 0, SZ_1G, 88, RW, m)).toBe(0);
    expect(ops.iovaToPhys(599 * SZ_1G + 5)).toBe(87 * SZ_1G + 5);
  });
});

describe("map_pages argument checks (arm_lpae_map_pages)", () => {
  it("rejects a pgsize that is not made of bitmap sizes with EINVAL and a WARN", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", {}, rec);
    const m = { bytes: 0 };
    expect(errno(ops.mapPages(G4, PA, 0x2000, 1, RW, m))).toBe("EINVAL");
    expect(errno(ops.mapPages(G4, PA, 0, 1, RW, m))).toBe("EINVAL");
    expect(errno(ops.mapPages(G4, PA, SZ_64K, 1, RW, m))).toBe("EINVAL");
    expect(rec.kinds()).toEqual(["bad-pgsize", "bad-pgsize", "bad-pgsize"]);
    expect(ops.tablePages()).toBe(1);
    expect(m.bytes).toBe(0);
  });

  it("walks down allocating tables for a sum of sizes, then fails at the last level (WARN, EINVAL)", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", {}, rec);
    expect(errno(ops.mapPages(G4, PA, SZ_4K + SZ_2M, 1, RW, { bytes: 0 }))).toBe("EINVAL");
    expect(rec.kinds()).toEqual(["unreachable-pgsize"]);
    expect(ops.tablePages()).toBe(4);
  });

  it("fails a bitmap size no walked level maps, after allocating tables on the way down", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", { ias: 30, oas: 48 }, rec);
    expect(ops.geometry.startLevel).toBe(2);
    expect(ops.cfg.pgsizeBitmap).toBe(BM_4K);
    expect(errno(ops.mapPages(0, PA, SZ_1G, 1, RW, { bytes: 0 }))).toBe("EINVAL");
    expect(rec.kinds()).toEqual(["unreachable-pgsize"]);
    expect(ops.tablePages()).toBe(2);
  });

  it("returns ERANGE for an iova beyond ias or a paddr beyond oas, before looking at prot", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", { ias: 40, oas: 36 }, rec);
    expect(errno(ops.mapPages(2 ** 40, 0, SZ_4K, 1, RW, { bytes: 0 }))).toBe("ERANGE");
    expect(errno(ops.mapPages(0, 2 ** 36, SZ_4K, 1, RW, { bytes: 0 }))).toBe("ERANGE");
    expect(errno(ops.mapPages(0, 2 ** 36, SZ_4K, 1, 0, { bytes: 0 }))).toBe("ERANGE");
    expect(rec.kinds()).toEqual(["out-of-range", "out-of-range", "out-of-range"]);
    expect(ops.mapPages(2 ** 40 - SZ_4K, 2 ** 36 - SZ_4K, SZ_4K, 1, RW, { bytes: 0 })).toBe(0);
  });

  it("returns EINVAL without a WARN when prot has neither READ nor WRITE", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", {}, rec);
    expect(errno(ops.mapPages(G4, PA, SZ_4K, 1, 0, { bytes: 0 }))).toBe("EINVAL");
    expect(errno(ops.mapPages(G4, PA, SZ_4K, 1, IOMMU_CACHE | IOMMU_NOEXEC, { bytes: 0 }))).toBe("EINVAL");
    expect(rec.findings).toEqual([]);
    expect(ops.iovaToPhys(G4)).toBe(0);
  });

  it("does not check alignment: the low bits of a misaligned iova or paddr are dropped", () => {
    const ops = arm("ARM_64_LPAE_S1");
    expect(ops.mapPages(G4 + 0x123, PA + 0x456, SZ_4K, 1, RW, { bytes: 0 })).toBe(0);
    expect(ops.iovaToPhys(G4 + 0x10)).toBe(PA + 0x10);
  });

  it("adds to mapped and never zeroes it", () => {
    const ops = arm("ARM_64_LPAE_S1");
    const m = { bytes: 100 };
    expect(ops.mapPages(G4, PA, SZ_4K, 3, RW, m)).toBe(0);
    expect(m.bytes).toBe(100 + 3 * SZ_4K);
  });
});

describe("map over existing entries (arm_lpae_init_pte)", () => {
  it("returns EEXIST over a leaf, WARNs unless NO_WARN", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", {}, rec);
    expect(ops.mapPages(G4, PA, SZ_4K, 1, RW, { bytes: 0 })).toBe(0);
    expect(errno(ops.mapPages(G4, PA + SZ_4K, SZ_4K, 1, RW, { bytes: 0 }))).toBe("EEXIST");
    expect(rec.kinds()).toEqual(["map-exists"]);
    expect(ops.iovaToPhys(G4)).toBe(PA);

    const quiet = new Recorder();
    const q = arm("ARM_64_LPAE_S1", { quirks: IO_PGTABLE_QUIRK_NO_WARN }, quiet);
    expect(q.mapPages(G4, PA, SZ_4K, 1, RW, { bytes: 0 })).toBe(0);
    expect(errno(q.mapPages(G4, PA, SZ_4K, 1, RW, { bytes: 0 }))).toBe("EEXIST");
    expect(quiet.findings).toEqual([]);
  });

  it("returns EEXIST for a smaller page inside a block", () => {
    const ops = arm("ARM_64_LPAE_S1");
    expect(ops.mapPages(G4, PA, SZ_2M, 1, RW, { bytes: 0 })).toBe(0);
    expect(errno(ops.mapPages(G4 + SZ_4K, PA, SZ_4K, 1, RW, { bytes: 0 }))).toBe("EEXIST");
    expect(ops.iovaToPhys(G4 + SZ_4K)).toBe(PA + SZ_4K);
  });

  it("checks a whole batch before writing: one leaf in the way fails the call and maps nothing", () => {
    const ops = arm("ARM_64_LPAE_S1");
    expect(ops.mapPages(G4 + 5 * SZ_4K, PA, SZ_4K, 1, RW, { bytes: 0 })).toBe(0);
    const m = { bytes: 0 };
    expect(errno(ops.mapPages(G4, PA, SZ_4K, 10, RW, m))).toBe("EEXIST");
    expect(m.bytes).toBe(0);
    expect(ops.iovaToPhys(G4)).toBe(0);
  });

  it("tears down a table under a new block even with live leaves, flushing the walk without a gather", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", {}, rec);
    expect(ops.mapPages(G4, PA, SZ_4K, 8, RW, { bytes: 0 })).toBe(0);
    expect(ops.tablePages()).toBe(4);
    rec.clear();
    expect(ops.mapPages(G4, 2 * PA, SZ_2M, 1, RW, { bytes: 0 })).toBe(0);
    expect(ops.tablePages()).toBe(3);
    expect(rec.calls).toEqual([{ op: "flushWalk", iova: G4, size: SZ_2M, granule: SZ_4K }]);
    expect(rec.kinds()).toEqual(["map-discards-mappings"]);
    expect(rec.findings[0]!.message).toContain("8 leaves");
    expect(ops.iovaToPhys(G4 + SZ_4K)).toBe(2 * PA + SZ_4K);
  });

  it("replaces an empty table silently", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", {}, rec);
    ops.mapPages(G4, PA, SZ_4K, 1, RW, { bytes: 0 });
    expect(ops.unmapPages(G4, SZ_4K, 1, null)).toBe(SZ_4K);
    rec.clear();
    expect(ops.mapPages(G4, PA, SZ_2M, 1, RW, { bytes: 0 })).toBe(0);
    expect(rec.calls).toEqual([{ op: "flushWalk", iova: G4, size: SZ_2M, granule: SZ_4K }]);
    expect(rec.findings).toEqual([]);
  });

  it("has already torn down earlier tables when a later entry of the batch is a leaf", () => {
    const ops = arm("ARM_64_LPAE_S1", { quirks: IO_PGTABLE_QUIRK_NO_WARN });
    ops.mapPages(G4, PA, SZ_4K, 1, RW, { bytes: 0 });
    ops.mapPages(G4 + SZ_2M, PA, SZ_2M, 1, RW, { bytes: 0 });
    expect(ops.tablePages()).toBe(4);
    const m = { bytes: 0 };
    expect(errno(ops.mapPages(G4, PA, SZ_2M, 2, RW, m))).toBe("EEXIST");
    expect(m.bytes).toBe(0);
    expect(ops.tablePages()).toBe(3);
    expect(ops.iovaToPhys(G4)).toBe(0);
  });
});

describe("batching never crosses a table boundary", () => {
  it("maps only up to the end of the leaf table (harness: 10 asked, 2 left, 2 mapped, rc 0)", () => {
    const ops = arm("ARM_64_LPAE_S1");
    const iova = G4 + 510 * SZ_4K;
    const m = { bytes: 0 };
    expect(ops.mapPages(iova, PA, SZ_4K, 10, RW, m)).toBe(0);
    expect(m.bytes).toBe(2 * SZ_4K);
    expect(ops.iovaToPhys(iova + SZ_4K)).toBe(PA + SZ_4K);
    expect(ops.iovaToPhys(iova + 2 * SZ_4K)).toBe(0);
  });

  it("maps blocks up to the end of their table, and unmaps the same way", () => {
    const ops = arm("ARM_64_LPAE_S1");
    const m = { bytes: 0 };
    expect(ops.mapPages(G4 + 500 * SZ_2M, PA, SZ_2M, 100, RW, m)).toBe(0);
    expect(m.bytes).toBe(12 * SZ_2M);
    expect(ops.unmapPages(G4 + 500 * SZ_2M, SZ_2M, 100, null)).toBe(12 * SZ_2M);
  });

  it("lets a start-level batch run past a small pgd (beyond ias), as the kernel does, and reports it", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", { ias: 32 }, rec);
    expect(2 ** ops.geometry.pgdBits).toBe(4);
    const m = { bytes: 0 };
    expect(ops.mapPages(0, PA, SZ_1G, 6, RW, m)).toBe(0);
    expect(m.bytes).toBe(6 * SZ_1G);
    expect(rec.kinds()).toEqual(["map-beyond-ias"]);
    expect(ops.iovaToPhys(3 * SZ_1G + 5)).toBe(PA + 3 * SZ_1G + 5);
  });

  it("lets a core-style loop map a large range in table-sized steps", () => {
    const ops = arm("ARM_64_LPAE_S1");
    let done = 0;
    const perCall: number[] = [];
    const pages = 1000;
    const iova = G4 + 100 * SZ_4K;
    while (done < pages * SZ_4K) {
      const m = { bytes: 0 };
      expect(ops.mapPages(iova + done, PA + done, SZ_4K, pages - done / SZ_4K, RW, m)).toBe(0);
      expect(m.bytes).toBeGreaterThan(0);
      expect(m.bytes).toBeLessThanOrEqual(512 * SZ_4K);
      done += m.bytes;
      perCall.push(m.bytes);
    }
    // G4 is 2M-aligned, so the first level-3 table (512 entries) has 512 - 100 = 412 entries left;
    // the second call fills a whole table (512); the last maps the rest: 1000 - 412 - 512 = 76.
    expect(perCall).toEqual([412 * SZ_4K, 512 * SZ_4K, 76 * SZ_4K]);
    expect(ops.iovaToPhys(iova + 999 * SZ_4K + 7)).toBe(PA + 999 * SZ_4K + 7);
  });
});

describe("unmap_pages (arm_lpae_unmap_pages, __arm_lpae_unmap)", () => {
  it("returns 0, keeps the block and WARNs on a partial unmap of a block", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", { quirks: IO_PGTABLE_QUIRK_NO_WARN }, rec);
    ops.mapPages(G4, PA, SZ_2M, 1, RW, { bytes: 0 });
    expect(ops.unmapPages(G4 + SZ_4K, SZ_4K, 1, null)).toBe(0);
    expect(ops.unmapPages(G4, SZ_4K, 1, null)).toBe(0);
    expect(rec.kinds()).toEqual(["unmap-partial-block", "unmap-partial-block"]);
    expect(ops.iovaToPhys(G4 + SZ_4K)).toBe(PA + SZ_4K);
  });

  it("returns 0 for a hole and names the kernel's (size_t)-ENOENT, even with NO_WARN", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", { quirks: IO_PGTABLE_QUIRK_NO_WARN }, rec);
    expect(ops.unmapPages(G4, SZ_4K, 1, null)).toBe(0);
    ops.mapPages(G4 + SZ_4K, PA, SZ_4K, 1, RW, { bytes: 0 });
    expect(ops.unmapPages(G4, SZ_4K, 4, null)).toBe(0);
    expect(rec.kinds()).toEqual(["unmap-enoent", "unmap-enoent"]);
    expect(rec.findings[0]!.message).toContain("-ENOENT");
  });

  it("stops a batch at the first empty entry and returns the bytes before it", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", {}, rec);
    ops.mapPages(G4, PA, SZ_4K, 3, RW, { bytes: 0 });
    ops.mapPages(G4 + 4 * SZ_4K, PA, SZ_4K, 1, RW, { bytes: 0 });
    expect(ops.unmapPages(G4, SZ_4K, 5, null)).toBe(3 * SZ_4K);
    expect(rec.kinds()).toEqual(["unmap-hole"]);
    expect(ops.iovaToPhys(G4 + 4 * SZ_4K)).toBe(PA);
  });

  it("returns 0 for a bad pgsize, a zero pgcount or an iova beyond ias", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", {}, rec);
    ops.mapPages(G4, PA, SZ_4K, 1, RW, { bytes: 0 });
    expect(ops.unmapPages(G4, 0x3000, 1, null)).toBe(0);
    expect(ops.unmapPages(G4, SZ_4K, 0, null)).toBe(0);
    expect(ops.unmapPages(2 ** 48 + G4, SZ_4K, 1, null)).toBe(0);
    expect(rec.kinds()).toEqual(["bad-pgsize", "bad-pgsize", "out-of-range"]);
    expect(ops.iovaToPhys(G4)).toBe(PA);
  });

  it("frees the subtree when unmapping at a size that covers a table, with tlb_flush_walk", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", {}, rec);
    ops.mapPages(G4, PA, SZ_4K, 4, RW, { bytes: 0 });
    rec.clear();
    const gather = newIommuIotlbGather();
    expect(ops.unmapPages(G4, SZ_2M, 1, gather)).toBe(SZ_2M);
    expect(ops.tablePages()).toBe(3);
    expect(rec.calls).toEqual([
      { op: "flushWalk", iova: G4, size: SZ_2M, granule: SZ_4K },
      { op: "addPage", iova: G4, size: SZ_2M, granule: SZ_2M },
    ]);
    expect(ops.iovaToPhys(G4)).toBe(0);
  });
});

describe("TLB callbacks on unmap", () => {
  it("calls tlb_add_page per entry for a strict gather, never for a queued gather or none", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", {}, rec);
    ops.mapPages(G4, PA, SZ_4K, 9, RW, { bytes: 0 });
    rec.clear();
    expect(ops.unmapPages(G4, SZ_4K, 3, newIommuIotlbGather())).toBe(3 * SZ_4K);
    expect(rec.calls.map((c) => [c.op, c.iova, c.granule])).toEqual([0, 1, 2].map((j) => ["addPage", G4 + j * SZ_4K, SZ_4K]));
    rec.clear();
    expect(ops.unmapPages(G4 + 3 * SZ_4K, SZ_4K, 3, newIommuIotlbGather(true))).toBe(3 * SZ_4K);
    expect(ops.unmapPages(G4 + 6 * SZ_4K, SZ_4K, 3, null)).toBe(3 * SZ_4K);
    expect(rec.calls).toEqual([]);
  });

  it("never calls tlb_flush_walk for plain leaf maps and unmaps", () => {
    const rec = new Recorder();
    const ops = arm("ARM_64_LPAE_S1", {}, rec);
    ops.mapPages(G4, PA, SZ_2M, 4, RW, { bytes: 0 });
    ops.unmapPages(G4, SZ_2M, 4, null);
    expect(rec.calls).toEqual([]);
  });
});

describe("PTE encoding (arm_lpae_prot_to_pte, __arm_lpae_init_pte)", () => {
  const AF = b(10);
  const nG = b(11);
  const SH_IS = 3n << 8n;
  const SH_OS = 2n << 8n;
  const AP_UNPRIV = b(6);
  const AP_RDONLY = b(7);
  const XN = 3n << 53n;
  const addr = (pa: number) => BigInt(pa);

  it("stage 1, RW cacheable page: type 3, AttrIndx 1, inner shareable, AF, nG, unprivileged", () => {
    const ops = arm("ARM_64_LPAE_S1");
    ops.mapPages(G4, PA, SZ_4K, 1, RW | IOMMU_CACHE, { bytes: 0 });
    expect(pte(ops, G4, 3)).toBe(3n | (1n << 2n) | AP_UNPRIV | SH_IS | AF | nG | addr(PA));
  });

  it("stage 1, read-only no-exec block: type 1, AP[2], XN, outer shareable", () => {
    const ops = arm("ARM_64_LPAE_S1");
    ops.mapPages(G4, PA, SZ_2M, 1, IOMMU_READ | IOMMU_NOEXEC, { bytes: 0 });
    expect(pte(ops, G4, 2)).toBe(1n | AP_UNPRIV | AP_RDONLY | SH_OS | AF | nG | XN | addr(PA));
  });

  it("stage 1: MMIO selects AttrIndx 2, PRIV drops AP[1], HD adds DBM to writable leaves, NS sets NS and NSTABLE", () => {
    const ops = arm("ARM_64_LPAE_S1", { quirks: IO_PGTABLE_QUIRK_ARM_HD | IO_PGTABLE_QUIRK_ARM_NS });
    ops.mapPages(G4, PA, SZ_4K, 1, RW | IOMMU_MMIO | IOMMU_PRIV, { bytes: 0 });
    expect(pte(ops, G4, 3)).toBe(3n | (2n << 2n) | b(5) | SH_OS | AF | nG | b(51) | addr(PA));
    expect(pte(ops, G4, 0) & b(63)).toBe(b(63));
    ops.mapPages(G4 + SZ_4K, PA, SZ_4K, 1, IOMMU_READ, { bytes: 0 });
    expect(pte(ops, G4 + SZ_4K, 3) & b(51)).toBe(0n);
  });

  it("stage 2: HAP read/write and MemAttr NC, write-back, FWB write-back and device", () => {
    const s2 = arm("ARM_64_LPAE_S2");
    s2.mapPages(G4, PA, SZ_4K, 1, RW, { bytes: 0 });
    s2.mapPages(G4 + SZ_4K, PA, SZ_4K, 1, IOMMU_READ | IOMMU_CACHE, { bytes: 0 });
    s2.mapPages(G4 + 2 * SZ_4K, PA, SZ_4K, 1, IOMMU_WRITE | IOMMU_MMIO, { bytes: 0 });
    expect(pte(s2, G4, 3)).toBe(3n | (0x5n << 2n) | (3n << 6n) | SH_OS | AF | addr(PA));
    expect(pte(s2, G4 + SZ_4K, 3)).toBe(3n | (0xfn << 2n) | (1n << 6n) | SH_IS | AF | addr(PA));
    expect(pte(s2, G4 + 2 * SZ_4K, 3)).toBe(3n | (0x1n << 2n) | (2n << 6n) | SH_OS | AF | addr(PA));
    const fwb = arm("ARM_64_LPAE_S2", { quirks: IO_PGTABLE_QUIRK_ARM_S2FWB });
    fwb.mapPages(G4, PA, SZ_4K, 1, RW | IOMMU_CACHE, { bytes: 0 });
    expect(pte(fwb, G4, 3) & (0xfn << 2n)).toBe(0x6n << 2n);
  });

  it("table descriptors point at the next table's physical address in the pool; SW_SYNC marks non-coherent walks", () => {
    const ops = arm("ARM_64_LPAE_S1");
    ops.mapPages(G4, PA, SZ_4K, 1, RW, { bytes: 0 });
    const base = BigInt(ops.cfg.armLpaeS1Cfg!.ttbr);
    const t0 = pte(ops, G4, 0);
    expect(t0 & 3n).toBe(3n);
    expect(t0 & ~0xfffn).toBe(base + 0x1000n);
    expect(pte(ops, G4, 1) & ~0xfffn).toBe(base + 0x2000n);
    expect(pte(ops, G4, 2) & ~0xfffn).toBe(base + 0x3000n);
    const nc = arm("ARM_64_LPAE_S1", { coherentWalk: false });
    nc.mapPages(G4, PA, SZ_4K, 1, RW, { bytes: 0 });
    expect(pte(nc, G4, 0) & b(55)).toBe(b(55));
    expect(pte(nc, G4, 3) & b(55)).toBe(0n);
  });

  it("packs PA[51:48] into PTE[15:12] with the 64K granule and unpacks it on lookup", () => {
    const ops = arm("ARM_64_LPAE_S1", { pgsizeBitmap: bitmapOf(SZ_64K, SZ_512M, SZ_4T), ias: 52, oas: 52 });
    expect(ops.cfg.pgsizeBitmap).toBe(bitmapOf(SZ_64K, SZ_512M, SZ_4T));
    const pa = 2 ** 51 + 2 ** 49 + 0x1234_0000;
    ops.mapPages(G4, pa, SZ_64K, 1, RW, { bytes: 0 });
    const leaf = pte(ops, G4, 3);
    expect((leaf >> 12n) & 0xfn).toBe(0xan);
    expect((leaf >> 48n) & 0xfn).toBe(0n);
    expect(ops.iovaToPhys(G4 + 0x42)).toBe(pa + 0x42);
    ops.mapPages(SZ_4T, pa - 0x1234_0000 - 2 ** 49, SZ_4T, 1, RW, { bytes: 0 });
    expect(ops.iovaToPhys(SZ_4T + SZ_1M + 3)).toBe(2 ** 51 + SZ_1M + 3);
  });
});

describe("iova_to_phys (arm_lpae_iova_to_phys)", () => {
  it("adds the offset inside the leaf at every level", () => {
    const ops = arm("ARM_64_LPAE_S1");
    ops.mapPages(G4, PA, SZ_1G, 1, RW, { bytes: 0 });
    ops.mapPages(2 * G4, PA, SZ_2M, 1, RW, { bytes: 0 });
    expect(ops.iovaToPhys(G4 + 0x3fff_fffe)).toBe(PA + 0x3fff_fffe);
    expect(ops.iovaToPhys(2 * G4 + 0x1f_ffff)).toBe(PA + 0x1f_ffff);
    expect(ops.iovaToPhys(2 * G4 + SZ_2M)).toBe(0);
  });

  it("cannot tell a mapping of PA 0 from no mapping", () => {
    const ops = arm("ARM_64_LPAE_S1");
    ops.mapPages(G4, 0, SZ_4K, 1, RW, { bytes: 0 });
    expect(ops.iovaToPhys(G4)).toBe(0);
  });

  it("does not check ias: the start-level index wraps, as the kernel's walker does", () => {
    const ops = arm("ARM_64_LPAE_S1", { ias: 32, oas: 48 });
    ops.mapPages(SZ_4K, PA, SZ_4K, 1, RW, { bytes: 0 });
    expect(ops.iovaToPhys(2 ** 32 + SZ_4K)).toBe(PA);
  });
});

describe("table memory (ARM keeps empty tables)", () => {
  it("allocates 514 tables for 1 GiB of 4K pages at 4 GiB: 512 leaf tables, one level-2 and one level-1 (515 with the pgd)", () => {
    const ops = arm("ARM_64_LPAE_S1");
    const pages = SZ_1G / SZ_4K;
    let done = 0;
    while (done < pages) {
      const m = { bytes: 0 };
      expect(ops.mapPages(G4 + done * SZ_4K, PA + done * SZ_4K, SZ_4K, pages - done, RW, m)).toBe(0);
      done += m.bytes / SZ_4K;
    }
    expect(ops.tablePages()).toBe(515);
    expect(ops.tableBytes()).toBe(515 * SZ_4K);
    for (let i = 0; i < pages; i += 512) expect(ops.unmapPages(G4 + i * SZ_4K, SZ_4K, 512, null)).toBe(512 * SZ_4K);
    expect(ops.tablePages()).toBe(515);
    // Re-mapping in the same range allocates nothing.
    expect(ops.mapPages(G4, PA, SZ_4K, 512, RW, { bytes: 0 })).toBe(0);
    expect(ops.tablePages()).toBe(515);
    // Unmapping at 1G frees the level-2 table and its 512 leaf tables.
    expect(ops.unmapPages(G4, SZ_1G, 1, null)).toBe(SZ_1G);
    expect(ops.tablePages()).toBe(2);
    ops.free();
    expect(ops.tablePages()).toBe(0);
  });

  it("after free() translates nothing and refuses to build tables: the memory went back for reuse", () => {
    const ops = arm("ARM_64_LPAE_S1");
    ops.mapPages(G4, PA, SZ_4K, 1, RW, { bytes: 0 });
    ops.free();
    expect(ops.iovaToPhys(G4)).toBe(0);
    expect(() => ops.mapPages(G4, PA, SZ_4K, 1, RW, { bytes: 0 })).toThrow(RangeError);
    // A new table built in the recycled memory starts empty.
    const next = arm("ARM_64_LPAE_S1");
    expect(next.iovaToPhys(G4)).toBe(0);
    expect(next.mapPages(G4 + SZ_4K, PA, SZ_4K, 1, RW, { bytes: 0 })).toBe(0);
    expect(next.iovaToPhys(G4)).toBe(0);
  });

  it("reuses freed table pages (free list) and zeroes them", () => {
    const ops = arm("ARM_64_LPAE_S1");
    ops.mapPages(G4, PA, SZ_4K, 512, RW, { bytes: 0 });
    ops.unmapPages(G4, SZ_1G, 1, null);
    ops.mapPages(G4, PA, SZ_4K, 1, RW, { bytes: 0 });
    expect(ops.tablePages()).toBe(4);
    expect(ops.iovaToPhys(G4 + SZ_4K)).toBe(0);
    expect(ops.iovaToPhys(G4)).toBe(PA);
  });
});
