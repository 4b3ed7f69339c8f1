/** The iommufd selftest mock domain's table: entries, START/LAST checks, dirty bits, storage. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isErr } from "../../src/lib/errno.ts";
import {
  IOMMU_DIRTY_NO_CLEAR,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_IO_PAGE_SIZE,
  allocMockPgtable,
  type MockIoPgtable,
} from "../../src/pgtable/mock.ts";
import { SZ_4K } from "../../src/pgtable/sizes.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../../src/pgtable/types.ts";
import { Recorder, must } from "./helpers.ts";

const P = MOCK_IO_PAGE_SIZE;
const A = MOCK_APERTURE_START;
const RW = IOMMU_READ | IOMMU_WRITE;

function mock(huge = false, rec = new Recorder()): MockIoPgtable {
  return must(allocMockPgtable({ pgsizeBitmap: huge ? P + MOCK_HUGE_PAGE_SIZE : P, ias: 64, oas: 64, onFinding: rec.onFinding }));
}

describe("constants and configuration", () => {
  it("uses 2 KiB pages, 1 MiB huge pages and the [1 << 24, (1 << 31) - 1] aperture", () => {
    expect([P, MOCK_HUGE_PAGE_SIZE, A, MOCK_APERTURE_LAST]).toEqual([2048, 2 ** 20, 0x100_0000, 0x7fff_ffff]);
  });

  it("accepts only MOCK_IO_PAGE_SIZE, optionally with MOCK_HUGE_PAGE_SIZE", () => {
    const bitmap = allocMockPgtable({ pgsizeBitmap: SZ_4K, ias: 64, oas: 64 });
    expect(isErr(bitmap) && bitmap.errno).toBe("EINVAL");
    const quirks = allocMockPgtable({ pgsizeBitmap: P, ias: 64, oas: 64, quirks: 1 });
    expect(isErr(quirks) && quirks.errno).toBe("EINVAL");
    expect(mock(true).cfg.pgsizeBitmap).toBe(P + MOCK_HUGE_PAGE_SIZE);
  });
});

describe("map and unmap (mock_domain_map_pages, mock_domain_unmap_pages)", () => {
  it("writes one entry per 2 KiB and translates to the page address without the offset", () => {
    const ops = mock();
    const m = { bytes: 0 };
    expect(ops.mapPages(A, 0x4000_0000, P, 4, RW, m)).toBe(0);
    expect(m.bytes).toBe(4 * P);
    expect(ops.iovaToPhys(A + 3 * P)).toBe(0x4000_0000 + 3 * P);
    expect(ops.tablePages()).toBe(1);
    expect(ops.tableBytes()).toBe(SZ_4K);
  });

  it("ignores prot entirely", () => {
    const ops = mock();
    expect(ops.mapPages(A, 0x8000, P, 1, 0, { bytes: 0 })).toBe(0);
    expect(ops.iovaToPhys(A)).toBe(0x8000);
  });

  it("unmaps whole earlier maps, or unions of them, without a finding", () => {
    const rec = new Recorder();
    const ops = mock(false, rec);
    ops.mapPages(A, 0x10_0000, P, 3, RW, { bytes: 0 });
    ops.mapPages(A + 3 * P, 0x20_0000, P, 1, RW, { bytes: 0 });
    ops.mapPages(A + 4 * P, 0x30_0000, P, 2, RW, { bytes: 0 });
    expect(ops.unmapPages(A, P, 4, null)).toBe(4 * P);
    expect(ops.unmapPages(A + 4 * P, 2 * P, 1, null)).toBe(2 * P);
    expect(rec.findings).toEqual([]);
    expect(ops.tablePages()).toBe(0);
  });

  it("WARNs when an unmap starts or ends inside an earlier map", () => {
    const rec = new Recorder();
    const ops = mock(false, rec);
    ops.mapPages(A, 0x10_0000, P, 8, RW, { bytes: 0 });
    expect(ops.unmapPages(A + P, P, 2, null)).toBe(2 * P);
    expect(rec.kinds()).toEqual(["mock-unmap-split", "mock-unmap-split"]);
    expect(rec.findings[0]!.message).toContain("START");
    expect(rec.findings[1]!.message).toContain("LAST");
  });

  it("skips the START/LAST check when huge pages are possible", () => {
    const rec = new Recorder();
    const ops = mock(true, rec);
    ops.mapPages(A, 0, MOCK_HUGE_PAGE_SIZE, 1, RW, { bytes: 0 });
    expect(ops.unmapPages(A + P, P, 1, null)).toBe(P);
    expect(rec.findings).toEqual([]);
  });

  it("overwrites an existing entry with a WARN", () => {
    const rec = new Recorder();
    const ops = mock(false, rec);
    ops.mapPages(A, 0x10_0000, P, 1, RW, { bytes: 0 });
    expect(ops.mapPages(A, 0x20_0000, P, 1, RW, { bytes: 0 })).toBe(0);
    expect(rec.kinds()).toEqual(["mock-map-overwrite"]);
    expect(ops.iovaToPhys(A)).toBe(0x20_0000);
  });

  it("unmaps holes silently and always returns the full size", () => {
    const rec = new Recorder();
    const ops = mock(false, rec);
    expect(ops.unmapPages(A, P, 16, null)).toBe(16 * P);
    expect(rec.findings).toEqual([]);
  });

  it("counts the bytes its entries map, whatever unmap returned", () => {
    const ops = mock(false, new Recorder());
    expect(ops.mapPages(A, 0x100000, P, 4, IOMMU_READ, { bytes: 0 })).toBe(0);
    expect(ops.leafBytes()).toBe(4 * P);
    // Unmapping 16 pages over the 4 mapped ones returns 16 pages' worth; 0 bytes remain mapped.
    expect(ops.unmapPages(A, P, 16, null)).toBe(16 * P);
    expect(ops.leafBytes()).toBe(0);
  });

  it("WARNs on misalignment; refuses a pgsize the kernel's loop would never finish", () => {
    const rec = new Recorder();
    const ops = mock(false, rec);
    expect(ops.mapPages(A + 0x100, 0x10_0000, P, 1, RW, { bytes: 0 })).toBe(0);
    expect(ops.iovaToPhys(A)).toBe(0x10_0000);
    const bad = ops.mapPages(A, 0x10_0000, 0x300, 1, RW, { bytes: 0 });
    expect(isErr(bad) && bad.errno).toBe("EINVAL");
    expect(ops.unmapPages(A, 0x300, 1, null)).toBe(0);
    expect(rec.kinds()).toEqual(["mock-misaligned", "mock-misaligned", "mock-misaligned"]);
  });

  it("WARNs in iova_to_phys for an unmapped or misaligned iova", () => {
    const rec = new Recorder();
    const ops = mock(false, rec);
    expect(ops.iovaToPhys(A)).toBe(0);
    ops.mapPages(A, 0x10_0000, P, 1, RW, { bytes: 0 });
    expect(ops.iovaToPhys(A + 5)).toBe(0x10_0000);
    expect(rec.kinds()).toEqual(["mock-iova-to-phys", "mock-iova-to-phys"]);
  });

  it("holds physical addresses up to 2^53", () => {
    const ops = mock();
    const pa = 2 ** 52 + 2 ** 40 + 3 * P;
    ops.mapPages(A, pa, P, 1, RW, { bytes: 0 });
    expect(ops.iovaToPhys(A)).toBe(pa);
  });

  it("frees emptied chunks and WARNs when freed with entries left", () => {
    const rec = new Recorder();
    const ops = mock(false, rec);
    ops.mapPages(A + 510 * P, 0, P, 4, RW, { bytes: 0 });
    expect(ops.tablePages()).toBe(2);
    ops.unmapPages(A + 510 * P, P, 2, null);
    expect(ops.tablePages()).toBe(1);
    ops.free();
    expect(rec.kinds()).toEqual(["mock-unmap-split", "mock-free-nonempty"]);
    expect(ops.tablePages()).toBe(0);
  });
});

describe("dirty tracking (mock_domain_read_and_clear_dirty)", () => {
  it("reports a dirty 2 KiB page once and clears it unless NO_CLEAR", () => {
    const ops = mock();
    ops.mapPages(A, 0, P, 8, RW, { bytes: 0 });
    expect(ops.setDirty(A + 2 * P)).toBe(true);
    expect(ops.setDirty(A + 100 * P)).toBe(false);
    const seen: [number, number][] = [];
    ops.readAndClearDirty(A, 8 * P, IOMMU_DIRTY_NO_CLEAR, (iova, len) => seen.push([iova, len]));
    ops.readAndClearDirty(A, 8 * P, 0, (iova, len) => seen.push([iova, len]));
    ops.readAndClearDirty(A, 8 * P, 0, (iova, len) => seen.push([iova, len]));
    expect(seen).toEqual([
      [A + 2 * P, P],
      [A + 2 * P, P],
    ]);
  });

  it("widens to the whole huge page when any of its entries is dirty", () => {
    const ops = mock(true);
    ops.mapPages(A, 0, MOCK_HUGE_PAGE_SIZE, 2, RW, { bytes: 0 });
    ops.setDirty(A + MOCK_HUGE_PAGE_SIZE + 7 * P);
    const seen: [number, number][] = [];
    ops.readAndClearDirty(A, 2 * MOCK_HUGE_PAGE_SIZE, 0, (iova, len) => seen.push([iova, len]));
    expect(seen).toEqual([[A + MOCK_HUGE_PAGE_SIZE, MOCK_HUGE_PAGE_SIZE]]);
  });
});

describe("mock agrees with a Map reference under iommufd-style use", () => {
  it("maps and unmaps whole areas without findings, translating like the reference; storage drains to zero", () => {
    const slot = fc.integer({ min: 0, max: 40 });
    fc.assert(
      fc.property(fc.array(fc.record({ at: slot, pages: fc.integer({ min: 1, max: 600 }), pfn: fc.nat(1 << 20) }), { maxLength: 20 }), (areas) => {
        const rec = new Recorder();
        const ops = mock(false, rec);
        const ref = new Map<number, number>();
        const live: { iova: number; pages: number }[] = [];
        for (const a of areas) {
          const iova = A + a.at * 512 * P;
          if (live.some((l) => iova < l.iova + l.pages * P && l.iova < iova + a.pages * P)) continue;
          const m = { bytes: 0 };
          expect(ops.mapPages(iova, a.pfn * P, P, a.pages, RW, m)).toBe(0);
          expect(m.bytes).toBe(a.pages * P);
          for (let i = 0; i < a.pages; i++) ref.set(iova + i * P, (a.pfn + i) * P);
          live.push({ iova, pages: a.pages });
        }
        for (const [iova, pa] of ref) expect(ops.iovaToPhys(iova)).toBe(pa);
        for (const l of live) expect(ops.unmapPages(l.iova, P, l.pages, null)).toBe(l.pages * P);
        expect(rec.findings).toEqual([]);
        expect(ops.tablePages()).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it("reports exactly the overwrites and split unmaps a START/LAST reference predicts", () => {
    const op = fc.record({ unmap: fc.boolean(), at: fc.integer({ min: 0, max: 40 }), pages: fc.integer({ min: 1, max: 12 }), pfn: fc.nat(1000) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (seq) => {
        const rec = new Recorder();
        const ops = mock(false, rec);
        const ref = new Map<number, { pa: number; mark: boolean }>();
        const want: string[] = [];
        for (const o of seq) {
          const iova = A + o.at * P;
          if (!o.unmap) {
            ops.mapPages(iova, o.pfn * P, P, o.pages, RW, { bytes: 0 });
            for (let i = 0; i < o.pages; i++) {
              if (ref.has(iova + i * P)) want.push("mock-map-overwrite");
              ref.set(iova + i * P, { pa: (o.pfn + i) * P, mark: i === 0 || i === o.pages - 1 });
            }
          } else {
            expect(ops.unmapPages(iova, P, o.pages, null)).toBe(o.pages * P);
            const first = ref.get(iova);
            const last = ref.get(iova + (o.pages - 1) * P);
            if (first && !first.mark) want.push("mock-unmap-split");
            if (last && !last.mark) want.push("mock-unmap-split");
            for (let i = 0; i < o.pages; i++) ref.delete(iova + i * P);
          }
        }
        expect(rec.kinds()).toEqual(want);
        for (const [iova, e] of ref) expect(ops.iovaToPhys(iova)).toBe(e.pa);
      }),
      { numRuns: 200 },
    );
  });
});
