/**
 * io-pgtable-arm: the permissions a leaf grants (iovaProt), read back from
 * the descriptors arm_lpae_prot_to_pte wrote, at both stages and every
 * granule, for pages and blocks.
 */
import { describe, expect, it } from "vitest";
import { newIommuIotlbGather } from "../../src/pgtable/gather.ts";
import { allocArmLpaePgtable, type ArmLpaeFmt, type ArmLpaeIoPgtable } from "../../src/pgtable/lpae.ts";
import {
  ARM_LPAE_PTE_AF,
  ARM_LPAE_PTE_AP_RDONLY,
  ARM_LPAE_PTE_AP_UNPRIV,
  ARM_LPAE_PTE_DBM_HI,
  ARM_LPAE_PTE_TYPE_PAGE,
  armLpaePteToProt,
} from "../../src/pgtable/lpae-pte.ts";
import { SZ_16K, SZ_1G, SZ_2M, SZ_32M, SZ_4K, SZ_512M, SZ_64K, bitmapOf } from "../../src/pgtable/sizes.ts";
import {
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  IO_PGTABLE_QUIRK_ARM_HD,
  IO_PGTABLE_QUIRK_ARM_S2FWB,
  type IoPgtableCfgInit,
} from "../../src/pgtable/types.ts";
import { Recorder, must } from "./helpers.ts";

const R = IOMMU_READ;
const W = IOMMU_WRITE;
const RW = R | W;
const PA = 256 * SZ_1G;
const IOVA = 4 * SZ_1G;

const GRANULES = [
  { granule: SZ_4K, block: SZ_2M, bitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G) },
  { granule: SZ_16K, block: SZ_32M, bitmap: bitmapOf(SZ_16K, SZ_32M) },
  { granule: SZ_64K, block: SZ_512M, bitmap: bitmapOf(SZ_64K, SZ_512M) },
] as const;

function arm(fmt: ArmLpaeFmt, init: Partial<IoPgtableCfgInit> = {}, rec = new Recorder()): ArmLpaeIoPgtable {
  return must(allocArmLpaePgtable(fmt, { pgsizeBitmap: GRANULES[0].bitmap, ias: 48, oas: 48, tlb: rec.tlb, onFinding: rec.onFinding, ...init }));
}

function map(pt: ArmLpaeIoPgtable, iova: number, pa: number, size: number, prot: number): void {
  expect(pt.mapPages(iova, pa, size, 1, prot, { bytes: 0 })).toBe(0);
}

/** What a stage-1 leaf grants for a map prot: always read, write unless read-only was asked for. */
function s1Expected(prot: number): number {
  const rw = prot & W ? RW : R;
  return rw | (prot & IOMMU_NOEXEC) | (prot & IOMMU_PRIV) | (prot & IOMMU_MMIO ? IOMMU_MMIO : prot & IOMMU_CACHE ? IOMMU_CACHE : 0);
}

/** What a stage-2 leaf grants: S2AP read and write as asked; no privilege bit at stage 2. */
function s2Expected(prot: number): number {
  return (prot & RW) | (prot & IOMMU_NOEXEC) | (prot & IOMMU_MMIO ? IOMMU_MMIO : prot & IOMMU_CACHE ? IOMMU_CACHE : 0);
}

describe("iovaProt reads back R/W at both stages, every granule, pages and blocks", () => {
  for (const { granule, block, bitmap } of GRANULES) {
    it(`stage 1, ${granule / 1024}K granule: AP[2] makes read-only; a write-only request maps read-write`, () => {
      const pt = arm("ARM_64_LPAE_S1", { pgsizeBitmap: bitmap });
      map(pt, IOVA, PA, granule, R);
      map(pt, IOVA + granule, PA + granule, granule, W);
      map(pt, IOVA + 2 * granule, PA + 2 * granule, granule, RW);
      map(pt, IOVA + block, PA + block, block, R);
      expect([pt.iovaProt(IOVA) & RW, pt.iovaProt(IOVA + granule) & RW, pt.iovaProt(IOVA + 2 * granule) & RW]).toEqual([R, RW, RW]);
      // Anywhere inside the leaf, the block included.
      expect(pt.iovaProt(IOVA + granule - 1) & RW).toBe(R);
      expect(pt.iovaProt(IOVA + block + block / 2 + 123) & RW).toBe(R);
      // The translation itself is unchanged by the prot.
      expect(pt.iovaToPhys(IOVA + 5)).toBe(PA + 5);
      expect(pt.iovaToPhys(IOVA + block + 7)).toBe(PA + block + 7);
    });

    it(`stage 2, ${granule / 1024}K granule: S2AP read and write are independent (write-only exists)`, () => {
      const pt = arm("ARM_64_LPAE_S2", { pgsizeBitmap: bitmap, ias: 40, oas: 48 });
      map(pt, IOVA, PA, granule, R);
      map(pt, IOVA + granule, PA + granule, granule, W);
      map(pt, IOVA + 2 * granule, PA + 2 * granule, granule, RW);
      map(pt, IOVA + block, PA + block, block, W);
      expect([pt.iovaProt(IOVA) & RW, pt.iovaProt(IOVA + granule) & RW, pt.iovaProt(IOVA + 2 * granule) & RW]).toEqual([R, W, RW]);
      expect(pt.iovaProt(IOVA + block + 3 * granule) & RW).toBe(W);
    });
  }

  it("nothing mapped, unmapped again, beyond ias or negative: 0", () => {
    for (const fmt of ["ARM_64_LPAE_S1", "ARM_64_LPAE_S2"] as const) {
      const pt = arm(fmt, { ias: fmt === "ARM_64_LPAE_S1" ? 48 : 40 });
      expect(pt.iovaProt(IOVA)).toBe(0);
      map(pt, IOVA, PA, SZ_4K, RW);
      expect(pt.iovaProt(IOVA) & RW).toBe(RW);
      expect(pt.iovaProt(IOVA + SZ_4K)).toBe(0);
      expect(pt.unmapPages(IOVA, SZ_4K, 1, newIommuIotlbGather())).toBe(SZ_4K);
      expect(pt.iovaProt(IOVA)).toBe(0);
      // An iova past the input size would alias a mapped index if the walk masked it.
      map(pt, 0, PA, SZ_4K, RW);
      const ias = pt.cfg.ias;
      expect(pt.iovaProt(2 ** ias)).toBe(0);
      expect(pt.iovaProt(-SZ_4K)).toBe(0);
      expect(pt.iovaProt(0)).not.toBe(0);
    }
  });
});

describe("iovaProt decodes every attribute arm_lpae_prot_to_pte encodes", () => {
  // Every prot with R or W (map_pages refuses the others), 4K pages.
  const prots = Array.from({ length: 64 }, (_, p) => p).filter((p) => p & RW);

  it("stage 1: R always, W unless read-only, XN as NOEXEC, AP[1] clear as PRIV, ATTRINDX as CACHE or MMIO", () => {
    const pt = arm("ARM_64_LPAE_S1");
    prots.forEach((p, i) => map(pt, IOVA + i * SZ_4K, PA + i * SZ_4K, SZ_4K, p));
    expect(prots.map((_, i) => pt.iovaProt(IOVA + i * SZ_4K))).toEqual(prots.map(s1Expected));
  });

  it("stage 2: S2AP as R and W, XN as NOEXEC, MemAttr as CACHE or MMIO, no PRIV", () => {
    const pt = arm("ARM_64_LPAE_S2", { ias: 40 });
    prots.forEach((p, i) => map(pt, IOVA + i * SZ_4K, PA + i * SZ_4K, SZ_4K, p));
    expect(prots.map((_, i) => pt.iovaProt(IOVA + i * SZ_4K))).toEqual(prots.map(s2Expected));
  });

  it("stage 2 with S2FWB: the cacheable MemAttr still reads back as CACHE", () => {
    const pt = arm("ARM_64_LPAE_S2", { ias: 40, quirks: IO_PGTABLE_QUIRK_ARM_S2FWB });
    map(pt, IOVA, PA, SZ_4K, RW | IOMMU_CACHE);
    map(pt, IOVA + SZ_4K, PA, SZ_4K, RW);
    expect([pt.iovaProt(IOVA), pt.iovaProt(IOVA + SZ_4K)]).toEqual([RW | IOMMU_CACHE, RW]);
  });
});

describe("hardware dirty management (IO_PGTABLE_QUIRK_ARM_HD)", () => {
  it("a writable leaf gets DBM and stays writable; a read-only one stays read-only", () => {
    const pt = arm("ARM_64_LPAE_S1", { quirks: IO_PGTABLE_QUIRK_ARM_HD });
    map(pt, IOVA, PA, SZ_4K, RW);
    map(pt, IOVA + SZ_4K, PA, SZ_4K, R);
    expect([pt.iovaProt(IOVA) & RW, pt.iovaProt(IOVA + SZ_4K) & RW]).toEqual([RW, R]);
  });

  it("writable-clean (AP[2] with DBM) is writable only when the walker manages dirty state", () => {
    const lo = ARM_LPAE_PTE_TYPE_PAGE | ARM_LPAE_PTE_AF | ARM_LPAE_PTE_AP_UNPRIV | ARM_LPAE_PTE_AP_RDONLY;
    expect(armLpaePteToProt("ARM_64_LPAE_S1", IO_PGTABLE_QUIRK_ARM_HD, lo, ARM_LPAE_PTE_DBM_HI) & RW).toBe(RW);
    expect(armLpaePteToProt("ARM_64_LPAE_S1", 0, lo, ARM_LPAE_PTE_DBM_HI) & RW).toBe(R);
    expect(armLpaePteToProt("ARM_64_LPAE_S1", IO_PGTABLE_QUIRK_ARM_HD, lo, 0) & RW).toBe(R);
  });
});
