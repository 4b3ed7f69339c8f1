import { describe, expect, it } from "vitest";
import { runPath } from "../../src/base/path.ts";
import { devGroup } from "../../src/iommu/dev-iommu.ts";
import { IOMMU_DOMAIN_UNMANAGED, type IommuDomain } from "../../src/iommu/domain.ts";
import { iommuPagingDomainAlloc } from "../../src/iommu/domain-alloc.ts";
import { iommuIovaToPhys, iommuMap, iommuMapSg, iommuPgsize, iommuUnmap } from "../../src/iommu/map.ts";
import { isErr } from "../../src/lib/errno.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../../src/pgtable/types.ts";
import { Machine } from "../../src/sim/machine.ts";
import { bootPath } from "../../src/sim/runner.ts";
import { run, scenario } from "../helpers.ts";

const K = 1024;
const M = K * K;
const G = K * M;
const RW = IOMMU_READ | IOMMU_WRITE;

/** An UNMANAGED domain on an SMMUv3 (4K, 2M, 1G), with map_pages calls recorded. */
function domain(): { d: IommuDomain; calls: [number, number, number][]; m: Machine } {
  const m = new Machine(scenario("name: m\niommus:\n  - {name: s, driver: arm-smmu-v3, fwnode: /s}\ndevices:\n  - {name: a, bus: platform, fwnode: /a, iommus: [[s, 1]]}\n"));
  runPath(bootPath(m, []));
  const d = iommuPagingDomainAlloc(m.k, m.devices.get("a")!.dev);
  if (isErr(d)) throw new Error(d.message);
  const calls: [number, number, number][] = [];
  const orig = d.ops.mapPages!;
  const ops = { ...d.ops, mapPages: (dd: IommuDomain, iova: number, pa: number, pgsize: number, count: number, prot: number, mapped: { bytes: number }) => {
    calls.push([iova, pgsize, count]);
    return orig(dd, iova, pa, pgsize, count, prot, mapped);
  } };
  Object.defineProperty(d, "ops", { value: ops });
  return { d, calls, m };
}

describe("iommu_pgsize splits a range into the largest pages the domain supports", () => {
  const { d } = domain();
  const pg = (iova: number, pa: number, size: number) => {
    const r = iommuPgsize(d, iova, pa, size, { pgsize: 0, count: 0 });
    return [r.pgsize, r.count];
  };
  it("4 GiB at 1 GiB-aligned addresses: four 1G pages in one call", () => expect(pg(G, 2 * G, 4 * G)).toEqual([G, 4]));
  it("2M+4K on a 2M boundary: one 2M first", () => expect(pg(2 * M, 4 * M, 2 * M + 4 * K)).toEqual([2 * M, 1]));
  it("8 MiB starting 4K past a 2M boundary: 511 4K pages up to the boundary", () => expect(pg(2 * M + 4 * K, 4 * K, 8 * M)).toEqual([4 * K, 511]));
  it("iova and paddr offset differently inside 2M: everything in 4K", () => expect(pg(2 * M, 2 * M + 4 * K, 8 * M)).toEqual([4 * K, 2048]));
});

describe("iommu_map / iommu_unmap", () => {
  it("maps 8 MiB from 4K past a 2M boundary as 511 x 4K, 3 x 2M, 1 x 4K", () => {
    const { d, calls } = domain();
    expect(iommuMap(d, 2 * M + 4 * K, 2 * M + 4 * K, 8 * M, RW)).toBe(0);
    // One map_pages call never crosses a table boundary, so the core's loop makes them in order.
    const bySize = calls.reduce<Record<number, number>>((acc, [, s, c]) => ((acc[s] = (acc[s] ?? 0) + c), acc), {});
    expect(bySize).toEqual({ [4 * K]: 512, [2 * M]: 3 });
    expect(calls.at(-1)).toEqual([10 * M, 4 * K, 1]);
    expect(d.mappedBytes).toBe(8 * M);
    expect(iommuIovaToPhys(d, 5 * M + 123)).toBe(5 * M + 123);
    expect(iommuUnmap(d, 2 * M + 4 * K, 8 * M)).toBe(8 * M);
    expect(d.mappedBytes).toBe(0);
    expect(iommuIovaToPhys(d, 5 * M)).toBe(0);
  });

  it("is all or nothing: a failure part-way unmaps what the call had mapped", () => {
    const { d } = domain();
    expect(iommuMap(d, 2 * M + 8 * K, 2 * M + 8 * K, 4 * K, RW)).toBe(0);
    const r = iommuMap(d, 2 * M, 2 * M, 16 * K, RW);
    expect(r).toMatchObject({ errno: "EEXIST" });
    expect(iommuIovaToPhys(d, 2 * M)).toBe(0);
    expect(iommuIovaToPhys(d, 2 * M + 4 * K)).toBe(0);
    expect(iommuIovaToPhys(d, 2 * M + 8 * K)).toBe(2 * M + 8 * K);
    expect(d.mappedBytes).toBe(4 * K);
  });

  it("Arm LPAE: a 2M block over a table of live 4K pages discards them, as the kernel does, and says so", () => {
    const { d, m } = domain();
    expect(iommuMap(d, 3 * M, 3 * M, 4 * K, RW)).toBe(0);
    expect(iommuMap(d, 2 * M, 64 * M, 2 * M, RW)).toBe(0);
    expect(m.dc.trace.records.some((t) => t.fn === "io-pgtable finding" && t.detail.startsWith("map-discards-mappings"))).toBe(true);
    expect(iommuIovaToPhys(d, 3 * M)).toBe(65 * M);
    expect(d.ops.stats!(d).findings.some((f) => f.startsWith("map-discards-mappings"))).toBe(true);
    expect(d.ops.stats!(d).tlb.flushWalk).toBe(1);
  });

  it("refuses unaligned iova, paddr or size with EINVAL and changes nothing", () => {
    const { d, calls } = domain();
    for (const [iova, pa, size] of [[4 * K + 1, 0, 4 * K], [0, 100, 4 * K], [0, 0, 4 * K + 8]]) {
      expect(iommuMap(d, iova!, pa!, size!, RW)).toMatchObject({ errno: "EINVAL" });
    }
    expect(calls).toEqual([]);
    expect(d.mappedBytes).toBe(0);
  });

  it("refuses an IOVA beyond the input address size (ERANGE from the page table)", () => {
    const { d } = domain();
    expect(iommuMap(d, 2 ** 48, 0, 4 * K, RW)).toMatchObject({ errno: "ERANGE" });
    expect(d.mappedBytes).toBe(0);
  });

  it("unmapping what is not mapped returns 0 bytes; unaligned unmaps return 0", () => {
    const { d } = domain();
    expect(iommuUnmap(d, 8 * M, 4 * K)).toBe(0);
    expect(iommuMap(d, 8 * M, 8 * M, 4 * K, RW)).toBe(0);
    expect(iommuUnmap(d, 8 * M + 1, 4 * K)).toBe(0);
    expect(iommuIovaToPhys(d, 8 * M)).toBe(8 * M);
  });

  it("iommu_map_sg merges physically contiguous entries and skips bus addresses", () => {
    const { d, calls } = domain();
    const r = iommuMapSg(d, 16 * M, [
      { paddr: 64 * M, length: 8 * K },
      { paddr: 64 * M + 8 * K, length: 8 * K },
      { paddr: 0x1234000, length: 4 * K, busAddress: true },
      { paddr: 80 * M, length: 4 * K },
    ], RW);
    expect(r).toBe(20 * K);
    expect(calls).toEqual([[16 * M, 4 * K, 4], [16 * M + 16 * K, 4 * K, 1]]);
    expect(iommuIovaToPhys(d, 16 * M + 16 * K)).toBe(80 * M);
  });

  it("identity domains translate to the IOVA, blocked domains to nothing", () => {
    const r = run("name: m\nboot: {cmdline: iommu.passthrough=1}\niommus:\n  - {name: s, driver: arm-smmu-v3, fwnode: /s}\ndevices:\n  - {name: a, bus: platform, fwnode: /a, iommus: [[s, 1]]}\n");
    const id = devGroup(r.machine.devices.get("a")!.dev)!.defaultDomain!;
    expect(iommuIovaToPhys(id, 0x1234)).toBe(0x1234);
    expect(iommuMap(id, 0, 0, 4096, RW)).toMatchObject({ errno: "EINVAL" });
  });

  it("the domain carries the page-table memory its mappings need (about 2 MiB per GiB of 4K pages)", () => {
    const { d } = domain();
    const ops = d.ops;
    expect(ops.stats!(d).tablePages).toBe(0);
    expect(d.type).toBe(IOMMU_DOMAIN_UNMANAGED);
    // Map 1 GiB page by page so no block entries are used.
    for (let off = 0; off < G; off += 2 * M) expect(iommuMap(d, 4 * G + off, 256 * G + off + 4 * K, 2 * M, RW)).toBe(0);
    expect(ops.stats!(d).tablePages).toBe(515);
    expect(ops.stats!(d).tableBytes).toBe(515 * 4096);
  });
});
