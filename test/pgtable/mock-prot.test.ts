/**
 * The iommufd selftest mock: its entries hold no permissions
 * (mock_domain_map_pages drops prot), so iovaProt reads every present entry
 * as read-write, and an absent one as 0 without the WARN iova_to_phys gives.
 */
import { describe, expect, it } from "vitest";
import { newIommuIotlbGather } from "../../src/pgtable/gather.ts";
import { MOCK_APERTURE_START, MOCK_HUGE_PAGE_SIZE, MOCK_IO_PAGE_SIZE, allocMockPgtable, type MockIoPgtable } from "../../src/pgtable/mock.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../../src/pgtable/types.ts";
import { Recorder, must } from "./helpers.ts";

const P = MOCK_IO_PAGE_SIZE;
const A = MOCK_APERTURE_START;
const RW = IOMMU_READ | IOMMU_WRITE;

function mock(rec: Recorder, huge = false): MockIoPgtable {
  return must(allocMockPgtable({ pgsizeBitmap: huge ? P + MOCK_HUGE_PAGE_SIZE : P, ias: 64, oas: 64, onFinding: rec.onFinding }));
}

describe("iovaProt (iommufd selftest mock)", () => {
  it("a read-only or write-only map reads back read-write: the mock stores no prot", () => {
    const rec = new Recorder();
    const pt = mock(rec);
    expect(pt.mapPages(A, 0x4000_0000, P, 2, IOMMU_READ, { bytes: 0 })).toBe(0);
    expect(pt.mapPages(A + 2 * P, 0x4000_0000, P, 1, IOMMU_WRITE, { bytes: 0 })).toBe(0);
    expect([pt.iovaProt(A), pt.iovaProt(A + P), pt.iovaProt(A + P + 5), pt.iovaProt(A + 2 * P)]).toEqual([RW, RW, RW, RW]);
    expect(rec.findings).toEqual([]);
  });

  it("huge-page entries too", () => {
    const rec = new Recorder();
    const pt = mock(rec, true);
    expect(pt.mapPages(A, 0x4000_0000, MOCK_HUGE_PAGE_SIZE, 1, IOMMU_READ, { bytes: 0 })).toBe(0);
    expect(pt.iovaProt(A + MOCK_HUGE_PAGE_SIZE - P)).toBe(RW);
    expect(pt.iovaProt(A + MOCK_HUGE_PAGE_SIZE)).toBe(0);
  });

  it("an absent entry reads 0 and, unlike iova_to_phys, WARNs nothing", () => {
    const rec = new Recorder();
    const pt = mock(rec);
    expect(pt.iovaProt(A)).toBe(0);
    expect(pt.iovaProt(-P)).toBe(0);
    expect(pt.mapPages(A, 0x4000_0000, P, 1, RW, { bytes: 0 })).toBe(0);
    expect(pt.unmapPages(A, P, 1, newIommuIotlbGather())).toBe(P);
    expect(pt.iovaProt(A)).toBe(0);
    expect(rec.kinds()).toEqual([]);
    // The kernel call does WARN (WARN_ON(!ent)): the finding the model's device walk avoids.
    expect(pt.iovaToPhys(A)).toBe(0);
    expect(rec.kinds()).toEqual(["mock-iova-to-phys"]);
  });
});
