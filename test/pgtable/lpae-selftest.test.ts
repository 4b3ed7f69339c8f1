/**
 * The intent of the kernel's io-pgtable-arm boot selftest
 * (io-pgtable-arm-selftests.c, arm_lpae_do_selftests / arm_lpae_run_tests),
 * in our own code: every page-size set, every ias <= oas pair, both stages.
 */
import { describe, expect, it } from "vitest";
import { isErr } from "../../src/lib/errno.ts";
import { allocArmLpaePgtable, type ArmLpaeFmt } from "../../src/pgtable/lpae.ts";
import { SZ_16K, SZ_1G, SZ_2M, SZ_32M, SZ_4K, SZ_512M, SZ_64K, bitmapHas, bitmapMax, bitmapOf, hex, pgsizesOf } from "../../src/pgtable/sizes.ts";
import { IOMMU_CACHE, IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE, IO_PGTABLE_QUIRK_NO_WARN } from "../../src/pgtable/types.ts";
import { Recorder, must } from "./helpers.ts";

const PGSIZE_SETS = [bitmapOf(SZ_4K, SZ_2M, SZ_1G), bitmapOf(SZ_16K, SZ_32M), bitmapOf(SZ_64K, SZ_512M)];
const ADDRESS_SIZES = [32, 36, 40, 42, 44, 48];
const FMTS: ArmLpaeFmt[] = ["ARM_64_LPAE_S1", "ARM_64_LPAE_S2"];

const cases: { pgsizes: number; ias: number; oas: number; fmt: ArmLpaeFmt }[] = [];
for (const pgsizes of PGSIZE_SETS) {
  for (let j = 0; j < ADDRESS_SIZES.length; j++) {
    // ias > oas is not valid for stage 2, so the kernel never tries it.
    for (let k = 0; k <= j; k++) {
      for (const fmt of FMTS) cases.push({ pgsizes, ias: ADDRESS_SIZES[k]!, oas: ADDRESS_SIZES[j]!, fmt });
    }
  }
}

describe("io-pgtable-arm selftest matrix", () => {
  it("covers the kernel's 63 configurations for each of the two formats", () => {
    expect(cases).toHaveLength(126);
  });

  it.each(cases.map((c) => [`${c.fmt} bitmap ${hex(c.pgsizes)} ias ${c.ias} oas ${c.oas}`, c] as const))("%s", (_name, c) => {
    const rec = new Recorder();
    const ops = must(allocArmLpaePgtable(c.fmt, { pgsizeBitmap: c.pgsizes, ias: c.ias, oas: c.oas, quirks: IO_PGTABLE_QUIRK_NO_WARN, tlb: rec.tlb }));
    const sizes = pgsizesOf(ops.cfg.pgsizeBitmap);
    expect(ops.cfg.pgsizeBitmap).toBe(c.pgsizes);

    // An empty table translates nothing.
    expect(ops.iovaToPhys(42)).toBe(0);
    expect(ops.iovaToPhys(SZ_1G + 42)).toBe(0);
    expect(ops.iovaToPhys(2 * SZ_1G + 42)).toBe(0);

    // Distinct identity mappings of every size, one per GiB; a second map must fail.
    const mapped = { bytes: 0 };
    let iova = 0;
    for (const size of sizes) {
      expect(ops.mapPages(iova, iova, size, 1, IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_CACHE, mapped)).toBe(0);
      const again = ops.mapPages(iova, iova + size, size, 1, IOMMU_READ | IOMMU_NOEXEC, mapped);
      // arm_lpae_init_pte: a leaf already there -> -EEXIST.
      expect(isErr(again) && again.errno).toBe("EEXIST");
      expect(ops.iovaToPhys(iova + 42)).toBe(iova + 42);
      iova += SZ_1G;
    }

    // Full unmap, then remap write-only.
    iova = 0;
    for (const size of sizes) {
      expect(ops.unmapPages(iova, size, 1, null)).toBe(size);
      expect(ops.iovaToPhys(iova + 42)).toBe(0);
      expect(ops.mapPages(iova, iova, size, 1, IOMMU_WRITE, mapped)).toBe(0);
      expect(ops.iovaToPhys(iova + 42)).toBe(iova + 42);
      iova += SZ_1G;
    }

    // The largest size at the very top of the IAS (concatenated-pgd corner cases).
    const top = bitmapMax(ops.cfg.pgsizeBitmap);
    const topIova = 2 ** ops.cfg.ias - top;
    const m = { bytes: 0 };
    expect(ops.mapPages(topIova, topIova, top, 1, IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_CACHE, m)).toBe(0);
    expect(m.bytes).toBe(top);
    expect(ops.iovaToPhys(topIova + 42)).toBe(topIova + 42);
    expect(ops.unmapPages(topIova, top, 1, null)).toBe(top);

    // The dummy flush ops WARN when a flush size is not a page size.
    for (const call of rec.calls) expect(bitmapHas(ops.cfg.pgsizeBitmap, call.size)).toBe(true);
    // With IO_PGTABLE_QUIRK_NO_WARN the overlapping maps report nothing.
    expect(rec.findings).toEqual([]);
    ops.free();
    expect(ops.tablePages()).toBe(0);
    expect(ops.tableBytes()).toBe(0);
  });
});
