/**
 * VT-d second stage: the permissions a leaf grants (iovaProt), the R and W
 * bits vtdss_pt_iommu_set_prot wrote, for 4K, 2M and 1G leaves.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { newIommuIotlbGather } from "../../src/pgtable/gather.ts";
import { SZ_1G, SZ_2M, SZ_4K, bitmapOf } from "../../src/pgtable/sizes.ts";
import { IOMMU_CACHE, IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE } from "../../src/pgtable/types.ts";
import { allocVtdssPgtable, type VtdssIoPgtable } from "../../src/pgtable/vtdss.ts";
import { Recorder, must } from "./helpers.ts";

const R = IOMMU_READ;
const W = IOMMU_WRITE;
const RW = R | W;
const G4 = 4 * SZ_1G;
const PA = 256 * SZ_1G;

function vtd(ias = 48, rec = new Recorder()): VtdssIoPgtable {
  return must(allocVtdssPgtable({ pgsizeBitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias, oas: 52, tlb: rec.tlb, onFinding: rec.onFinding }));
}

describe("iovaProt (VT-d second stage R/W)", () => {
  it("read-only, write-only and read-write leaves of every size read back as mapped", () => {
    const pt = vtd();
    const cases = [
      [G4, SZ_4K, R],
      [G4 + SZ_4K, SZ_4K, W],
      [G4 + 2 * SZ_4K, SZ_4K, RW],
      [G4 + SZ_2M, SZ_2M, W],
      [G4 + SZ_1G, SZ_1G, R],
    ] as const;
    for (const [iova, size, prot] of cases) expect(pt.mapPages(iova, PA + (iova - G4), size, 1, prot, { bytes: 0 })).toBe(0);
    for (const [iova, size, prot] of cases) {
      expect(pt.iovaProt(iova)).toBe(prot);
      expect(pt.iovaProt(iova + size - 1)).toBe(prot);
    }
    // The format keeps only R and W: nothing else comes back.
    expect(pt.mapPages(G4 + 3 * SZ_4K, PA, SZ_4K, 1, RW | IOMMU_CACHE | IOMMU_NOEXEC, { bytes: 0 })).toBe(0);
    expect(pt.iovaProt(G4 + 3 * SZ_4K)).toBe(RW);
  });

  it("holes, unmapped leaves and addresses outside the table read 0, with no finding", () => {
    const rec = new Recorder();
    const pt = vtd(39, rec);
    expect(pt.mapPages(0, PA, SZ_4K, 1, RW, { bytes: 0 })).toBe(0);
    expect(pt.iovaProt(SZ_4K)).toBe(0);
    expect(pt.iovaProt(2 ** 39)).toBe(0);
    expect(pt.iovaProt(-SZ_4K)).toBe(0);
    expect(pt.iovaProt(0)).toBe(RW);
    expect(pt.unmapPages(0, SZ_4K, 1, newIommuIotlbGather())).toBe(SZ_4K);
    expect(pt.iovaProt(0)).toBe(0);
    expect(rec.findings).toEqual([]);
  });

  it("property: each leaf's permissions are what its map asked for, its neighbours' are unaffected", () => {
    const leaf = fc.record({ slot: fc.integer({ min: 0, max: 63 }), size: fc.constantFrom(SZ_4K, SZ_2M, SZ_1G), prot: fc.constantFrom(R, W, RW), at: fc.double({ min: 0, max: 1, noNaN: true }) });
    fc.assert(
      fc.property(fc.uniqueArray(leaf, { selector: (l) => l.slot, maxLength: 24 }), (leaves) => {
        const pt = vtd();
        // One leaf per 1G slot, so every size is aligned and nothing overlaps.
        for (const l of leaves) expect(pt.mapPages(G4 + l.slot * SZ_1G, PA + l.slot * SZ_1G, l.size, 1, l.prot, { bytes: 0 })).toBe(0);
        for (const l of leaves) {
          const base = G4 + l.slot * SZ_1G;
          expect(pt.iovaProt(base + Math.floor(l.at * (l.size - 1)))).toBe(l.prot);
          if (l.size < SZ_1G) expect(pt.iovaProt(base + l.size)).toBe(0);
        }
      }),
      { numRuns: 100 },
    );
  });
});
