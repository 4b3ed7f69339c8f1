/**
 * Device DMA honours the permissions of the mapping: a write through a
 * read-only leaf, or a read through a write-only one, is a permission fault
 * reported through report_iommu_fault with the access's flag, and the
 * IOTLB caches a translation's permissions with it. End to end, on domains
 * of each page-table format attached to a device of a booted machine.
 */
import { describe, expect, it } from "vitest";
import type { Device } from "../../src/base/device.ts";
import { newPagingDomain } from "../../src/drivers/paging-domain.ts";
import { pagingFormat } from "../../src/drivers/paging-format.ts";
import { adoptDomain, iommuPagingDomainAlloc } from "../../src/iommu/domain-alloc.ts";
import { IOMMU_DOMAIN_UNMANAGED, type IommuDomain } from "../../src/iommu/domain.ts";
import { IOMMU_FAULT_READ, IOMMU_FAULT_WRITE, iommuSetFaultHandler } from "../../src/iommu/fault.ts";
import { iommuMap } from "../../src/iommu/map.ts";
import { iommuDeviceDma } from "../../src/iommu/translate.ts";
import { isErr, type KError } from "../../src/lib/errno.ts";
import { SZ_1G, SZ_2M, SZ_4K, bitmapOf } from "../../src/pgtable/sizes.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../../src/pgtable/types.ts";
import { checkInvariants } from "../../src/sim/invariants.ts";
import type { Machine } from "../../src/sim/machine.ts";
import { boot, step, stepValue } from "../helpers.ts";

const R = IOMMU_READ;
const W = IOMMU_WRITE;
const IOVA = 0x10_0000;
const PA = 0x8000_0000;

const SMMU = `
name: smmu
iommus:
  - {name: s, driver: arm-smmu-v3, fwnode: /s}
devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[s, 1]]}
`;
const VTD = `
name: vtd
iommus:
  - {name: dmar0, driver: intel-iommu, scope: all}
devices:
  - {name: "0000:00:1c.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0"}
`;
const MOCK = `
name: mock
iommus:
  - {name: mock-iommu, driver: mock}
devices:
  - {name: a, bus: iommufd_mock}
`;

interface Rig {
  m: Machine;
  /** The device's name in the scenario. */
  name: string;
  d: IommuDomain;
  dev: Device;
  /** Faults the domain's handler saw: [iova, flags]. */
  faults: [number, number][];
  /** What the last `dma` returned. */
  value?: number;
}

type Kind = "arm-lpae-s1" | "arm-lpae-s2" | "vtdss" | "mock";

/** A booted machine whose device is attached to an UNMANAGED domain of the format, with a fault handler. */
function rig(kind: Kind): Rig {
  const m = boot(kind === "vtdss" ? VTD : kind === "mock" ? MOCK : SMMU);
  const name = kind === "vtdss" ? "0000:01:00.0" : "a";
  const dev = m.devices.get(name)!.dev;
  let d = iommuPagingDomainAlloc(m.k, dev);
  if (isErr(d)) throw new Error(d.message);
  if (kind === "arm-lpae-s2") {
    // No modelled driver picks stage 2 for a kernel domain: the SMMUv3's paging ops over an S2 table.
    const s2 = newPagingDomain(IOMMU_DOMAIN_UNMANAGED, d.ops, pagingFormat(d.iommu!, "ARM_64_LPAE_S2", { pgsizeBitmap: bitmapOf(SZ_4K, SZ_2M, SZ_1G), ias: 40, oas: 48 }, { start: 0, end: 2 ** 40 - 1 }));
    s2.owner = d.owner;
    d = adoptDomain(m.k, s2);
  }
  m.userDomains.set("d", d);
  expect(step(m, { attach_device: { domain: "d", device: name } })).toBe(0);
  const faults: [number, number][] = [];
  expect(iommuSetFaultHandler(m.k, d, (_dom, _dev, iova, flags) => (faults.push([iova, flags]), 0), null)).toBe(0);
  return { m, name, d, dev, faults };
}

/** Map [iova, iova+size) to pa through the scenario event, prot "r", "w" or "rw". */
function map(r: Rig, iova: number, size: number, prot: "r" | "w" | "rw", pa = PA): void {
  expect(step(r.m, { map: { domain: "d", iova, paddr: pa, size, prot } })).toBe(0);
}

/** The device's DMA through the scenario event; its value (the first physical address reached) goes to `r.value`. */
function dma(r: Rig, iova: number, size: number, dir: "read" | "write"): 0 | KError {
  const o = stepValue(r.m, { device_dma: { device: r.name, iova, size, dir } });
  r.value = o.value;
  return o.ret;
}

/** The report_iommu_fault notes the trace holds. */
function faultNotes(r: Rig): string[] {
  return r.m.ctx.trace.records.filter((t) => t.kind === "note" && t.fn === "report_iommu_fault").map((t) => t.detail);
}

function errnoOf(x: 0 | KError): string {
  return x === 0 ? "ok" : x.errno;
}

describe("a read-only mapping: the device reads, its write faults", () => {
  for (const kind of ["arm-lpae-s1", "arm-lpae-s2", "vtdss"] as const) {
    it(`${kind}: write faults with IOMMU_FAULT_WRITE, recorded in the trace; read reaches the page`, () => {
      const r = rig(kind);
      map(r, IOVA, SZ_4K, "r");
      expect(r.d.ops.iovaProt!(r.d, IOVA)).toBe(R);
      const w = dma(r, IOVA + 0x10, 8, "write");
      expect(errnoOf(w)).toBe("EFAULT");
      expect(w !== 0 && w.message).toMatch(/read-only: a write is not permitted/);
      expect(r.faults).toEqual([[IOVA + 0x10, IOMMU_FAULT_WRITE]]);
      expect(faultNotes(r)).toEqual([expect.stringMatching(/^iova 0x100010 write in domain \d+ \(unmanaged\): handler returned 0$/)]);
      expect(dma(r, IOVA + 0x10, 8, "read")).toBe(0);
      expect(r.value).toBe(PA + 0x10);
      expect(r.faults).toHaveLength(1);
      expect(r.m.ctx.diag.findings).toEqual([]);
      expect(checkInvariants(r.m)).toEqual([]);
    });
  }

  it("the fault is typed and carries report_iommu_fault's flag and answer", () => {
    const r = rig("arm-lpae-s1");
    map(r, IOVA, SZ_4K, "r");
    const res = iommuDeviceDma(r.m.k, r.dev, IOVA, 4, true);
    expect([res.fault, res.faultType, res.faultFlags, res.faultRet, res.pages]).toEqual([IOVA, "permission", IOMMU_FAULT_WRITE, 0, []]);
    const ok = iommuDeviceDma(r.m.k, r.dev, IOVA, 4, false);
    expect([ok.fault, ok.faultType, ok.faultFlags, ok.faultRet]).toEqual([null, null, null, null]);
    expect(ok.pages).toEqual([{ iova: IOVA, pa: PA, stale: false }]);
  });
});

describe("a write-only mapping", () => {
  for (const kind of ["arm-lpae-s2", "vtdss"] as const) {
    it(`${kind}: the device writes, its read faults with IOMMU_FAULT_READ`, () => {
      const r = rig(kind);
      map(r, IOVA, SZ_4K, "w");
      expect(dma(r, IOVA, SZ_4K, "write")).toBe(0);
      const rd = dma(r, IOVA, SZ_4K, "read");
      expect(errnoOf(rd)).toBe("EFAULT");
      expect(rd !== 0 && rd.message).toMatch(/write-only: a read is not permitted/);
      expect(r.faults).toEqual([[IOVA, IOMMU_FAULT_READ]]);
    });
  }

  it("arm-lpae-s1: stage 1 cannot withhold read, so the leaf is read-write and both succeed", () => {
    const r = rig("arm-lpae-s1");
    map(r, IOVA, SZ_4K, "w");
    expect(dma(r, IOVA, SZ_4K, "read")).toBe(0);
    expect(dma(r, IOVA, SZ_4K, "write")).toBe(0);
    expect(r.faults).toEqual([]);
  });
});

describe("the mock's mappings grant read and write whatever prot said (mock_domain_map_pages drops prot)", () => {
  it("a write through a read-only mock mapping reaches the page", () => {
    const r = rig("mock");
    map(r, 0x100_0000, SZ_4K, "r");
    expect(dma(r, 0x100_0000, SZ_4K, "write")).toBe(0);
    expect(r.value).toBe(PA);
    expect(r.faults).toEqual([]);
  });
});

describe("the IOTLB caches the permissions with the translation", () => {
  it("a read fills the entry read-only; a write then faults on the cached entry", () => {
    const r = rig("vtdss");
    map(r, IOVA, SZ_4K, "r");
    expect(dma(r, IOVA, SZ_4K, "read")).toBe(0);
    expect(r.d.iotlb!.lookup(IOVA)).toBe(PA);
    expect(r.d.iotlb!.lookupProt(IOVA)).toBe(R);
    const w = dma(r, IOVA, SZ_4K, "write");
    expect(w !== 0 && w.message).toMatch(/has an IOTLB entry for IOVA 0x100000 read-only/);
    expect(r.faults).toEqual([[IOVA, IOMMU_FAULT_WRITE]]);
  });

  it("a permission fault on a miss still caches the walk (the leaf was valid); a read then hits", () => {
    const r = rig("arm-lpae-s1");
    map(r, IOVA, SZ_4K, "r");
    expect(errnoOf(dma(r, IOVA, SZ_4K, "write"))).toBe("EFAULT");
    expect(r.d.iotlb!.lookupProt(IOVA)).toBe(R);
    expect(iommuDeviceDma(r.m.k, r.dev, IOVA, SZ_4K, false).pages).toEqual([{ iova: IOVA, pa: PA, stale: false }]);
  });

  it("unmap invalidates the entry: a read-write remap of the IOVA is writable at once", () => {
    const r = rig("arm-lpae-s1");
    map(r, IOVA, SZ_4K, "r");
    expect(dma(r, IOVA, SZ_4K, "read")).toBe(0);
    expect(step(r.m, { unmap: { domain: "d", iova: IOVA, size: SZ_4K } })).toBe(0);
    map(r, IOVA, SZ_4K, "rw", PA + SZ_4K);
    expect(dma(r, IOVA, SZ_4K, "write")).toBe(0);
    expect(r.value).toBe(PA + SZ_4K);
    expect(r.faults).toEqual([]);
  });
});

describe("a DMA over pages of different permissions", () => {
  it("goes page by page and stops at the first page that does not grant the access", () => {
    const r = rig("arm-lpae-s2");
    expect(iommuMap(r.d, IOVA, PA, SZ_4K, R | W)).toBe(0);
    expect(iommuMap(r.d, IOVA + SZ_4K, PA + SZ_4K, SZ_4K, R)).toBe(0);
    const res = iommuDeviceDma(r.m.k, r.dev, IOVA + 0x800, SZ_4K, true);
    expect(res.pages).toEqual([{ iova: IOVA + 0x800, pa: PA + 0x800, stale: false }]);
    expect([res.fault, res.faultType]).toEqual([IOVA + SZ_4K, "permission"]);
    expect(r.faults).toEqual([[IOVA + SZ_4K, IOMMU_FAULT_WRITE]]);
  });
});
