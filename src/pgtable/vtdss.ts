/**
 * Intel VT-d second-stage page table, with the semantics of the mainline
 * generic page table ("iommupt", drivers/iommu/generic_pt/iommu_pt.h with
 * fmt/vtdss.h).
 *
 * Layout (VT-d spec 9.8): 4 KiB tables of 512 64-bit entries, 9 bits per
 * level. Level 0 entries map 4K, level 1 (with PS) 2M, level 2 (with PS) 1G;
 * level 3 holds tables only. A 39-bit table starts at level 2 (3 levels), a
 * 48-bit one at level 3 (4 levels). There is no present bit: an entry is
 * empty when it is 0, and every mapping carries R or W. Address bits 51:12.
 *
 * Semantics that differ from io-pgtable-arm:
 *  - map_pages picks the leaf size itself from the range and alignment (the
 *    domain bitmap limits it) and maps the whole range in one call;
 *  - anything already mapped in the range is -EADDRINUSE; a larger leaf may
 *    replace *empty* tables, which are freed after a walk-cache flush;
 *  - unmap stops at a hole or when it would start inside a large entry,
 *    returning the bytes done so far; ending inside a large entry removes the
 *    whole entry and returns more than was asked; tables fully covered by the
 *    range are freed through the gather.
 */
import { kerr, type KError } from "../lib/errno.ts";
import { iommuIotlbGatherAddRange, iommuIotlbGatherInit, newIommuIotlbGather, type IommuIotlbGather, type IommuPagesList } from "./gather.ts";
import { TABLE_POOL_DEFAULT_BASE, TablePool } from "./pool.ts";
import { SZ_1G, SZ_2M, SZ_4K, bitmapAnd, bitmapHas, bitmapOf, hex, pgsizesOf } from "./sizes.ts";
import {
  IOMMU_READ,
  IOMMU_WRITE,
  NOOP_FLUSH_OPS,
  newPgtableWalkData,
  type IoPgtableCfg,
  type IoPgtableCfgInit,
  type IoPgtableOps,
  type IommuFlushOps,
  type MappedBytes,
  type PgtableFindingHandler,
  type PgtableFindingKind,
  type PgtableWalkData,
} from "./types.ts";

/*
 * Descriptor bits (fmt/vtdss.h), all in the low word except the address. The
 * format also has A (bit 8), D (bit 9) and SNP (bit 11); the model sets none
 * of them (no dirty tracking, no forced snooping).
 */
export const VTDSS_FMT_R = 1 << 0;
export const VTDSS_FMT_W = 1 << 1;
/** Page size: the entry at level 1 or 2 is a 2M or 1G leaf. */
export const VTDSS_FMT_PS = 1 << 7;
/* VTDSS_FMT_OA = GENMASK(51, 12), split into words. */
export const VTDSS_FMT_OA_LO = 0xfffff000;
export const VTDSS_FMT_OA_HI = 0x000fffff;
const OA_LO_I = VTDSS_FMT_OA_LO | 0;

export const VTDSS_MAX_OUTPUT_ADDRESS_LG2 = 52;
/** Table and granule size. */
const VTDSS_TABLE_BYTES = SZ_4K;
const ENTRIES = 512;
const TWO_32 = 4294967296;

/* Internal walk results. */
const OK = 0;
const STOP = 1;
const EADDRINUSE = 2;
/** A table could not be allocated: the pool's memory budget is spent. */
const ENOMEM = 3;

/** Superpage sizes from the VT-d SLLPS capability, reduced to a level count (1: 2M, 2: 2M and 1G). */
// @kernel: domain_super_pgsize_bitmap
export function domainSuperPgsizeBitmap(iommuSuperpage: number): number {
  if (iommuSuperpage === 1) return SZ_2M;
  if (iommuSuperpage === 2) return SZ_2M + SZ_1G;
  return 0;
}

export interface VtdssIoPgtable extends IoPgtableOps {
  readonly fmt: "VTDSS";
  /** Level of the top table: 2 for a 3-level (39-bit) table, 3 for 4 levels (48-bit). */
  readonly topLevel: number;
  /**
   * Record the entry at each level (generic_pt numbering: 0 holds 4K leaves)
   * the walk for iova visits; returns the level of the leaf found, or -1.
   */
  pgtableWalk(iova: number, wd: PgtableWalkData): number;
}

/** Tests: make ops take the general code for every call, to compare it with the one-page fast paths. */
export function vtdssGeneralPathsOnly(ops: VtdssIoPgtable): void {
  if (ops instanceof VtdssPgtable) ops.useGeneralPathsOnly();
}

/** Allocate a VT-d second-stage table. ias picks the levels: 31..39 -> 3, 40..48 -> 4. */
// @kernel: vtdss_pt_iommu_fmt_init
export function allocVtdssPgtable(init: IoPgtableCfgInit): VtdssIoPgtable | KError {
  if (init.quirks) return kerr("EINVAL", `the VT-d second-stage format takes no io-pgtable quirks (got ${hex(init.quirks)})`);
  if (init.coherentWalk === false) return kerr("EINVAL", "non-coherent VT-d walks (PT_FEAT_DMA_INCOHERENT) are not modelled");
  const ias = init.ias;
  let topLevel: number;
  // 5-level (57-bit) tables exist in hardware but their addresses do not fit in a JS number.
  if (ias > 48) return kerr("EOPNOTSUPP", `ias ${ias}: only 3- and 4-level (39- and 48-bit) VT-d tables are modelled`);
  else if (ias > 39) topLevel = 3;
  else if (ias > 30) topLevel = 2;
  else return kerr("EOPNOTSUPP", `ias ${ias} is too small for a VT-d second-stage table (minimum 31)`);
  const oas = Math.min(init.oas, VTDSS_MAX_OUTPUT_ADDRESS_LG2);
  // @kernel: get_info
  const pgsizeBitmap = bitmapAnd(init.pgsizeBitmap, bitmapOf(SZ_4K, SZ_2M, SZ_1G));
  if (!bitmapHas(pgsizeBitmap, SZ_4K)) return kerr("EINVAL", `the page-size bitmap ${hex(init.pgsizeBitmap)} lacks the 4K base page`);
  const tableBase = init.tableBase ?? TABLE_POOL_DEFAULT_BASE;
  const pool = new TablePool(VTDSS_TABLE_BYTES, tableBase, 4, init.memory);
  const top = pool.alloc(1, VTDSS_TABLE_BYTES);
  if (top < 0) {
    pool.release();
    return kerr("ENOMEM", `no page-table memory left for the top table (the budget of ${pool.memory.limit} bytes is spent)`);
  }
  const cfg: IoPgtableCfg = {
    quirks: 0,
    pgsizeBitmap,
    ias,
    oas,
    coherentWalk: true,
    tlb: init.tlb ?? NOOP_FLUSH_OPS,
    onFinding: init.onFinding ?? null,
    tableBase,
    // @kernel: vtdss_pt_iommu_fmt_hw_info
    vtdssHwInfo: { ssptptr: pool.physOf(top), aw: topLevel - 1 },
  };
  return new VtdssPgtable(cfg, pool, top, topLevel);
}

/** iovaProt's walk record (one model thread: shared by every table). */
const PROT_WALK = newPgtableWalkData();

/** Item size at level l: 4K, 2M, 1G, 512G, 256T (a table: `2 ** x` is a call into C in V8). */
const ITEM_SIZE = new Float64Array([SZ_4K, SZ_2M, SZ_1G, 2 ** 39, 2 ** 48]);
const TWO_NEG_32 = 2 ** -32;

function itemSize(level: number): number {
  return ITEM_SIZE[level]!;
}

/** x mod m for x >= 0 and a power of two m: exact, without the call into C that V8 makes for `%` on doubles. */
function modPow2(x: number, m: number): number {
  return x - Math.floor(x / m) * m;
}

/** Whether x is a multiple of the power of two m (`x % m === 0`, also for negative, fractional or non-finite x). */
function multipleOf(x: number, m: number): boolean {
  return x - Math.floor(x / m) * m === 0;
}

class VtdssPgtable implements VtdssIoPgtable {
  readonly fmt = "VTDSS" as const;
  readonly cfg: IoPgtableCfg;
  readonly topLevel: number;

  private readonly pool: TablePool;
  private readonly top: number;
  private readonly iasLimit: number;
  private readonly oasLimit: number;
  private readonly topMask: number;
  private readonly sizesDesc: number[];
  private readonly tlb: IommuFlushOps;
  private readonly onFinding: PgtableFindingHandler | null;
  /** 2^-(12 + 9l): `(va * inv[l]) >>> 0` is the entry number at level l, mod 2^32. */
  private readonly inv = new Float64Array(5);
  /** The gather map_pages uses for tables it frees (a stack variable in the kernel). */
  private readonly mapGather = newIommuIotlbGather();
  /** The one-page fast paths apply (tests turn them off to compare). */
  private fast = true;
  /** The pool's low base word as an int32, for the int32 walks. */
  private readonly baseLoI: number;
  /** The frames of iova and paddr a one-page fast path takes: iova + 4K <= 2^ias, paddr < 2^oas. */
  private readonly iasPfnLimit: number;
  private readonly oasPfnLimit: number;
  /** Offset mask of the leaf walkLeaf found last. */
  private leafOffMask = 0;
  /* Per-call walk state. */
  private leafLevel = 0;
  private oa = 0;
  private attrLo = 0;
  private unmapped = 0;
  private freed = false;

  constructor(cfg: IoPgtableCfg, pool: TablePool, top: number, topLevel: number) {
    this.cfg = cfg;
    this.pool = pool;
    this.top = top;
    this.topLevel = topLevel;
    this.iasLimit = 2 ** cfg.ias;
    this.oasLimit = 2 ** cfg.oas;
    this.topMask = 2 ** (cfg.ias - 12 - 9 * topLevel) - 1;
    this.sizesDesc = pgsizesOf(cfg.pgsizeBitmap).reverse();
    this.tlb = cfg.tlb;
    this.onFinding = cfg.onFinding;
    for (let l = 0; l < 5; l++) this.inv[l] = 2 ** -(12 + 9 * l);
    this.baseLoI = pool.base | 0;
    this.iasPfnLimit = this.iasLimit / SZ_4K;
    this.oasPfnLimit = this.oasLimit / SZ_4K;
  }

  /** See vtdssGeneralPathsOnly. */
  useGeneralPathsOnly(): void {
    this.fast = false;
  }

  tablePages(): number {
    return this.pool.allocations;
  }

  tableBytes(): number {
    return this.pool.bytes;
  }

  /*
   * map_pages, unmap_pages and iova_to_phys of one 4K page (what the DMA API
   * does most) walk in int32 arithmetic on the address's 32-bit halves, with
   * the shifts of the 4-level layout written out, through tables that exist.
   * Anything else, or anything they decline having changed nothing, goes to
   * the general code, which decides as before.
   */

  // @kernel: map_pages
  mapPages(iova: number, paddr: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError {
    if (pgsize === SZ_4K && pgcount === 1 && this.fast && iova >= 0 && iova + SZ_4K <= this.iasLimit && paddr >= 0 && paddr < this.oasLimit) {
      const ihi = (iova * TWO_NEG_32) | 0;
      const ilo = iova | 0;
      const phi = (paddr * TWO_NEG_32) | 0;
      const plo = paddr | 0;
      // Whole, 4K-aligned addresses only.
      if (ihi * TWO_32 + (ilo >>> 0) === iova && phi * TWO_32 + (plo >>> 0) === paddr && ((ilo | plo) & (SZ_4K - 1)) === 0 && this.map4kOne(ihi, ilo, phi, plo, prot)) {
        mapped.bytes += SZ_4K;
        return 0;
      }
    }
    return this.mapPagesGeneral(iova, paddr, pgsize, pgcount, prot, mapped);
  }

  /** mapPages with frame numbers (see IoPgtableOps.mapPagesPfn): one 4K page of whole frames below 2^31 takes the fast path directly. */
  // @kernel: map_pages
  mapPagesPfn(iovaPfn: number, paddrPfn: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError {
    if (
      pgsize === SZ_4K &&
      pgcount === 1 &&
      this.fast &&
      (iovaPfn | 0) === iovaPfn &&
      iovaPfn >= 0 &&
      iovaPfn < this.iasPfnLimit &&
      (paddrPfn | 0) === paddrPfn &&
      paddrPfn >= 0 &&
      paddrPfn < this.oasPfnLimit &&
      this.map4kOne(iovaPfn >>> 20, iovaPfn << 12, paddrPfn >>> 20, paddrPfn << 12, prot)
    ) {
      mapped.bytes += SZ_4K;
      return 0;
    }
    return this.mapPages(iovaPfn * SZ_4K, paddrPfn * SZ_4K, pgsize, pgcount, prot, mapped);
  }

  /** unmapPages with a frame number (see IoPgtableOps.mapPagesPfn). */
  // @kernel: unmap_pages
  unmapPagesPfn(iovaPfn: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number {
    if (pgsize === SZ_4K && pgcount === 1 && this.fast && (iovaPfn | 0) === iovaPfn && iovaPfn >= 0 && iovaPfn < this.iasPfnLimit) {
      const p = this.slot4k(iovaPfn >>> 20, iovaPfn << 12);
      const w = this.pool.i32;
      // @kernel: __unmap_range
      if (p >= 0 && (w[p]! | w[p + 1]!) !== 0) {
        w[p] = 0;
        w[p + 1] = 0;
        // @kernel: gather_range_pages
        if (gather !== null) iommuIotlbGatherAddRange(gather, iovaPfn * SZ_4K, SZ_4K);
        return SZ_4K;
      }
    }
    return this.unmapPages(iovaPfn * SZ_4K, pgsize, pgcount, gather);
  }

  /**
   * __map_single_page in int32: writes the level-0 leaf if every level above
   * is a table and the entry is empty; false having changed nothing.
   */
  // @kernel: __map_single_page
  private map4kOne(ihi: number, ilo: number, phi: number, plo: number, prot: number): boolean {
    const attr = (prot & IOMMU_READ ? VTDSS_FMT_R : 0) | (prot & IOMMU_WRITE ? VTDSS_FMT_W : 0);
    if (attr === 0) return false;
    const p = this.slot4k(ihi, ilo);
    if (p < 0) return false;
    const w = this.pool.i32;
    if ((w[p]! | w[p + 1]!) !== 0) return false;
    // @kernel: pt_install_leaf_entry
    w[p] = attr | (plo & OA_LO_I);
    w[p + 1] = phi & VTDSS_FMT_OA_HI;
    return true;
  }

  /** Word offset of iova's level-0 entry through existing tables (non-zero entries without PS); -1 otherwise. */
  private slot4k(ihi: number, ilo: number): number {
    const w = this.pool.i32;
    const base = this.baseLoI;
    let p = this.top;
    let lo: number;
    if (this.topLevel === 3) {
      p += ((ihi >>> 7) & this.topMask) << 1;
      lo = w[p]!;
      if ((lo | w[p + 1]!) === 0 || (lo & VTDSS_FMT_PS) !== 0) return -1;
      p = (((lo & OA_LO_I) - base) >>> 2) + ((((ihi << 2) | (ilo >>> 30)) & (ENTRIES - 1)) << 1);
    } else {
      p += (((ihi << 2) | (ilo >>> 30)) & this.topMask) << 1;
    }
    lo = w[p]!;
    if ((lo | w[p + 1]!) === 0 || (lo & VTDSS_FMT_PS) !== 0) return -1;
    p = (((lo & OA_LO_I) - base) >>> 2) + (((ilo >>> 21) & (ENTRIES - 1)) << 1);
    lo = w[p]!;
    if ((lo | w[p + 1]!) === 0 || (lo & VTDSS_FMT_PS) !== 0) return -1;
    return (((lo & OA_LO_I) - base) >>> 2) + (((ilo >>> 12) & (ENTRIES - 1)) << 1);
  }

  /** map_pages for every call the one-page fast path does not take. */
  // @kernel: map_pages
  private mapPagesGeneral(iova: number, paddr: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError {
    if (!(prot & (IOMMU_READ | IOMMU_WRITE))) {
      this.report("bad-prot", iova, "map_pages: prot has neither IOMMU_READ nor IOMMU_WRITE");
      return kerr("EINVAL", "prot has neither IOMMU_READ nor IOMMU_WRITE: a VT-d entry without R or W is not present");
    }
    if (!(paddr >= 0 && paddr < this.oasLimit)) return kerr("ERANGE", `paddr ${hex(paddr)} exceeds the ${this.cfg.oas}-bit output size`);
    // @kernel: vtdss_pt_iommu_set_prot
    this.attrLo = (prot & IOMMU_READ ? VTDSS_FMT_R : 0) | (prot & IOMMU_WRITE ? VTDSS_FMT_W : 0);
    const len = pgsize * pgcount;
    if (!(len > 0)) return kerr("EINVAL", "map of zero length");
    const last = iova + len - 1;
    const single = pgsize === SZ_4K && pgcount === 1;
    let leafSize: number;
    if (single) {
      if (!multipleOf(iova, SZ_4K) || !multipleOf(paddr, SZ_4K)) return kerr("ENXIO", `iova ${hex(iova)} or paddr ${hex(paddr)} is not 4K aligned`);
      leafSize = SZ_4K;
    } else {
      leafSize = this.computeBestPgsize(iova, len, paddr);
      if (leafSize === 0) return kerr("ENXIO", `no page size of ${hex(this.cfg.pgsizeBitmap)} fits iova ${hex(iova)}, paddr ${hex(paddr)}, length ${hex(len)}`);
    }
    // @kernel: pt_check_range
    if (!(iova >= 0 && last < this.iasLimit)) return kerr("ERANGE", `[${hex(iova)}, ${hex(last)}] is outside the ${this.cfg.ias}-bit table`);

    this.leafLevel = leafSize === SZ_4K ? 0 : leafSize === SZ_2M ? 1 : 2;
    this.oa = paddr;
    iommuIotlbGatherInit(this.mapGather);
    let ret = single ? this.mapSinglePage(iova) : STOP;
    if (ret === STOP) ret = this.mapRange(this.topLevel, this.top, iova, last);
    // Table levels were replaced by large leaves: flush walk caches before freeing them.
    if (this.mapGather.freelist.length > 0) {
      this.tlb.tlbFlushWalk(this.mapGather.start, this.mapGather.end - this.mapGather.start + 1, SZ_4K);
      this.mapGather.freelist.put();
    }
    const done = this.oa - paddr;
    if (ret === OK && done !== len) this.report("map-overrun", iova, `map_pages: installed ${hex(done)} bytes for a ${hex(len)}-byte request`);
    // A whole number in the small-integer range is added as one: the out-parameter object is shared with every format, and a double stored there once makes V8 keep its field as a boxed double.
    mapped.bytes += done <= 0x7fffffff ? done | 0 : done;
    if (ret === EADDRINUSE) return kerr("EADDRINUSE", `something is already mapped in [${hex(iova)}, ${hex(last)}]`);
    if (ret === ENOMEM) {
      // @kernel: pt_iommu_new_table (-ENOMEM; the tables above, and the leaves before, stay)
      this.report("table-alloc-failed", iova, `map_pages: no page-table memory left for a table below ${hex(this.oa)} (the budget of ${this.pool.memory.limit} bytes is spent)`);
      return kerr("ENOMEM", `no page-table memory left to map [${hex(iova)}, ${hex(last)}]: the page-table memory limit of ${this.pool.memory.limit} bytes is reached`);
    }
    return 0;
  }

  // @kernel: unmap_pages
  unmapPages(iova: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number {
    if (pgsize === SZ_4K && pgcount === 1 && this.fast && iova >= 0 && iova + SZ_4K <= this.iasLimit) {
      const ihi = (iova * TWO_NEG_32) | 0;
      const ilo = iova | 0;
      if (ihi * TWO_32 + (ilo >>> 0) === iova && (ilo & (SZ_4K - 1)) === 0) {
        const p = this.slot4k(ihi, ilo);
        const w = this.pool.i32;
        // @kernel: __unmap_range
        if (p >= 0 && (w[p]! | w[p + 1]!) !== 0) {
          w[p] = 0;
          w[p + 1] = 0;
          // @kernel: gather_range_pages
          if (gather !== null) iommuIotlbGatherAddRange(gather, iova, SZ_4K);
          return SZ_4K;
        }
      }
    }
    return this.unmapPagesGeneral(iova, pgsize, pgcount, gather);
  }

  /** unmap_pages for every call the one-page fast path does not take. */
  // @kernel: unmap_pages
  private unmapPagesGeneral(iova: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number {
    const len = pgsize * pgcount;
    if (!(len > 0)) return 0;
    const last = iova + len - 1;
    if (!(iova >= 0 && last < this.iasLimit)) return 0;
    this.unmapped = 0;
    const freelist = gather !== null ? gather.freelist : this.mapGather.freelist;
    const before = freelist.length;
    this.unmapRange(this.topLevel, this.top, iova, last, freelist);
    // @kernel: gather_range_pages
    if (gather !== null) {
      iommuIotlbGatherAddRange(gather, iova, len);
    } else if (freelist.length > before) {
      // No gather to defer to: flush the walk caches now, then free.
      this.tlb.tlbFlushWalk(iova, len, SZ_4K);
      freelist.put();
    }
    return this.unmapped;
  }

  // @kernel: iova_to_phys
  iovaToPhys(iova: number): number {
    if (!(iova >= 0 && iova < this.iasLimit)) return this.iovaToPhysErange(iova);
    const ilo = iova | 0;
    const p = this.walkLeaf((iova * TWO_NEG_32) | 0, ilo);
    if (p < 0) return 0;
    const w = this.pool.i32;
    return (w[p + 1]! & VTDSS_FMT_OA_HI) * TWO_32 + ((w[p]! & OA_LO_I) >>> 0) + (ilo & this.leafOffMask);
  }

  /**
   * The permissions the walk for iova grants (IoPgtableOps.iovaProt). VT-d
   * second-stage R and W apply at every level: a table entry without R or W
   * withholds it from its whole range, so the walk ANDs them (the model's
   * table entries carry both, so the leaf decides). Nothing else is decoded:
   * the model's entries hold no attribute but R and W.
   */
  // @kernel: vtdss_pt_iommu_set_prot
  iovaProt(iova: number): number {
    if (!(iova >= 0 && iova < this.iasLimit)) return 0;
    const wd = PROT_WALK;
    const leaf = this.pgtableWalk(iova, wd);
    if (leaf < 0) return 0;
    let rw = VTDSS_FMT_R | VTDSS_FMT_W;
    for (let l = this.topLevel; l >= leaf; l--) rw &= wd.lo[l]!;
    return (rw & VTDSS_FMT_R ? IOMMU_READ : 0) | (rw & VTDSS_FMT_W ? IOMMU_WRITE : 0);
  }

  private iovaToPhysErange(iova: number): number {
    this.report("iova-to-phys-erange", iova, `iova_to_phys: iova ${hex(iova)} outside the table; the kernel returns (phys_addr_t)-ERANGE, the model 0`);
    return 0;
  }

  /**
   * iova_to_phys's walk in int32 on the halves of an iova within the table,
   * level by level: the word offset of the leaf translating it, with
   * `leafOffMask` set to the offset mask inside that leaf, or -1 at an empty
   * entry. Level 3 holds tables only, whatever its PS bit says.
   */
  // @kernel: iova_to_phys
  private walkLeaf(ihi: number, ilo: number): number {
    const w = this.pool.i32;
    const base = this.baseLoI;
    let p = this.top;
    let lo: number;
    if (this.topLevel === 3) {
      p += ((ihi >>> 7) & this.topMask) << 1;
      lo = w[p]!;
      if ((lo | w[p + 1]!) === 0) return -1;
      p = (((lo & OA_LO_I) - base) >>> 2) + ((((ihi << 2) | (ilo >>> 30)) & (ENTRIES - 1)) << 1);
    } else {
      p += (((ihi << 2) | (ilo >>> 30)) & this.topMask) << 1;
    }
    lo = w[p]!;
    if ((lo | w[p + 1]!) === 0) return -1;
    if ((lo & VTDSS_FMT_PS) !== 0) return this.leafAt(p, SZ_1G - 1);
    p = (((lo & OA_LO_I) - base) >>> 2) + (((ilo >>> 21) & (ENTRIES - 1)) << 1);
    lo = w[p]!;
    if ((lo | w[p + 1]!) === 0) return -1;
    if ((lo & VTDSS_FMT_PS) !== 0) return this.leafAt(p, SZ_2M - 1);
    p = (((lo & OA_LO_I) - base) >>> 2) + (((ilo >>> 12) & (ENTRIES - 1)) << 1);
    if ((w[p]! | w[p + 1]!) === 0) return -1;
    return this.leafAt(p, SZ_4K - 1);
  }

  private leafAt(p: number, offMask: number): number {
    this.leafOffMask = offMask;
    return p;
  }

  pgtableWalk(iova: number, wd: PgtableWalkData): number {
    const w = this.pool.words;
    let tbl = this.top;
    for (let l = this.topLevel; l >= 0; l--) {
      const p = tbl + 2 * this.index(iova, l);
      wd.lo[l] = w[p]!;
      wd.hi[l] = w[p + 1]!;
      if ((w[p]! | w[p + 1]!) === 0) return -1;
      if (this.isLeaf(w[p]!, l)) return l;
      tbl = this.tableOff(w[p]!, w[p + 1]!);
    }
    return -1;
  }

  // @kernel: deinit
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.freeTables(this.topLevel, this.top);
    this.pool.free(this.top, 1, VTDSS_TABLE_BYTES);
    this.pool.release();
  }

  /** Largest bitmap size that divides iova and paddr and fits in len. */
  // @kernel: pt_compute_best_pgsize
  private computeBestPgsize(iova: number, len: number, paddr: number): number {
    for (const sz of this.sizesDesc) if (sz <= len && multipleOf(iova, sz) && multipleOf(paddr, sz)) return sz;
    return 0;
  }

  private index(va: number, level: number): number {
    return ((va * this.inv[level]!) >>> 0) & (level === this.topLevel ? this.topMask : ENTRIES - 1);
  }

  private entryOa(lo: number, hi: number): number {
    return (hi & VTDSS_FMT_OA_HI) * TWO_32 + ((lo & VTDSS_FMT_OA_LO) >>> 0);
  }

  private tableOff(lo: number, hi: number): number {
    return (this.entryOa(lo, hi) - this.pool.base) / 4;
  }

  private isLeaf(lo: number, level: number): boolean {
    return level === 0 || (level <= 2 && (lo & VTDSS_FMT_PS) !== 0);
  }

  // @kernel: pt_install_leaf_entry
  private installLeaf(p: number, level: number): void {
    const w = this.pool.words;
    w[p] = this.attrLo | (level !== 0 ? VTDSS_FMT_PS : 0) | ((this.oa >>> 0) & VTDSS_FMT_OA_LO);
    w[p + 1] = ((this.oa / TWO_32) >>> 0) & VTDSS_FMT_OA_HI;
    this.oa += itemSize(level);
  }

  // @kernel: vtdss_pt_install_table
  private newTable(p: number): number {
    const t = this.pool.alloc(1, VTDSS_TABLE_BYTES);
    // No memory: the entry stays empty (ENOMEM).
    if (t < 0) return -1;
    const pa = this.pool.physOf(t);
    const w = this.pool.words;
    w[p] = VTDSS_FMT_R | VTDSS_FMT_W | ((pa >>> 0) & VTDSS_FMT_OA_LO);
    w[p + 1] = ((pa / TWO_32) >>> 0) & VTDSS_FMT_OA_HI;
    return t;
  }

  /** The 4K, one-page fast path: only through existing tables; STOP means "use the full walk". */
  // @kernel: __map_single_page
  private mapSinglePage(iova: number): number {
    const w = this.pool.words;
    let tbl = this.top;
    for (let l = this.topLevel; l > 0; l--) {
      const p = tbl + 2 * this.index(iova, l);
      const lo = w[p]!;
      const hi = w[p + 1]!;
      if ((lo | hi) === 0 || (lo & VTDSS_FMT_PS) !== 0) return STOP;
      tbl = this.tableOff(lo, hi);
    }
    const p = tbl + 2 * this.index(iova, 0);
    if ((w[p]! | w[p + 1]!) !== 0) return EADDRINUSE;
    this.installLeaf(p, 0);
    return OK;
  }

  /** Map [va, last] (within this table) with leaves at this.leafLevel. */
  // @kernel: __map_range
  private mapRange(level: number, tbl: number, va: number, last: number): number {
    const item = itemSize(level);
    const end = this.index(last, level) + 1;
    let entStart = va - modPow2(va, item);
    if (level === this.leafLevel) {
      // @kernel: __map_range_leaf
      // installLeaf for each entry, with the output address in a local (this.oa is written back on the way out).
      const attr = this.attrLo | (level !== 0 ? VTDSS_FMT_PS : 0);
      let oa = this.oa;
      for (let i = this.index(va, level); i < end; i++, entStart += item) {
        const p = tbl + 2 * i;
        const w = this.pool.i32;
        if ((w[p]! | w[p + 1]!) !== 0) {
          this.oa = oa;
          const r = this.clearContig(level, p, entStart);
          if (r !== OK) return r;
        }
        // @kernel: pt_install_leaf_entry
        w[p] = attr | ((oa >>> 0) & OA_LO_I);
        w[p + 1] = ((oa * TWO_NEG_32) >>> 0) & VTDSS_FMT_OA_HI;
        oa += item;
      }
      this.oa = oa;
      return OK;
    }
    for (let i = this.index(va, level); i < end; i++, entStart += item) {
      const p = tbl + 2 * i;
      const lo = this.pool.words[p]!;
      const hi = this.pool.words[p + 1]!;
      let child: number;
      if ((lo | hi) === 0) {
        child = this.newTable(p);
        if (child < 0) return ENOMEM;
      } else if (this.isLeaf(lo, level)) return EADDRINUSE;
      else child = this.tableOff(lo, hi);
      const r = this.mapRange(level - 1, child, Math.max(va, entStart), Math.min(last, entStart + item - 1));
      if (r !== OK) return r;
    }
    return OK;
  }

  /**
   * A leaf goes where an entry exists: a leaf is EADDRINUSE; a table may be
   * replaced only if nothing below it is mapped, and is then freed through
   * map_pages' gather.
   */
  // @kernel: clear_contig
  private clearContig(level: number, p: number, entStart: number): number {
    const w = this.pool.words;
    const lo = w[p]!;
    if (this.isLeaf(lo, level)) return EADDRINUSE;
    const child = this.tableOff(lo, w[p + 1]!);
    // @kernel: __collect_tables
    if (this.anyLeafBelow(level - 1, child)) return EADDRINUSE;
    w[p] = 0;
    w[p + 1] = 0;
    this.collectTables(level - 1, child, this.mapGather.freelist);
    iommuIotlbGatherAddRange(this.mapGather, entStart, itemSize(level));
    return OK;
  }

  /** Unmap [va, last] (within this table); adds to this.unmapped. */
  // @kernel: __unmap_range
  private unmapRange(level: number, tbl: number, va: number, last: number, freelist: IommuPagesList): number {
    const w = this.pool.words;
    const item = itemSize(level);
    const first = this.index(va, level);
    const end = this.index(last, level) + 1;
    // Starting inside a large entry: unmap nothing more.
    if ((w[tbl + 2 * first]! | w[tbl + 2 * first + 1]!) !== 0 && this.isLeaf(w[tbl + 2 * first]!, level) && !multipleOf(va, item)) return STOP;
    if (level === 0) {
      // Every entry at level 0 is a leaf: clear up to the first hole.
      const w32 = this.pool.i32;
      let p = tbl + 2 * first;
      const stop = tbl + 2 * end;
      for (; p < stop && (w32[p]! | w32[p + 1]!) !== 0; p += 2) {
        w32[p] = 0;
        w32[p + 1] = 0;
      }
      this.unmapped += ((p - tbl) / 2 - first) * SZ_4K;
      return p < stop ? STOP : OK;
    }
    let num = 0;
    let ret = OK;
    let entStart = va - modPow2(va, item);
    for (let i = first; i < end; i++, entStart += item) {
      const p = tbl + 2 * i;
      const lo = w[p]!;
      const hi = w[p + 1]!;
      if ((lo | hi) === 0) {
        ret = STOP;
        break;
      }
      if (this.isLeaf(lo, level)) {
        // Ending inside the entry removes all of it.
        w[p] = 0;
        w[p + 1] = 0;
        num++;
        continue;
      }
      const entVa = i === first ? va : entStart;
      const fullyCovered = entVa === entStart && last >= entStart + item - 1;
      const child = this.tableOff(lo, hi);
      ret = this.unmapRange(level - 1, child, entVa, Math.min(last, entStart + item - 1), freelist);
      if (ret !== OK) break;
      if (fullyCovered) {
        freelist.add(this.pool, child, VTDSS_TABLE_BYTES);
        w[p] = 0;
        w[p + 1] = 0;
      }
    }
    this.unmapped += num * item;
    return ret;
  }

  /** Whether any leaf is mapped under the table at tbl (level `level`). */
  private anyLeafBelow(level: number, tbl: number): boolean {
    const w = this.pool.words;
    for (let i = 0; i < ENTRIES; i++) {
      const lo = w[tbl + 2 * i]!;
      const hi = w[tbl + 2 * i + 1]!;
      if ((lo | hi) === 0) continue;
      if (this.isLeaf(lo, level) || this.anyLeafBelow(level - 1, this.tableOff(lo, hi))) return true;
    }
    return false;
  }

  /** Put the table at tbl and every table below it on freelist. */
  private collectTables(level: number, tbl: number, freelist: IommuPagesList): void {
    if (level > 0) {
      const w = this.pool.words;
      for (let i = 0; i < ENTRIES; i++) {
        const lo = w[tbl + 2 * i]!;
        const hi = w[tbl + 2 * i + 1]!;
        if ((lo | hi) !== 0 && !this.isLeaf(lo, level)) this.collectTables(level - 1, this.tableOff(lo, hi), freelist);
      }
    }
    freelist.add(this.pool, tbl, VTDSS_TABLE_BYTES);
  }

  leafBytes(): number {
    return this.freed ? 0 : this.leafBytesUnder(this.topLevel, this.top);
  }

  /** Bytes the leaves under the table at tbl (level `level`) map: a level-l leaf maps 4 KiB << 9l. */
  private leafBytesUnder(level: number, tbl: number): number {
    const w = this.pool.words;
    let bytes = 0;
    for (let i = 0; i < ENTRIES; i++) {
      const lo = w[tbl + 2 * i]!;
      const hi = w[tbl + 2 * i + 1]!;
      if ((lo | hi) === 0) continue;
      if (this.isLeaf(lo, level)) bytes += SZ_4K * 2 ** (9 * level);
      else bytes += this.leafBytesUnder(level - 1, this.tableOff(lo, hi));
    }
    return bytes;
  }

  /** Free every table below the table at tbl (not tbl itself). */
  private freeTables(level: number, tbl: number): void {
    if (level === 0) return;
    const w = this.pool.words;
    for (let i = 0; i < ENTRIES; i++) {
      const lo = w[tbl + 2 * i]!;
      const hi = w[tbl + 2 * i + 1]!;
      if ((lo | hi) === 0 || this.isLeaf(lo, level)) continue;
      const child = this.tableOff(lo, hi);
      this.freeTables(level - 1, child);
      this.pool.free(child, 1, VTDSS_TABLE_BYTES);
    }
  }

  private report(kind: PgtableFindingKind, iova: number, message: string): void {
    if (this.onFinding !== null) this.onFinding(kind, iova, message);
  }
}
