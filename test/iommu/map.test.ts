import { describe, expect, it } from "vitest";
import { pagingPriv } from "../../src/drivers/paging-domain.ts";
import { devGroup } from "../../src/iommu/dev-iommu.ts";
import { IOMMU_DOMAIN_UNMANAGED, type IommuDomain, iommuDomainMappedBytes } from "../../src/iommu/domain.ts";
import { iommuPagingDomainAlloc } from "../../src/iommu/domain-alloc.ts";
import { iommuIovaToPhys, iommuMap, iommuMapSg, iommuPgsize, iommuUnmap } from "../../src/iommu/map.ts";
import { isErr } from "../../src/lib/errno.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../../src/pgtable/types.ts";
import { Machine } from "../../src/sim/machine.ts";
import { boot, run } from "../helpers.ts";
import { tableChange, tableState, type TableState } from "../pgtable/helpers.ts";

const K = 1024;
const M = K * K;
const G = K * M;
const RW = IOMMU_READ | IOMMU_WRITE;

/** An UNMANAGED domain on an SMMUv3 (4K, 2M, 1G), with map_pages calls recorded. */
function domain(): { d: IommuDomain; calls: [number, number, number][]; m: Machine } {
  const m = boot("name: m\niommus:\n  - {name: s, driver: arm-smmu-v3, fwnode: /s}\ndevices:\n  - {name: a, bus: platform, fwnode: /a, iommus: [[s, 1]]}\n");
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
    expect(iommuDomainMappedBytes(d)).toBe(8 * M);
    expect(iommuIovaToPhys(d, 5 * M + 123)).toBe(5 * M + 123);
    expect(iommuUnmap(d, 2 * M + 4 * K, 8 * M)).toBe(8 * M);
    expect(iommuDomainMappedBytes(d)).toBe(0);
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
    expect(iommuDomainMappedBytes(d)).toBe(4 * K);
  });

  it("Arm LPAE: a 2M block over a table of live 4K pages discards them, as the kernel does, and says so", () => {
    const { d, m } = domain();
    expect(iommuMap(d, 3 * M, 3 * M, 4 * K, RW)).toBe(0);
    expect(iommuMap(d, 2 * M, 64 * M, 2 * M, RW)).toBe(0);
    expect(m.ctx.trace.records.some((t) => t.fn === "io-pgtable finding" && t.detail.startsWith("map-discards-mappings"))).toBe(true);
    expect(iommuIovaToPhys(d, 3 * M)).toBe(65 * M);
    expect(d.ops.stats!(d).findings.some((f) => f.startsWith("map-discards-mappings"))).toBe(true);
    expect(d.ops.stats!(d).tlb.flushWalk).toBe(1);
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
    // A fresh domain already has its pgd (the kernel allocates it when the domain is finalised):
    // ias 48 with the 4K granule walks from level 0, whose pgd is 512 entries, one page.
    expect(d.type).toBe(IOMMU_DOMAIN_UNMANAGED);
    expect(pagingPriv(d).pgtbl).toBeNull();
    expect([ops.stats!(d).tablePages, ops.stats!(d).tableBytes]).toEqual([1, 4096]);
    // Map 1 GiB page by page so no block entries are used.
    for (let off = 0; off < G; off += 2 * M) expect(iommuMap(d, 4 * G + off, 256 * G + off + 4 * K, 2 * M, RW)).toBe(0);
    // pgd + one level-1 table + one level-2 table + 512 level-3 tables.
    expect(ops.stats!(d).tablePages).toBe(515);
    expect(ops.stats!(d).tableBytes).toBe(515 * 4096);
  });

  it("a failed first map leaves the counted tables as they were", () => {
    const { d } = domain();
    const before = d.ops.stats!(d);
    // Misaligned: refused before the table is touched; the model builds the pgd lazily, invisibly.
    // iommu_map: !IS_ALIGNED(iova | paddr | size, min_pagesz) -> -EINVAL.
    const r = iommuMap(d, 4 * G + 512, 8 * G, 4 * K, RW);
    expect(isErr(r) && r.errno).toBe("EINVAL");
    expect(d.ops.stats!(d)).toEqual(before);
  });

  it("an unmap that frees a whole table returns the table's span, and the mapped bytes are what the table still maps", () => {
    const { d } = domain();
    expect(iommuMap(d, 2 * G, 16 * G, 4 * K, RW)).toBe(0);
    expect(iommuMap(d, 2 * G + 4 * M, 16 * G, 2 * M, RW)).toBe(0);
    expect(iommuMap(d, 5 * G, 32 * G, G, RW)).toBe(0);
    expect(iommuDomainMappedBytes(d)).toBe(4 * K + 2 * M + G);
    // __arm_lpae_unmap at level 1: the entry for [2G, 3G) is a table, and the unmap is its whole span.
    expect(iommuUnmap(d, 2 * G, G)).toBe(G);
    expect(iommuDomainMappedBytes(d)).toBe(G);
    expect(iommuIovaToPhys(d, 5 * G + 4 * K)).toBe(32 * G + 4 * K);
    expect(iommuUnmap(d, 5 * G, G)).toBe(G);
    expect(iommuDomainMappedBytes(d)).toBe(0);
  });
});

/**
 * Bad input: the kernel's errno or return value, and no change to the
 * tables. The domain holds three mappings first, so that the pgd exists and
 * there are neighbours whose translations must survive: two 4K pages at
 * 2M+8K, a 2M block at 4M and a 1G block at 2G.
 */
describe("bad input to iommu_map / iommu_unmap: errno, and the tables unchanged", () => {
  const MAPS: [iova: number, pa: number, size: number][] = [
    [2 * M + 8 * K, 64 * M + 8 * K, 8 * K],
    [4 * M, 128 * M, 2 * M],
    [2 * G, 4 * G, G],
  ];
  /** What those mappings translate to, from the list above (not from the model). */
  const refPhys = (iova: number): number => {
    for (const [v, p, s] of MAPS) if (iova >= v && iova < v + s) return p + (iova - v);
    return 0;
  };
  const PROBES = [
    2 * M - 8 * K, 2 * M - 4 * K, 2 * M, 2 * M + 4 * K, 2 * M + 8 * K, 2 * M + 12 * K, 2 * M + 16 * K, 4 * M - 4 * K,
    4 * M, 5 * M, 6 * M - 4 * K, 6 * M, G, 2 * G - 4 * K, 2 * G, 2 * G + 123 * M, 3 * G - 4 * K, 3 * G, 2 ** 48 - 4 * K,
  ].map((p) => p + 0x18);

  interface DomainState {
    table: TableState;
    mapped: number;
    translations: number[];
    tlb: { flushWalk: number; addPage: number; flushAll: number };
    findings: number;
  }

  function populated() {
    const x = domain();
    for (const [iova, pa, size] of MAPS) expect(iommuMap(x.d, iova, pa, size, RW)).toBe(0);
    x.calls.length = 0;
    return x;
  }

  function stateOf(d: IommuDomain): DomainState {
    const st = d.ops.stats!(d);
    return {
      table: tableState(pagingPriv(d).pgtbl!),
      mapped: iommuDomainMappedBytes(d),
      translations: PROBES.map((p) => iommuIovaToPhys(d, p)),
      tlb: { flushWalk: st.tlb.flushWalk, addPage: st.tlb.addPage, flushAll: st.tlb.flushAll },
      findings: st.findings.length,
    };
  }

  /** The domain is as `before` found it (tables, mapped bytes, translations, invalidations), with exactly these new findings. */
  function expectUnchanged(d: IommuDomain, before: DomainState, findings: string[]): void {
    const after = stateOf(d);
    expect(tableChange(before.table, after.table)).toEqual({ pages: 0, bytes: 0, firstChangedWord: -1 });
    expect(after.mapped).toBe(before.mapped);
    expect(after.translations).toEqual(PROBES.map(refPhys));
    expect(after.tlb).toEqual(before.tlb);
    expect(newFindings(d, before)).toEqual(findings);
  }

  /** Finding kinds the page table reported since `before`. */
  function newFindings(d: IommuDomain, before: DomainState): string[] {
    return d.ops.stats!(d).findings.slice(before.findings).map((f) => f.split(" ")[0]!);
  }

  it("the populated domain: 4 table pages (pgd, level 1, level 2, one level-3 table) and the reference translations", () => {
    const { d } = populated();
    const s = stateOf(d);
    // The 2M and 1G blocks are entries of the level-2 and level-1 tables the 4K pages needed anyway.
    expect(s.table.pages).toBe(4);
    expect(s.table.bytes).toBe(4 * 4096);
    expect(s.mapped).toBe(8 * K + 2 * M + G);
    expect(s.translations).toEqual(PROBES.map(refPhys));
    expect(d.geometry.apertureEnd).toBe(2 ** 48 - 1);
  });

  type MapCase = [name: string, iova: number, pa: number, size: number, errno: string | 0, findings: string[]];
  const mapCases: MapCase[] = [
    // iommu_map_nosync: IS_ALIGNED(iova | paddr | size, min_pagesz) or -EINVAL, before any map_pages call.
    ["unaligned iova", 8 * M + 0x800, 8 * M, 4 * K, "EINVAL", []],
    ["unaligned paddr", 8 * M, 8 * M + 0x10, 4 * K, "EINVAL", []],
    ["a size that is no multiple of the smallest page (4K + 8)", 8 * M, 8 * M, 4 * K + 8, "EINVAL", []],
    // iommu_map_nosync: the classic loop maps nothing for size 0 and succeeds.
    ["size 0", 8 * M, 8 * M, 0, 0, []],
    // arm_lpae_map_pages: iova >> ias must be 0, else WARN and -ERANGE before the walk. The SMMUv3
    // aperture ends at 2^ias - 1 and iommu_map itself does not check it: the page table does.
    ["an iova just beyond the aperture (2^48)", 2 ** 48, 8 * M, 4 * K, "ERANGE", ["out-of-range"]],
    ["an iova far beyond the aperture, 2M block", 2 ** 49, 8 * M, 2 * M, "ERANGE", ["out-of-range"]],
    // arm_lpae_map_pages: paddr >> oas must be 0.
    ["a paddr beyond oas", 8 * M, 2 ** 48, 4 * K, "ERANGE", ["out-of-range"]],
    // arm_lpae_init_pte: an existing leaf is -EEXIST (WARN unless NO_WARN), checked before any write.
    ["a 4K page over a mapped 4K page", 2 * M + 8 * K, 96 * M, 4 * K, "EEXIST", ["map-exists"]],
    ["8K over one free and one mapped page (one batch)", 2 * M + 4 * K, 96 * M, 8 * K, "EEXIST", ["map-exists"]],
    ["a 2M block over a 2M block", 4 * M, 96 * M, 2 * M, "EEXIST", ["map-exists"]],
    // __arm_lpae_map: a block met above the target level is -EEXIST, before any table is allocated.
    ["a 4K page inside a 2M block", 5 * M, 96 * M, 4 * K, "EEXIST", ["map-exists"]],
    ["a 2M block inside a 1G block", 2 * G + 2 * M, 96 * M, 2 * M, "EEXIST", ["map-exists"]],
    ["a 1G block over a 1G block", 2 * G, 8 * G, G, "EEXIST", ["map-exists"]],
  ];

  it.each(mapCases)("iommu_map: %s", (_name, iova, pa, size, errno, findings) => {
    const { d } = populated();
    const before = stateOf(d);
    const r = iommuMap(d, iova, pa, size, RW);
    if (errno === 0) expect(r).toBe(0);
    else expect(r).toMatchObject({ errno });
    expectUnchanged(d, before, findings);
  });

  type UnmapCase = [name: string, iova: number, size: number, findings: string[]];
  const unmapCases: UnmapCase[] = [
    // __iommu_unmap: IS_ALIGNED(iova | size, min_pagesz) or return 0, before any unmap_pages call.
    ["an unaligned iova", 2 * M + 8 * K + 0x10, 4 * K, []],
    ["an unaligned size", 2 * M + 8 * K, 4 * K + 0x10, []],
    // __arm_lpae_unmap: an empty entry on the walk. The kernel returns -ENOENT through size_t; the model
    // returns 0, what __iommu_unmap treats as "stop" (docs/pgtable.md, "unmap of a hole").
    ["a hole in an existing level-3 table", 2 * M, 4 * K, ["unmap-enoent"]],
    ["a range starting in a hole before a mapped page", 2 * M + 4 * K, 8 * K, ["unmap-enoent"]],
    ["an address with no level-3 table", 8 * M, 4 * K, ["unmap-enoent"]],
    ["an address with no level-1 table", 600 * G, 2 * M, ["unmap-enoent"]],
    // __arm_lpae_unmap: a leaf larger than pgsize is a partial unmap: WARN_ONCE, 0, the block is kept.
    ["4K inside a 2M block", 5 * M, 4 * K, ["unmap-partial-block"]],
    ["the first 2M of a 1G block", 2 * G, 2 * M, ["unmap-partial-block"]],
    // arm_lpae_unmap_pages: an iova beyond ias WARNs and returns 0.
    ["an iova beyond ias", 2 ** 48, 4 * K, ["out-of-range"]],
  ];

  it.each(unmapCases)("iommu_unmap of what is not mapped: %s returns 0", (_name, iova, size, findings) => {
    const { d } = populated();
    const before = stateOf(d);
    expect(iommuUnmap(d, iova, size)).toBe(0);
    // iommu_unmap always syncs the gather, but nothing was unmapped: no page or walk invalidation.
    expectUnchanged(d, before, findings);
  });

  it("EEXIST on a later map_pages call: the core unmaps what the call mapped, the level-3 table it needed stays", () => {
    const { d, calls } = populated();
    const before = stateOf(d);
    // [2M-8K, 2M+12K): the first map_pages call maps 2 pages up to the end of the [0, 2M) level-3
    // table, which it allocates (__arm_lpae_map); the next one meets the leaf at 2M+8K (-EEXIST).
    const r = iommuMap(d, 2 * M - 8 * K, 64 * M - 8 * K, 20 * K, RW);
    expect(r).toMatchObject({ errno: "EEXIST" });
    expect(calls).toEqual([[2 * M - 8 * K, 4 * K, 5], [2 * M, 4 * K, 3]]);
    const after = stateOf(d);
    // iommu_map_nosync unmaps the 8K it mapped; arm_lpae_unmap_pages never frees a table that a leaf
    // unmap empties (io-pgtable-arm keeps empty tables): one more table page than before.
    expect(after.table.pages).toBe(before.table.pages + 1);
    expect(after.table.bytes).toBe(before.table.bytes + 4096);
    expect(after.mapped).toBe(before.mapped);
    expect(after.translations).toEqual(PROBES.map(refPhys));
    expect(newFindings(d, before)).toEqual(["map-exists"]);
    // The same call again allocates nothing more and fails the same way.
    expect(iommuMap(d, 2 * M - 8 * K, 64 * M - 8 * K, 20 * K, RW)).toMatchObject({ errno: "EEXIST" });
    expect(tableChange(after.table, stateOf(d).table)).toEqual({ pages: 0, bytes: 0, firstChangedWord: -1 });
  });

  it("a range running past the aperture: ERANGE, the page below it unmapped again, its three tables stay", () => {
    const { d, calls } = populated();
    const before = stateOf(d);
    const top = 2 ** 48 - 4 * K;
    expect(iommuMap(d, top, G, 8 * K, RW)).toMatchObject({ errno: "ERANGE" });
    // One batch of two pages stops at the end of the last level-3 table after one page; the next
    // call starts at 2^48 (arm_lpae_map_pages: -ERANGE).
    expect(calls).toEqual([[top, 4 * K, 2], [2 ** 48, 4 * K, 1]]);
    const after = stateOf(d);
    // The walk to the top page allocated the level-1, level-2 and level-3 tables under pgd entry 511;
    // the core's unmap of that page leaves them (empty tables are kept).
    expect(after.table.pages).toBe(before.table.pages + 3);
    expect(after.mapped).toBe(before.mapped);
    expect(iommuIovaToPhys(d, top)).toBe(0);
    expect(after.translations).toEqual(PROBES.map(refPhys));
    expect(newFindings(d, before)).toEqual(["out-of-range"]);
  });
});
