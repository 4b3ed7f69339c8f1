/**
 * io-pgtable-arm: Arm LPAE stage-1 and stage-2 tables (ARM_64_LPAE_S1/S2).
 *
 * Semantics follow drivers/iommu/io-pgtable-arm.c after the 2025 rework
 * (no split on unmap, map_pages/unmap_pages batching):
 *  - map_pages writes at most one table's worth of entries per call and
 *    reports the bytes through `mapped`; the core loops;
 *  - an existing leaf is -EEXIST, but an existing *table* under a block is
 *    torn down (live leaves included) with tlb_flush_walk and no gather;
 *  - unmap_pages of part of a block returns 0 and keeps the block;
 *  - an empty entry on the unmap walk makes the kernel return -ENOENT through
 *    size_t; the model returns 0 and reports "unmap-enoent";
 *  - tables emptied by unmap are kept; an unmap at a size covering a table
 *    frees that subtree with tlb_flush_walk.
 * The walker is always the model's own, so coherent_walk only changes the
 * TCR attributes and the SW_SYNC bit on table descriptors.
 */
import { isErr, kerr, type KError } from "../lib/errno.ts";
import type { IommuIotlbGather } from "./gather.ts";
import {
  ARM_LPAE_MAX_LEVELS,
  armLpaeBlockSize,
  armLpaeConcatMandatory,
  armLpaeConcatenate,
  armLpaeGeometry,
  armLpaeLvlIdxBits,
  armLpaeLvlShift,
  armLpaeRestrictPgsizes,
  type ArmLpaeGeometry,
} from "./lpae-geometry.ts";
import {
  ARM_LPAE_MAIR,
  ARM_LPAE_PTE_ADDR_MASK_HI,
  ARM_LPAE_PTE_ADDR_MASK_LO,
  ARM_LPAE_PTE_NSTABLE_HI,
  ARM_LPAE_PTE_SW_SYNC_HI,
  ARM_LPAE_PTE_TYPE_BLOCK,
  ARM_LPAE_PTE_TYPE_MASK,
  ARM_LPAE_PTE_TYPE_PAGE,
  ARM_LPAE_PTE_TYPE_TABLE,
  armLpaeProtToPte,
  armLpaePteToProt,
  iopteLeaf,
  iopteTable,
  iopteToPaddr,
  paddrToIopteHi,
  paddrToIopteLo,
} from "./lpae-pte.ts";
import { TABLE_POOL_DEFAULT_BASE, TablePool } from "./pool.ts";
import { SZ_16K, SZ_1G, SZ_2M, SZ_4K, SZ_64K, bitmapCovers, hex, pgsizesOf } from "./sizes.ts";
import {
  IOMMU_READ,
  IOMMU_WRITE,
  IO_PGTABLE_QUIRK_ARM_HD,
  IO_PGTABLE_QUIRK_ARM_NS,
  IO_PGTABLE_QUIRK_ARM_OUTER_WBWA,
  IO_PGTABLE_QUIRK_ARM_S2FWB,
  IO_PGTABLE_QUIRK_ARM_TTBR1,
  IO_PGTABLE_QUIRK_NO_WARN,
  NOOP_FLUSH_OPS,
  newPgtableWalkData,
  type ArmLpaeS1Cfg,
  type ArmLpaeS2Cfg,
  type IoPgtableCfg,
  type IoPgtableCfgInit,
  type IoPgtableOps,
  type IommuFlushOps,
  type MappedBytes,
  type PgtableFindingHandler,
  type PgtableFindingKind,
  type PgtableWalkData,
} from "./types.ts";

export type ArmLpaeFmt = "ARM_64_LPAE_S1" | "ARM_64_LPAE_S2";

/* TCR/VTCR field encodings (io-pgtable-arm.h). */
/** walkAlloc: the tables the walk needs do not fit in the pool's memory budget (blocks in the way are -1 - level, -4 at most). */
const WALK_NOMEM = -100;

const ARM_LPAE_TCR_SH_OS = 2;
const ARM_LPAE_TCR_SH_IS = 3;
const ARM_LPAE_TCR_RGN_NC = 0;
const ARM_LPAE_TCR_RGN_WBWA = 1;
const ARM_LPAE_TCR_TG0: Readonly<Record<number, number>> = { [SZ_4K]: 0, [SZ_64K]: 1, [SZ_16K]: 2 };
const ARM_LPAE_TCR_PS: Readonly<Record<number, number>> = { 32: 0, 36: 1, 40: 2, 42: 3, 44: 4, 48: 5, 52: 6 };
const ARM_LPAE_VTCR_SL0_MASK = 0x3;

const S1_QUIRKS = IO_PGTABLE_QUIRK_ARM_NS | IO_PGTABLE_QUIRK_ARM_TTBR1 | IO_PGTABLE_QUIRK_ARM_OUTER_WBWA | IO_PGTABLE_QUIRK_ARM_HD | IO_PGTABLE_QUIRK_NO_WARN;
const S2_QUIRKS = IO_PGTABLE_QUIRK_ARM_S2FWB | IO_PGTABLE_QUIRK_NO_WARN;

/** An Arm LPAE table: the common ops plus its geometry and the raw walk. */
export interface ArmLpaeIoPgtable extends IoPgtableOps {
  readonly fmt: ArmLpaeFmt;
  readonly geometry: ArmLpaeGeometry;
  /**
   * Record the descriptor at each level (Arm numbering, 0..3) the walk for
   * iova visits; returns the level of the leaf found, or -1 when the walk met
   * an empty entry.
   */
  pgtableWalk(iova: number, wd: PgtableWalkData): number;
}

/** The walk geometry of a format for restricted sizes: stage 2 concatenates its pgd where it must. */
function armLpaeFmtGeometry(fmt: ArmLpaeFmt, r: ReturnType<typeof armLpaeRestrictPgsizes>): ArmLpaeGeometry | KError {
  const g = armLpaeGeometry(r);
  if (isErr(g)) return g;
  // @kernel: arm_64_lpae_alloc_pgtable_s2
  if (fmt === "ARM_64_LPAE_S2" && armLpaeConcatMandatory(g, r.ias, r.oas)) return armLpaeConcatenate(g);
  return g;
}

/**
 * The pgd a table of this configuration starts with, as tablePages() and
 * tableBytes() count it: one allocation of pgdAllocBytes (concatenated
 * stage-2 pgds included). For a domain whose table is not built yet.
 */
export function armLpaePgdFootprint(fmt: ArmLpaeFmt, init: IoPgtableCfgInit): { pages: number; bytes: number } | KError {
  const g = armLpaeFmtGeometry(fmt, armLpaeRestrictPgsizes(init.pgsizeBitmap, init.ias, init.oas));
  if (isErr(g)) return g;
  return { pages: 1, bytes: g.pgdAllocBytes };
}

/**
 * Allocate an ARM_64_LPAE_S1 or _S2 table, or say why the configuration is
 * impossible. The returned ops carry the rewritten cfg.
 */
// @kernel: arm_64_lpae_alloc_pgtable_s1
// @kernel: arm_64_lpae_alloc_pgtable_s2
export function allocArmLpaePgtable(fmt: ArmLpaeFmt, init: IoPgtableCfgInit): ArmLpaeIoPgtable | KError {
  const quirks = init.quirks ?? 0;
  const coherentWalk = init.coherentWalk ?? true;
  const s1 = fmt === "ARM_64_LPAE_S1";
  const allowed = s1 ? S1_QUIRKS : S2_QUIRKS;
  if (quirks & ~allowed) return kerr("EINVAL", `quirks ${hex(quirks & ~allowed)} are not supported by ${fmt}`);
  // TTBR1 tables map the upper half of a 64-bit VA space, which JS numbers cannot represent exactly.
  if (quirks & IO_PGTABLE_QUIRK_ARM_TTBR1) return kerr("EINVAL", "IO_PGTABLE_QUIRK_ARM_TTBR1 is not modelled: upper-half VAs do not fit in a JS number");

  const r = armLpaeRestrictPgsizes(init.pgsizeBitmap, init.ias, init.oas);
  const g = armLpaeFmtGeometry(fmt, r);
  if (isErr(g)) return g;
  const ps = ARM_LPAE_TCR_PS[r.oas];
  if (ps === undefined) return kerr("EINVAL", `oas ${r.oas} has no TCR.IPS/VTCR.PS encoding (32, 36, 40, 42, 44, 48 or 52)`);
  if (s1 && coherentWalk && quirks & IO_PGTABLE_QUIRK_ARM_OUTER_WBWA) {
    return kerr("EINVAL", "IO_PGTABLE_QUIRK_ARM_OUTER_WBWA only applies to a non-coherent walker");
  }

  const tableBase = init.tableBase ?? TABLE_POOL_DEFAULT_BASE;
  const pool = new TablePool(g.granule, tableBase, 4, init.memory);
  const pgd = pool.alloc(Math.max(1, g.pgdAllocBytes / g.granule), g.pgdAllocBytes);
  if (pgd < 0) {
    pool.release();
    return kerr("ENOMEM", `no page-table memory left for a ${g.pgdAllocBytes}-byte pgd (the budget of ${pool.memory.limit} bytes is spent)`);
  }
  const pgdPhys = pool.physOf(pgd);
  const sh = coherentWalk ? ARM_LPAE_TCR_SH_IS : ARM_LPAE_TCR_SH_OS;
  const irgn = coherentWalk ? ARM_LPAE_TCR_RGN_WBWA : ARM_LPAE_TCR_RGN_NC;
  const tg = ARM_LPAE_TCR_TG0[g.granule]!;
  const tsz = 64 - r.ias;
  const common = {
    quirks,
    pgsizeBitmap: r.pgsizeBitmap,
    ias: r.ias,
    oas: r.oas,
    coherentWalk,
    tlb: init.tlb ?? NOOP_FLUSH_OPS,
    onFinding: init.onFinding ?? null,
    tableBase,
  };
  let cfg: IoPgtableCfg;
  if (s1) {
    const orgn = coherentWalk || quirks & IO_PGTABLE_QUIRK_ARM_OUTER_WBWA ? ARM_LPAE_TCR_RGN_WBWA : ARM_LPAE_TCR_RGN_NC;
    const armLpaeS1Cfg: ArmLpaeS1Cfg = { ttbr: pgdPhys, tcr: { sh, irgn, orgn, tg, ips: ps, tsz }, mair: ARM_LPAE_MAIR };
    cfg = { ...common, armLpaeS1Cfg };
  } else {
    // The 4K granule encodes SL0 one step differently.
    const sl = ~(g.startLevel + (g.granule === SZ_4K ? 1 : 0)) & ARM_LPAE_VTCR_SL0_MASK;
    const armLpaeS2Cfg: ArmLpaeS2Cfg = { vttbr: pgdPhys, vtcr: { sh, irgn, orgn: irgn, tg, ps, tsz, sl } };
    cfg = { ...common, armLpaeS2Cfg };
  }
  return new ArmLpaePgtable(fmt, cfg, g, pool, pgd);
}

/**
 * Tests: make ops take the general code for everything, so that its results
 * can be compared with the 4K-granule fast paths'.
 */
export function armLpaeGeneralPathsOnly(ops: ArmLpaeIoPgtable): void {
  if (ops instanceof ArmLpaePgtable) ops.useGeneralPathsOnly();
}

/*
 * Hot-path copies of the descriptor constants (lpae-pte.ts is their home).
 * The walkers below decode descriptors with inline expressions on these
 * rather than calling the lpae-pte.ts helpers: measured faster in V8, where
 * each walk step is only a handful of loads. The cold paths use the helpers.
 */
const TYPE_MASK = ARM_LPAE_PTE_TYPE_MASK;
const TYPE_BLOCK = ARM_LPAE_PTE_TYPE_BLOCK;
/** Also ARM_LPAE_PTE_TYPE_PAGE at level 3. */
const TYPE_TABLE = ARM_LPAE_PTE_TYPE_TABLE;
const ADDR_LO = ARM_LPAE_PTE_ADDR_MASK_LO;
const ADDR_HI = ARM_LPAE_PTE_ADDR_MASK_HI;
const TWO_32 = 4294967296;
const TWO_NEG_32 = 2 ** -32;
/* The same masks as int32 values, for the 4K-granule fast paths. */
const ADDR_LO_I = ADDR_LO | 0;
const TYPE_PAGE = ARM_LPAE_PTE_TYPE_PAGE;

/** iovaProt's walk record (one model thread: shared by every table). */
const PROT_WALK = newPgtableWalkData();

class ArmLpaePgtable implements ArmLpaeIoPgtable {
  /*
   * Fields are `declare`d so that the constructor's first store fixes their
   * type; a class-field declaration would first store undefined and leave V8
   * unsure of every field's type on the hot paths.
   */
  declare readonly fmt: ArmLpaeFmt;
  declare readonly cfg: IoPgtableCfg;
  declare readonly geometry: ArmLpaeGeometry;

  declare private readonly pool: TablePool;
  /** The pool's memory; refreshed after every allocation, which may grow (replace) it. */
  declare private words: Uint32Array;
  declare private readonly pgd: number;
  declare private readonly startLevel: number;
  declare private readonly granule: number;
  /** Granule is 64K: addresses may use bits 51:48, packed in PTE bits 15:12; hot paths defer to the general code. */
  declare private readonly pa52: boolean;
  declare private readonly baseLo: number;
  declare private readonly iasLimit: number;
  declare private readonly oasLimit: number;
  declare private readonly noWarn: boolean;
  declare private readonly tlb: IommuFlushOps;
  declare private readonly onFinding: PgtableFindingHandler | null;
  /** 2^-shift per level: `(iova * inv[l]) >>> 0` is floor(iova >> shift) mod 2^32, exactly. */
  declare private readonly inv: Float64Array;
  declare private readonly idxMask: Int32Array;
  declare private readonly blk: Float64Array;
  /** blk[l] - 1 where that fits in 31 bits (every leaf size but 4T), else 0. */
  declare private readonly blkLowMask: Int32Array;
  /** Type field of a leaf at each level: page (3) at level 3, block (1) above. */
  declare private readonly leafType: Int32Array;
  /** blk[l] if that size is in the bitmap and level l is walked, else -1. */
  declare private readonly leafPgsize: Float64Array;
  /**
   * Low attribute word of a leaf, type included, for (level << 6) | (prot & 63):
   * 0 where the level maps no bitmap size or prot has neither READ nor WRITE.
   */
  declare private readonly leafAttrLo: Int32Array;
  /** Leaf attribute words for each prot value (prot & 63), without type or address. */
  declare private readonly protLo: Uint32Array;
  declare private readonly protHi: Uint32Array;
  declare private readonly ptesPerTable: number;
  declare private readonly pgdEntries: number;
  declare private readonly tableHiBits: number;
  /** Low-word mask of a table address: with the 64K granule bits 15:12 hold PA[51:48]. */
  declare private readonly tableAddrMaskLo: number;
  declare private freed: boolean;
  /*
   * The 4K-granule fast paths (map4kOne, mapPages4k, unmap4kOne,
   * unmapPages4k, walk4k) take addresses split into 32-bit halves and walk
   * in int32 arithmetic on `i32`, level by level with constant shifts;
   * anything unusual goes to the general code.
   */
  /** 4K granule starting at level 0 or 1: the fast paths apply. */
  declare private fast4k: boolean;
  /** The pool's memory as int32 words; refreshed with `words`. */
  declare private i32: Int32Array;
  /** The low word of the pool base as an int32. */
  declare private readonly baseLoI: number;
  /** pgd entries - 1. */
  declare private readonly pgdMask: number;
  /** iasLimit and oasLimit in 4K frames. */
  declare private readonly iasPfnLimit: number;
  declare private readonly oasPfnLimit: number;
  /** Offset mask of the leaf walk4k found last. */
  declare private leafOffMask: number;
  /** Bit l set when level l maps leaves of a bitmap size (leafPgsize[l] >= 0). */
  declare private readonly leafLevels: number;

  constructor(fmt: ArmLpaeFmt, cfg: IoPgtableCfg, g: ArmLpaeGeometry, pool: TablePool, pgd: number) {
    this.fmt = fmt;
    this.cfg = cfg;
    this.geometry = g;
    this.pool = pool;
    this.words = pool.words;
    this.pgd = pgd;
    this.startLevel = g.startLevel;
    this.granule = g.granule;
    this.pa52 = g.granule === SZ_64K;
    this.baseLo = pool.baseLo;
    this.iasLimit = 2 ** cfg.ias;
    this.oasLimit = 2 ** cfg.oas;
    this.noWarn = (cfg.quirks & IO_PGTABLE_QUIRK_NO_WARN) !== 0;
    this.tlb = cfg.tlb;
    this.onFinding = cfg.onFinding;
    this.inv = new Float64Array(ARM_LPAE_MAX_LEVELS);
    this.idxMask = new Int32Array(ARM_LPAE_MAX_LEVELS);
    this.blk = new Float64Array(ARM_LPAE_MAX_LEVELS);
    this.blkLowMask = new Int32Array(ARM_LPAE_MAX_LEVELS);
    this.leafType = new Int32Array(ARM_LPAE_MAX_LEVELS);
    this.leafPgsize = new Float64Array(ARM_LPAE_MAX_LEVELS);
    const sizes = pgsizesOf(cfg.pgsizeBitmap);
    for (let l = 0; l < ARM_LPAE_MAX_LEVELS; l++) {
      this.inv[l] = 2 ** -armLpaeLvlShift(g, l);
      this.idxMask[l] = 2 ** armLpaeLvlIdxBits(g, l) - 1;
      this.blk[l] = armLpaeBlockSize(g, l);
      this.blkLowMask[l] = this.blk[l]! <= 2 ** 31 ? this.blk[l]! - 1 : 0;
      this.leafType[l] = l === ARM_LPAE_MAX_LEVELS - 1 ? ARM_LPAE_PTE_TYPE_PAGE : ARM_LPAE_PTE_TYPE_BLOCK;
      this.leafPgsize[l] = l >= g.startLevel && sizes.includes(this.blk[l]!) ? this.blk[l]! : -1;
    }
    this.protLo = new Uint32Array(64);
    this.protHi = new Uint32Array(64);
    for (let p = 0; p < 64; p++) {
      const pte = armLpaeProtToPte(fmt, cfg.quirks, p);
      this.protLo[p] = pte.lo;
      this.protHi[p] = pte.hi;
    }
    this.ptesPerTable = g.ptesPerTable;
    this.pgdEntries = 1 << g.pgdBits;
    this.tableAddrMaskLo = g.granule === SZ_64K ? 0xffff0000 : 0xfffff000;
    this.tableHiBits =
      (cfg.quirks & IO_PGTABLE_QUIRK_ARM_NS ? ARM_LPAE_PTE_NSTABLE_HI : 0) | (cfg.coherentWalk ? 0 : ARM_LPAE_PTE_SW_SYNC_HI);
    this.freed = false;
    this.fast4k = g.granule === SZ_4K && g.startLevel <= 1;
    this.i32 = pool.i32;
    this.baseLoI = pool.base | 0;
    this.pgdMask = this.pgdEntries - 1;
    this.iasPfnLimit = this.iasLimit / SZ_4K;
    this.oasPfnLimit = this.oasLimit / SZ_4K;
    let leafLevels = 0;
    for (let l = 0; l < ARM_LPAE_MAX_LEVELS; l++) if (this.leafPgsize[l]! >= 0) leafLevels |= 1 << l;
    this.leafLevels = leafLevels;
    this.leafAttrLo = new Int32Array(ARM_LPAE_MAX_LEVELS * 64);
    for (let l = 0; l < ARM_LPAE_MAX_LEVELS; l++) {
      for (let p = 0; p < 64; p++) {
        if (this.leafPgsize[l]! >= 0 && (p & (IOMMU_READ | IOMMU_WRITE)) !== 0) this.leafAttrLo[(l << 6) | p] = this.protLo[p]! | this.leafType[l]!;
      }
    }
    this.leafOffMask = 0;
  }

  /** See armLpaeGeneralPathsOnly. */
  useGeneralPathsOnly(): void {
    this.fast4k = false;
  }

  tablePages(): number {
    return this.pool.allocations;
  }

  tableBytes(): number {
    return this.pool.bytes;
  }

  /*
   * The three entry points are small so that V8 inlines them into a
   * monomorphic caller: then iova and paddr stay unboxed doubles. A call V8
   * does not inline boxes each address of 2^31 or more into a heap number,
   * so everything they call takes int32 halves of the addresses. With the
   * 4K granule they go to the int32 fast paths, which hand anything unusual
   * (errors, findings, tables under a block, holes, fractional addresses)
   * back untouched to the general code, which then decides exactly as it
   * always did.
   */

  // @kernel: arm_lpae_map_pages
  mapPages(iova: number, paddr: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError {
    if (this.fast4k && iova >= 0 && iova < this.iasLimit && paddr >= 0 && paddr < this.oasLimit) {
      // 2^-32 and 2^32 as literals (see map4kOne).
      const ihi = (iova * 2.3283064365386963e-10) | 0;
      const ilo = iova | 0;
      const phi = (paddr * 2.3283064365386963e-10) | 0;
      const plo = paddr | 0;
      // Whole numbers only: the general code gets back exactly the addresses it was given.
      if (ihi * 4294967296 + (ilo >>> 0) === iova && phi * 4294967296 + (plo >>> 0) === paddr) {
        if (pgcount === 1 && this.map4kOne(ihi, ilo, phi, plo, pgsize, prot)) {
          mapped.bytes += pgsize;
          return 0;
        }
        return this.mapPages4k(ihi, ilo, phi, plo, pgsize, pgcount, prot, mapped);
      }
    }
    return this.mapPagesGeneral(iova, paddr, pgsize, pgcount, prot, mapped);
  }

  // @kernel: arm_lpae_unmap_pages
  unmapPages(iova: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number {
    if (this.fast4k && iova >= 0 && iova < this.iasLimit) {
      const ihi = (iova * 2.3283064365386963e-10) | 0;
      const ilo = iova | 0;
      if (ihi * 4294967296 + (ilo >>> 0) === iova) {
        if (pgcount === 1 && this.unmap4kOne(ihi, ilo, pgsize)) {
          // tlb_add_page gets iova as received: no new heap number when this call was not inlined.
          if (gather !== null && !gather.queued) this.tlb.tlbAddPage?.(gather, iova, pgsize);
          return pgsize;
        }
        return this.unmapPages4k(ihi, ilo, pgsize, pgcount, gather);
      }
    }
    return this.unmapPagesGeneral(iova, pgsize, pgcount, gather);
  }

  /*
   * The same with frame numbers (see IoPgtableOps.mapPagesPfn): with the 4K
   * granule a whole frame below 2^31 splits into the address halves with
   * two shifts, and the call goes where mapPages would send it.
   */

  // @kernel: arm_lpae_map_pages
  mapPagesPfn(iovaPfn: number, paddrPfn: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError {
    if (this.fast4k && (iovaPfn | 0) === iovaPfn && iovaPfn >= 0 && iovaPfn < this.iasPfnLimit && (paddrPfn | 0) === paddrPfn && paddrPfn >= 0 && paddrPfn < this.oasPfnLimit) {
      const ihi = iovaPfn >>> 20;
      const ilo = iovaPfn << 12;
      const phi = paddrPfn >>> 20;
      const plo = paddrPfn << 12;
      if (pgcount === 1 && this.map4kOne(ihi, ilo, phi, plo, pgsize, prot)) {
        mapped.bytes += pgsize;
        return 0;
      }
      return this.mapPages4k(ihi, ilo, phi, plo, pgsize, pgcount, prot, mapped);
    }
    return this.mapPages(iovaPfn * this.granule, paddrPfn * this.granule, pgsize, pgcount, prot, mapped);
  }

  // @kernel: arm_lpae_unmap_pages
  unmapPagesPfn(iovaPfn: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number {
    if (this.fast4k && (iovaPfn | 0) === iovaPfn && iovaPfn >= 0 && iovaPfn < this.iasPfnLimit) {
      const ihi = iovaPfn >>> 20;
      const ilo = iovaPfn << 12;
      if (pgcount === 1 && this.unmap4kOne(ihi, ilo, pgsize)) {
        if (gather !== null && !gather.queued) this.tlb.tlbAddPage?.(gather, iovaPfn * SZ_4K, pgsize);
        return pgsize;
      }
      return this.unmapPages4k(ihi, ilo, pgsize, pgcount, gather);
    }
    return this.unmapPages(iovaPfn * this.granule, pgsize, pgcount, gather);
  }

  // @kernel: arm_lpae_iova_to_phys
  // @kernel: iopte_to_paddr
  iovaToPhys(iova: number): number {
    if (!(this.fast4k && iova >= 0)) return this.iovaToPhysGeneral(iova);
    const ilo = iova | 0;
    const p = this.walk4k((iova * TWO_NEG_32) | 0, ilo);
    if (p < 0) return 0;
    // iopte_to_paddr plus the offset inside the leaf.
    const w = this.i32;
    return (w[p + 1]! & ADDR_HI) * TWO_32 + ((w[p]! & ADDR_LO_I) >>> 0) + (ilo & this.leafOffMask);
  }

  /**
   * The iova_to_phys walk with the 4K granule: the word offset of the leaf
   * translating iova, with `leafOffMask` set to its offset mask, or -1.
   */
  // @kernel: arm_lpae_iova_to_phys
  // @kernel: ARM_LPAE_LVL_IDX
  private walk4k(ihi: number, ilo: number): number {
    const w = this.i32;
    const base = this.baseLoI;
    let p = this.pgd;
    let lo: number;
    if (this.startLevel === 0) {
      p += ((ihi >>> 7) & this.pgdMask) << 1;
      lo = w[p]!;
      // iopte_leaf: a block at level 0 (512G) is no 4K-granule size; the general code gives it no offset.
      if ((lo & TYPE_MASK) !== TYPE_TABLE) return this.leafAt(p, lo, TYPE_BLOCK, 0);
      p = (((lo & ADDR_LO_I) - base) >>> 2) + ((((ihi << 2) | (ilo >>> 30)) & 511) << 1);
    } else {
      p += (((ihi << 2) | (ilo >>> 30)) & this.pgdMask) << 1;
    }
    lo = w[p]!;
    if ((lo & TYPE_MASK) !== TYPE_TABLE) return this.leafAt(p, lo, TYPE_BLOCK, 0x3fffffff);
    p = (((lo & ADDR_LO_I) - base) >>> 2) + (((ilo >>> 21) & 511) << 1);
    lo = w[p]!;
    if ((lo & TYPE_MASK) !== TYPE_TABLE) return this.leafAt(p, lo, TYPE_BLOCK, 0x1fffff);
    p = (((lo & ADDR_LO_I) - base) >>> 2) + (((ilo >>> 12) & 511) << 1);
    return this.leafAt(p, w[p]!, TYPE_PAGE, 0xfff);
  }

  /** walk4k's end: p if the descriptor lo there is a leaf of the given type (recording its offset mask), else -1. */
  private leafAt(p: number, lo: number, type: number, offMask: number): number {
    if ((lo & TYPE_MASK) !== type) return -1;
    this.leafOffMask = offMask;
    return p;
  }

  /*
   * The 4K-granule fast paths of map_pages and unmap_pages. A call for one
   * entry tries map4kOne/unmap4kOne first: a straight walk through existing
   * tables, small enough for V8 to inline (with the entry point) into the
   * caller. Everything else, and anything they decline, goes to
   * mapPages4k/unmapPages4k: one function each, deliberately, whose
   * bytecode is over V8's max_inlined_bytecode_size (460), so that V8
   * never inlines them and the entry points stay small enough to inline
   * into their callers, where the addresses stay unboxed doubles. (With
   * those paths inlinable, V8 inlined them into the entry points, which then
   * no longer fitted its budget in their callers: every call boxed its
   * addresses.) The walks are written out level by level with the 4K
   * granule's shifts, start level 0 or 1; tables are page-aligned in the
   * pool, so an entry's index in its (granule-sized chunk of a) table is
   * `(p >> 1) & 511` for its word offset p.
   */

  /*
   * The one-entry paths below are inlined, with the entry point, into every
   * caller, and V8 inlines a function only while the bytecode it brings
   * stays within a budget (max_inlined_bytecode_size_cumulative, 920 bytes,
   * each candidate counted 1.2 times with what it inlines itself). A
   * module constant costs 5 bytes of bytecode at each use (a load and a
   * TDZ check) and a literal 2, so these functions write the descriptor
   * constants as literals: 3 is ARM_LPAE_PTE_TYPE_MASK and _TABLE (and
   * _PAGE), 1 _BLOCK, -4096 ARM_LPAE_PTE_ADDR_MASK_LO as an int32, 0xffff
   * ARM_LPAE_PTE_ADDR_MASK_HI; 4096, 0x200000 and 0x40000000 are SZ_4K,
   * SZ_2M and SZ_1G.
   */

  /**
   * map_pages of one leaf of pgsize through existing tables: true when
   * written; false having changed nothing (mapPages4k then decides).
   */
  // @kernel: __arm_lpae_map
  private map4kOne(ihi: number, ilo: number, phi: number, plo: number, pgsize: number, prot: number): boolean {
    // (leaf level << 6) | prot: the leaf's attribute word, 0 where pgsize or prot cannot be mapped.
    const k = (pgsize === 4096 ? 192 : pgsize === 0x200000 ? 128 : pgsize === 0x40000000 ? 64 : 0) | (prot & 63);
    const attr = this.leafAttrLo[k]!;
    const p = attr === 0 ? -1 : this.leafSlot4k(ihi, ilo, k >> 6);
    const w = this.i32;
    if (p < 0 || (w[p]! | w[p + 1]!) !== 0) return false;
    // @kernel: __arm_lpae_init_pte
    w[p] = attr | (plo & -4096);
    w[p + 1] = this.protHi[k & 63]! | (phi & 0xffff);
    return true;
  }

  /** unmap_pages of one leaf of pgsize: true when cleared; false having changed nothing (unmapPages4k then decides). */
  // @kernel: __arm_lpae_unmap
  private unmap4kOne(ihi: number, ilo: number, pgsize: number): boolean {
    const leaf = pgsize === 4096 ? 3 : pgsize === 0x200000 ? 2 : pgsize === 0x40000000 ? 1 : 0;
    const p = ((this.leafLevels >> leaf) & 1) === 0 ? -1 : this.leafSlot4k(ihi, ilo, leaf);
    const w = this.i32;
    // A leaf: a page at level 3, a block above.
    if (p < 0 || (w[p]! & 3) !== (leaf === 3 ? 3 : 1)) return false;
    w[p] = 0;
    w[p + 1] = 0;
    return true;
  }

  /** Word offset of iova's entry at level `leaf` (1, 2 or 3) through existing tables; -1 if the walk meets anything else. */
  // @kernel: __arm_lpae_map
  private leafSlot4k(ihi: number, ilo: number, leaf: number): number {
    const w = this.i32;
    const b = this.baseLoI;
    // Index bits: 47:39 at level 0, then 38:30, 29:21, 20:12; x holds 38:30 (and the bits above).
    const x = (ihi << 2) | (ilo >>> 30);
    let p = this.pgd;
    let lo = 0;
    if (this.startLevel === 0) {
      lo = w[p + (((ihi >>> 7) & this.pgdMask) << 1)]!;
      if ((lo & 3) !== 3) return -1;
      p = (((lo & -4096) - b) >>> 2) + ((x & 511) << 1);
    } else {
      p += (x & this.pgdMask) << 1;
    }
    if (leaf === 1) return p;
    lo = w[p]!;
    if ((lo & 3) !== 3) return -1;
    p = (((lo & -4096) - b) >>> 2) + (((ilo >>> 21) & 511) << 1);
    if (leaf === 2) return p;
    lo = w[p]!;
    if ((lo & 3) !== 3) return -1;
    return (((lo & -4096) - b) >>> 2) + (((ilo >>> 12) & 511) << 1);
  }

  /**
   * map_pages with the 4K granule, addresses as int32 halves of whole
   * numbers within ias and oas: installs the tables the walk needs (as the
   * general walk would) and writes the leaves, or hands the call untouched
   * to the general code (bad arguments, a block or a live entry in the way,
   * a batch past the pgd).
   */
  // @kernel: arm_lpae_map_pages
  // @kernel: __arm_lpae_map
  private mapPages4k(ihi: number, ilo: number, phi: number, plo: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError {
    const leaf = pgsize === SZ_4K ? 3 : pgsize === SZ_2M ? 2 : pgsize === SZ_1G ? 1 : 0;
    const cnt = pgcount < 512 ? pgcount : 512;
    fast: if (((this.leafLevels >> leaf) & 1) !== 0 && (prot & (IOMMU_READ | IOMMU_WRITE)) !== 0 && cnt >= 1 && (cnt | 0) === cnt) {
      const base = this.baseLoI;
      let w = this.i32;
      let p = this.pgd;
      let lo: number;
      /* The table holding the leaves was installed by this walk: its entries are all empty. */
      let fresh = false;
      // The walk: at an empty entry above the leaf level, install a table and go on.
      if (this.startLevel === 0) {
        p += ((ihi >>> 7) & this.pgdMask) << 1;
        if ((w[p]! | w[p + 1]!) === 0) {
          this.installTable(p);
          w = this.i32;
          fresh = true;
        }
        lo = w[p]!;
        if ((lo & TYPE_MASK) !== TYPE_TABLE) break fast;
        p = (((lo & ADDR_LO_I) - base) >>> 2) + ((((ihi << 2) | (ilo >>> 30)) & 511) << 1);
      } else {
        p += (((ihi << 2) | (ilo >>> 30)) & this.pgdMask) << 1;
      }
      if (leaf !== 1) {
        fresh = false;
        if ((w[p]! | w[p + 1]!) === 0) {
          this.installTable(p);
          w = this.i32;
          fresh = true;
        }
        lo = w[p]!;
        if ((lo & TYPE_MASK) !== TYPE_TABLE) break fast;
        p = (((lo & ADDR_LO_I) - base) >>> 2) + (((ilo >>> 21) & 511) << 1);
        if (leaf === 3) {
          fresh = false;
          if ((w[p]! | w[p + 1]!) === 0) {
            this.installTable(p);
            w = this.i32;
            fresh = true;
          }
          lo = w[p]!;
          if ((lo & TYPE_MASK) !== TYPE_TABLE) break fast;
          p = (((lo & ADDR_LO_I) - base) >>> 2) + (((ilo >>> 12) & 511) << 1);
        }
      }
      // @kernel: __arm_lpae_init_pte
      const attrLo = this.protLo[prot & 63]! | (leaf === 3 ? TYPE_PAGE : TYPE_BLOCK);
      const attrHi = this.protHi[prot & 63]!;
      if (cnt === 1) {
        if ((w[p]! | w[p + 1]!) !== 0) break fast;
        w[p] = attrLo | (plo & ADDR_LO_I);
        w[p + 1] = attrHi | (phi & ADDR_HI);
        mapped.bytes += pgsize;
        return 0;
      }
      // @kernel: arm_lpae_max_entries
      const max = 512 - ((p >> 1) & 511);
      const num = cnt < max ? cnt : max;
      if (leaf === this.startLevel && ((p - this.pgd) >> 1) + num > this.pgdMask + 1) break fast;
      const end = p + 2 * num;
      // A live entry among them: the general code decides (EEXIST, or a table to tear down).
      if (!fresh) {
        let busy = 0;
        for (let q = p; q < end; q++) busy |= w[q]!;
        if (busy !== 0) break fast;
      }
      // The output addresses: (phi, plo) advancing by pgsize; the high word changes only if the low one wraps.
      const step = pgsize | 0;
      if ((plo >>> 0) + num * pgsize <= TWO_32) {
        const hi = attrHi | (phi & ADDR_HI);
        const lo0 = attrLo | (plo & ADDR_LO_I);
        let q = p;
        let a = 0;
        // Two entries an iteration (a loop's back edge costs V8 an interrupt check).
        for (; q + 2 < end; q += 4) {
          w[q] = (lo0 + a) | 0;
          w[q + 1] = hi;
          w[q + 2] = (lo0 + a + step) | 0;
          w[q + 3] = hi;
          a = (a + 2 * step) | 0;
        }
        if (q < end) {
          w[q] = (lo0 + a) | 0;
          w[q + 1] = hi;
        }
      } else {
        let a = plo;
        let h = phi;
        for (let q = p; q < end; q += 2) {
          w[q] = attrLo | (a & ADDR_LO_I);
          w[q + 1] = attrHi | (h & ADDR_HI);
          const b = (a + step) | 0;
          h += (a & ~b) >>> 31;
          a = b;
        }
      }
      mapped.bytes += num * pgsize;
      return 0;
    }
    return this.mapPagesGeneral(ihi * TWO_32 + (ilo >>> 0), phi * TWO_32 + (plo >>> 0), pgsize, pgcount, prot, mapped);
  }

  /**
   * unmap_pages with the 4K granule, iova as int32 halves of a whole number
   * within ias: clears the leaves and queues their invalidation, or hands
   * the call untouched to the general code (bad arguments, an empty entry
   * or a block on the way, a table or a hole among the entries).
   */
  // @kernel: arm_lpae_unmap_pages
  // @kernel: __arm_lpae_unmap
  private unmapPages4k(ihi: number, ilo: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number {
    const leaf = pgsize === SZ_4K ? 3 : pgsize === SZ_2M ? 2 : pgsize === SZ_1G ? 1 : 0;
    const cnt = pgcount < 512 ? pgcount : 512;
    const iova = ihi * TWO_32 + (ilo >>> 0);
    fast: if (((this.leafLevels >> leaf) & 1) !== 0 && cnt >= 1 && (cnt | 0) === cnt) {
      const base = this.baseLoI;
      const w = this.i32;
      let p = this.pgd;
      let lo: number;
      if (this.startLevel === 0) {
        p += ((ihi >>> 7) & this.pgdMask) << 1;
        lo = w[p]!;
        if ((lo & TYPE_MASK) !== TYPE_TABLE) break fast;
        p = (((lo & ADDR_LO_I) - base) >>> 2) + ((((ihi << 2) | (ilo >>> 30)) & 511) << 1);
      } else {
        p += (((ihi << 2) | (ilo >>> 30)) & this.pgdMask) << 1;
      }
      if (leaf !== 1) {
        lo = w[p]!;
        if ((lo & TYPE_MASK) !== TYPE_TABLE) break fast;
        p = (((lo & ADDR_LO_I) - base) >>> 2) + (((ilo >>> 21) & 511) << 1);
        if (leaf === 3) {
          lo = w[p]!;
          if ((lo & TYPE_MASK) !== TYPE_TABLE) break fast;
          p = (((lo & ADDR_LO_I) - base) >>> 2) + (((ilo >>> 12) & 511) << 1);
        }
      }
      const type = leaf === 3 ? TYPE_PAGE : TYPE_BLOCK;
      // @kernel: arm_lpae_max_entries
      const max = 512 - ((p >> 1) & 511);
      const num = cnt < max ? cnt : max;
      const end = p + 2 * num;
      for (let q = p; q < end; q += 2) if ((w[q]! & TYPE_MASK) !== type) break fast;
      // TypedArray fill is a builtin call that costs more than a few stores.
      if (num > 32) w.fill(0, p, end);
      else for (let q = p; q < end; q++) w[q] = 0;
      if (gather !== null && !gather.queued) {
        const tlb = this.tlb;
        if (tlb.tlbAddPage !== undefined) for (let j = 0; j < num; j++) tlb.tlbAddPage(gather, iova + j * pgsize, pgsize);
      }
      return num * pgsize;
    }
    return this.unmapPagesGeneral(iova, pgsize, pgcount, gather);
  }

  /** map_pages for every case the fast path does not take. */
  // @kernel: arm_lpae_map_pages
  private mapPagesGeneral(iova: number, paddr: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError {
    const leaf = this.leafLevelOf(pgsize);
    if (leaf < 0 || !(iova >= 0 && iova < this.iasLimit) || !(paddr >= 0 && paddr < this.oasLimit) || (prot & (IOMMU_READ | IOMMU_WRITE)) === 0) {
      return this.mapRejected(iova, paddr, pgsize, prot);
    }
    const tbl = this.walkAlloc(iova, leaf);
    if (tbl < 0) return tbl === WALK_NOMEM ? this.enomem(iova) : this.eexist(iova, -1 - tbl, "a block already maps this range at a higher level");
    return this.initPtes(leaf, tbl, iova, paddr, pgsize, pgcount, prot, mapped);
  }

  /** unmap_pages for every case the fast path does not take. */
  // @kernel: arm_lpae_unmap_pages
  private unmapPagesGeneral(iova: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number {
    const leaf = this.leafLevelOf(pgsize);
    if (leaf < 0 || !(pgcount >= 1) || !(iova >= 0 && iova < this.iasLimit)) return this.unmapRejected(iova, pgsize, pgcount);
    // @kernel: __arm_lpae_unmap
    const w = this.words;
    let tbl = this.pgd;
    for (let l = this.startLevel; ; l++) {
      const idx = ((iova * this.inv[l]!) >>> 0) & this.idxMask[l]!;
      const lo = w[tbl + 2 * idx]!;
      if ((lo | w[tbl + 2 * idx + 1]!) === 0) return this.unmapEnoent(iova, l);
      if (l === leaf) return this.unmapBatch(l, tbl, idx, iova, pgsize, pgcount, gather);
      if ((lo & TYPE_MASK) === TYPE_BLOCK) return this.unmapPartialBlock(iova, l, pgsize);
      tbl = ((lo & this.tableAddrMaskLo) - this.baseLo) >>> 2;
    }
  }

  /** iova_to_phys for the 16K and 64K granules, and for arguments the fast path does not take. */
  // @kernel: arm_lpae_iova_to_phys
  private iovaToPhysGeneral(iova: number): number {
    if (this.pa52) return this.iovaToPhys52(iova);
    const w = this.words;
    let tbl = this.pgd;
    for (let l = this.startLevel; l < ARM_LPAE_MAX_LEVELS; l++) {
      const p = tbl + 2 * (((iova * this.inv[l]!) >>> 0) & this.idxMask[l]!);
      const lo = w[p]!;
      // iopte_leaf; below 64K granules every leaf is at most 1G, so blkLowMask holds the offset mask.
      if ((lo & TYPE_MASK) === this.leafType[l]) return (w[p + 1]! & ADDR_HI) * TWO_32 + ((lo & ADDR_LO) >>> 0) + ((iova >>> 0) & this.blkLowMask[l]!);
      // iopte_table
      if (l === ARM_LPAE_MAX_LEVELS - 1 || (lo & TYPE_MASK) !== TYPE_TABLE) return 0;
      tbl = ((lo & this.tableAddrMaskLo) - this.baseLo) >>> 2;
    }
    return 0;
  }

  /**
   * The permissions of the leaf translating iova (IoPgtableOps.iovaProt):
   * its own walk, so iova_to_phys stays as lean as the kernel's.
   */
  // @kernel: arm_lpae_prot_to_pte
  iovaProt(iova: number): number {
    if (!(iova >= 0 && iova < this.iasLimit)) return 0;
    const wd = PROT_WALK;
    const l = this.pgtableWalk(iova, wd);
    return l < 0 ? 0 : armLpaePteToProt(this.fmt, this.cfg.quirks, wd.lo[l]!, wd.hi[l]!);
  }

  // @kernel: arm_lpae_pgtable_walk
  pgtableWalk(iova: number, wd: PgtableWalkData): number {
    let tbl = this.pgd;
    const w = this.words;
    for (let l = this.startLevel; l < ARM_LPAE_MAX_LEVELS; l++) {
      const p = tbl + 2 * (((iova * this.inv[l]!) >>> 0) & this.idxMask[l]!);
      const lo = w[p]!;
      wd.lo[l] = lo;
      wd.hi[l] = w[p + 1]!;
      if (iopteLeaf(lo, l)) return l;
      if (!iopteTable(lo, l)) return -1;
      tbl = this.derefTable(lo);
    }
    return -1;
  }

  // @kernel: arm_lpae_free_pgtable
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.freePgtable(this.startLevel, this.pgd);
    // The memory goes back for reuse: drop every reference to it.
    this.pool.release();
    this.words = this.pool.words;
    this.i32 = this.pool.i32;
  }

  /** The level whose block size is pgsize, if pgsize is a bitmap size reachable in this table; else -1. */
  private leafLevelOf(pgsize: number): number {
    for (let l = ARM_LPAE_MAX_LEVELS - 1; l >= this.startLevel; l--) if (this.leafPgsize[l] === pgsize) return l;
    return -1;
  }

  /** Word offset of the table a table descriptor points to (its pool spans < 4 GiB: the low word is enough). */
  // @kernel: iopte_deref
  private derefTable(lo: number): number {
    return this.pool.offsetOfLo(lo & this.tableAddrMaskLo);
  }

  /** Allocate a zeroed granule table and point the empty entry at word p to it. */
  // @kernel: arm_lpae_install_table
  private installTable(p: number): number {
    const t = this.pool.alloc(1, this.granule);
    // No memory: the entry stays empty (ENOMEM).
    if (t < 0) return -1;
    const pa = this.pool.physOf(t);
    const w = (this.words = this.pool.words);
    this.i32 = this.pool.i32;
    w[p] = paddrToIopteLo(pa) | ARM_LPAE_PTE_TYPE_TABLE;
    w[p + 1] = paddrToIopteHi(pa) | this.tableHiBits;
    return t;
  }

  /**
   * Walk from the pgd to the table holding level-`leaf` entries, allocating
   * tables; -1 - level if a block is in the way, WALK_NOMEM (nothing
   * allocated) if the tables it would need do not all fit in the pool's budget.
   */
  // @kernel: __arm_lpae_map
  private walkAlloc(iova: number, leaf: number): number {
    let w = this.words;
    let tbl = this.pgd;
    for (let l = this.startLevel; l < leaf; l++) {
      const p = tbl + 2 * (((iova * this.inv[l]!) >>> 0) & this.idxMask[l]!);
      const lo = w[p]!;
      if ((lo | w[p + 1]!) === 0) {
        // Every level from here down needs a new table: fail before the first if they do not all fit.
        if (!this.pool.canAlloc(leaf - l)) return WALK_NOMEM;
        tbl = this.installTable(p);
        w = this.words;
      } else if ((lo & TYPE_MASK) === TYPE_BLOCK) {
        return -1 - l;
      } else {
        tbl = ((lo & this.tableAddrMaskLo) - this.baseLo) >>> 2;
      }
    }
    return tbl;
  }

  /** Write up to pgcount leaves at level `leaf` into the table at tbl, stopping at the end of that table. */
  // @kernel: __arm_lpae_map
  private initPtes(leaf: number, tbl: number, iova: number, paddr: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError {
    const idx = ((iova * this.inv[leaf]!) >>> 0) & this.idxMask[leaf]!;
    // @kernel: arm_lpae_max_entries
    const max = this.ptesPerTable - (idx & (this.ptesPerTable - 1));
    const num = pgcount < max ? pgcount : max;
    const p0 = tbl + 2 * idx;
    const w = this.words;
    let busy = 0;
    for (let i = 0; i < 2 * num; i++) busy |= w[p0 + i]!;
    if (busy !== 0 || this.pa52 || (leaf === this.startLevel && idx + num > this.pgdEntries)) {
      return this.initPtesSlow(leaf, p0, idx, num, iova, paddr, pgsize, prot, mapped);
    }
    // @kernel: __arm_lpae_init_pte
    const attrLo = this.protLo[prot & 63]! | this.leafType[leaf]!;
    const attrHi = this.protHi[prot & 63]!;
    for (let i = 0; i < num; i++) {
      const pa = paddr + i * pgsize;
      w[p0 + 2 * i] = attrLo | ((pa >>> 0) & ADDR_LO);
      w[p0 + 2 * i + 1] = attrHi | (((pa * TWO_NEG_32) >>> 0) & ADDR_HI);
    }
    mapped.bytes += num * pgsize;
    return 0;
  }

  /** initPtes when some target entry is in use, the granule is 64K, or the batch runs past the pgd. */
  // @kernel: arm_lpae_init_pte
  private initPtesSlow(leaf: number, p0: number, idx: number, num: number, iova: number, paddr: number, pgsize: number, prot: number, mapped: MappedBytes): 0 | KError {
    const err = this.prepareLeaves(leaf, p0, num, iova, pgsize);
    if (err !== 0) return err;
    if (leaf === this.startLevel && idx + num > this.pgdEntries) {
      this.report("map-beyond-ias", iova, `map_pages: ${num} entries from pgd index ${idx} run past the ${this.pgdEntries}-entry pgd (beyond ias); the kernel writes them anyway`);
    }
    // @kernel: __arm_lpae_init_pte
    const w = this.words;
    const attrLo = this.protLo[prot & 63]! | this.leafType[leaf]!;
    const attrHi = this.protHi[prot & 63]!;
    for (let i = 0; i < num; i++) {
      w[p0 + 2 * i] = attrLo | paddrToIopteLo(paddr + i * pgsize);
      w[p0 + 2 * i + 1] = attrHi | paddrToIopteHi(paddr + i * pgsize);
    }
    mapped.bytes += num * pgsize;
    return 0;
  }

  /**
   * The num entries a batch will write are not all empty: a leaf is EEXIST;
   * a table is torn down now, before later entries are even looked at.
   */
  // @kernel: arm_lpae_init_pte
  private prepareLeaves(leaf: number, p0: number, num: number, iova: number, pgsize: number): 0 | KError {
    const w = this.words;
    // Tables torn down silently (no live leaves, so no map-discards-mappings finding).
    let silent = 0;
    for (let i = 0; i < num; i++) {
      const lo = w[p0 + 2 * i]!;
      if (lo === 0) continue;
      if (iopteLeaf(lo, leaf)) {
        if (silent > 0) this.report("map-failed-after-teardown", iova, `map_pages: ${silent} empty table(s) were torn down for blocks before the leaf at ${hex(iova + i * pgsize)} refused the call; they stay torn down`);
        return this.eexist(iova + i * pgsize, leaf, "a leaf already maps this address");
      }
      if ((lo & ARM_LPAE_PTE_TYPE_MASK) === ARM_LPAE_PTE_TYPE_TABLE && this.replaceTable(leaf, p0 + 2 * i, iova + i * pgsize) === 0) silent++;
    }
    return 0;
  }

  /** iova_to_phys with the 64K granule: addresses up to 52 bits, leaves up to 4T. */
  // @kernel: arm_lpae_iova_to_phys
  private iovaToPhys52(iova: number): number {
    let tbl = this.pgd;
    const w = this.words;
    for (let l = this.startLevel; l < ARM_LPAE_MAX_LEVELS; l++) {
      const p = tbl + 2 * (((iova * this.inv[l]!) >>> 0) & this.idxMask[l]!);
      const lo = w[p]!;
      if (iopteLeaf(lo, l)) return iopteToPaddr(lo, w[p + 1]!, this.granule) + (iova % this.blk[l]!);
      if (!iopteTable(lo, l)) return 0;
      tbl = this.derefTable(lo);
    }
    return 0;
  }

  /** The argument checks of map_pages, in the kernel's order, for a call the fast path refused. */
  // @kernel: arm_lpae_map_pages
  private mapRejected(iova: number, paddr: number, pgsize: number, prot: number): KError {
    const leaf = this.leafLevelOf(pgsize);
    if (leaf < 0 && !bitmapCovers(this.cfg.pgsizeBitmap, pgsize)) {
      this.report("bad-pgsize", iova, `map_pages: pgsize ${hex(pgsize)} is not made of sizes in the bitmap ${hex(this.cfg.pgsizeBitmap)}`);
      return kerr("EINVAL", `pgsize ${hex(pgsize)} is not a page size of this table (bitmap ${hex(this.cfg.pgsizeBitmap)})`);
    }
    if (!(iova >= 0 && iova < this.iasLimit) || !(paddr >= 0 && paddr < this.oasLimit)) {
      this.report("out-of-range", iova, `map_pages: iova ${hex(iova)} beyond ias ${this.cfg.ias} or paddr ${hex(paddr)} beyond oas ${this.cfg.oas}`);
      return kerr("ERANGE", `iova ${hex(iova)} or paddr ${hex(paddr)} exceeds the table's ${this.cfg.ias}-bit input or ${this.cfg.oas}-bit output size`);
    }
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) return kerr("EINVAL", "prot has neither IOMMU_READ nor IOMMU_WRITE");
    return this.mapUnreachable(iova, pgsize);
  }

  /**
   * A size in the bitmap that no walked level maps, or a sum of sizes: the
   * kernel walks down allocating tables and fails at the last level.
   */
  // @kernel: __arm_lpae_map
  private mapUnreachable(iova: number, pgsize: number): KError {
    const tbl = this.walkAlloc(iova, ARM_LPAE_MAX_LEVELS - 1);
    if (tbl === WALK_NOMEM) return this.enomem(iova);
    if (tbl < 0) return this.eexist(iova, -1 - tbl, "a block already maps this range at a higher level");
    this.report("unreachable-pgsize", iova, `map_pages: no level of this table has block size ${hex(pgsize)}; tables were allocated on the way down`);
    return kerr("EINVAL", `no level of this table maps pgsize ${hex(pgsize)}`);
  }

  /** The argument checks of unmap_pages for a call the fast path refused; all return 0. */
  // @kernel: arm_lpae_unmap_pages
  private unmapRejected(iova: number, pgsize: number, pgcount: number): number {
    if ((this.leafLevelOf(pgsize) < 0 && !bitmapCovers(this.cfg.pgsizeBitmap, pgsize)) || !(pgcount >= 1)) {
      this.report("bad-pgsize", iova, `unmap_pages: pgsize ${hex(pgsize)} not made of bitmap sizes, or pgcount ${pgcount} < 1`);
      return 0;
    }
    if (!(iova >= 0 && iova < this.iasLimit)) {
      this.report("out-of-range", iova, `unmap_pages: iova ${hex(iova)} beyond ias ${this.cfg.ias}`);
      return 0;
    }
    // A sum of sizes matches no level: the walk ends at a leaf (partial) or an empty entry.
    let tbl = this.pgd;
    for (let l = this.startLevel; l < ARM_LPAE_MAX_LEVELS; l++) {
      const p = tbl + 2 * (((iova * this.inv[l]!) >>> 0) & this.idxMask[l]!);
      const lo = this.words[p]!;
      if ((lo | this.words[p + 1]!) === 0) return this.unmapEnoent(iova, l);
      if (iopteLeaf(lo, l)) return this.unmapPartialBlock(iova, l, pgsize);
      tbl = this.derefTable(lo);
    }
    return 0;
  }

  // @kernel: __arm_lpae_unmap
  private unmapEnoent(iova: number, lvl: number): number {
    this.report("unmap-enoent", iova, `unmap_pages: nothing mapped at level ${lvl}; the kernel returns -ENOENT as a size_t (0xfffffffffffffffe), the model returns 0`);
    return 0;
  }

  // @kernel: __arm_lpae_unmap
  private unmapPartialBlock(iova: number, lvl: number, pgsize: number): number {
    this.report("unmap-partial-block", iova, `unmap_pages: unmap of ${hex(pgsize)} inside a ${hex(this.blk[lvl]!)} block is not allowed; nothing unmapped, block kept`);
    return 0;
  }

  /** No memory for the tables a map needs: ENOMEM (the walk allocated nothing; tables an earlier walk left stay). */
  // @kernel: __arm_lpae_alloc_pages
  private enomem(iova: number): KError {
    this.report("table-alloc-failed", iova, `map_pages: no page-table memory left for the tables at ${hex(iova)} (the budget of ${this.pool.memory.limit} bytes is spent)`);
    return kerr("ENOMEM", `no page-table memory left to map ${hex(iova)}: the page-table memory limit of ${this.pool.memory.limit} bytes is reached`);
  }

  private eexist(iova: number, lvl: number, why: string): KError {
    if (!this.noWarn) this.report("map-exists", iova, `map_pages: ${why} (level ${lvl}); unmap first`);
    return kerr("EEXIST", `iova ${hex(iova)} is already mapped: ${why}`);
  }

  /**
   * Tear down the table under the entry at word p before a block replaces it,
   * as the kernel does by unmapping it without a gather. Live leaves in the
   * subtree are discarded; the model reports that.
   */
  // @kernel: arm_lpae_init_pte
  private replaceTable(lvl: number, p: number, iova: number): number {
    const w = this.words;
    const child = this.derefTable(w[p]!);
    const live = this.countLeaves(lvl + 1, child);
    if (live > 0) {
      this.report("map-discards-mappings", iova, `map_pages: a ${hex(this.blk[lvl]!)} block replaced a table still mapping ${live} leaves; they were discarded without unmap`);
    }
    w[p] = 0;
    w[p + 1] = 0;
    this.tlb.tlbFlushWalk(iova, this.blk[lvl]!, this.granule);
    this.freePgtable(lvl + 1, child);
    return live;
  }

  /** Unmap up to pgcount entries of one table at level l, starting at idx. */
  // @kernel: __arm_lpae_unmap
  private unmapBatch(l: number, tbl: number, idx: number, iova: number, size: number, pgcount: number, gather: IommuIotlbGather | null): number {
    const w = this.words;
    // @kernel: arm_lpae_max_entries
    const max = this.ptesPerTable - (idx & (this.ptesPerTable - 1));
    const num = pgcount < max ? pgcount : max;
    const p0 = tbl + 2 * idx;
    const leafType = this.leafType[l]!;
    let i = 0;
    for (; i < num; i++) {
      const lo = w[p0 + 2 * i]!;
      if ((lo | w[p0 + 2 * i + 1]!) === 0) {
        this.unmapHole(iova + i * size, i, num);
        break;
      }
      if ((lo & TYPE_MASK) !== leafType) this.unmapTable(l, p0 + 2 * i, iova + i * size);
    }
    for (let j = 0; j < 2 * i; j++) w[p0 + j] = 0;
    const tlb = this.tlb;
    if (gather !== null && !gather.queued && tlb.tlbAddPage !== undefined) {
      for (let j = 0; j < i; j++) tlb.tlbAddPage(gather, iova + j * size, size);
    }
    return i * size;
  }

  private unmapHole(iova: number, done: number, num: number): void {
    if (!this.noWarn) this.report("unmap-hole", iova, `unmap_pages: stopped at an empty entry after ${done} of ${num} entries`);
  }

  /** Unmap at a size covering a table: clear the entry, flush the walk cache, free the subtree. */
  // @kernel: __arm_lpae_unmap
  private unmapTable(l: number, p: number, iova: number): void {
    const w = this.words;
    const child = this.derefTable(w[p]!);
    w[p] = 0;
    w[p + 1] = 0;
    this.tlb.tlbFlushWalk(iova, this.blk[l]!, this.granule);
    this.freePgtable(l + 1, child);
  }

  // @kernel: __arm_lpae_free_pgtable
  private freePgtable(lvl: number, tbl: number): void {
    const start = lvl === this.startLevel;
    if (lvl < ARM_LPAE_MAX_LEVELS - 1) {
      const n = start ? 2 ** this.geometry.pgdBits : this.geometry.ptesPerTable;
      for (let i = 0; i < n; i++) {
        const lo = this.words[tbl + 2 * i]!;
        const hi = this.words[tbl + 2 * i + 1]!;
        if ((lo | hi) === 0 || iopteLeaf(lo, lvl)) continue;
        this.freePgtable(lvl + 1, this.derefTable(lo));
      }
    }
    if (start) this.pool.free(tbl, Math.max(1, this.geometry.pgdAllocBytes / this.granule), this.geometry.pgdAllocBytes);
    else this.pool.free(tbl, 1, this.granule);
  }

  leafBytes(): number {
    return this.freed ? 0 : this.leafBytesUnder(this.startLevel, this.pgd);
  }

  /** Bytes the leaves under the table at word offset tbl (level lvl) map. */
  private leafBytesUnder(lvl: number, tbl: number): number {
    const n = lvl === this.startLevel ? 2 ** this.geometry.pgdBits : this.geometry.ptesPerTable;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const lo = this.words[tbl + 2 * i]!;
      const hi = this.words[tbl + 2 * i + 1]!;
      if ((lo | hi) === 0) continue;
      if (iopteLeaf(lo, lvl)) bytes += this.blk[lvl]!;
      else if (iopteTable(lo, lvl)) bytes += this.leafBytesUnder(lvl + 1, this.derefTable(lo));
    }
    return bytes;
  }

  /** Leaves mapped anywhere under the table at word offset tbl (level lvl). */
  private countLeaves(lvl: number, tbl: number): number {
    let n = 0;
    for (let i = 0; i < this.geometry.ptesPerTable; i++) {
      const lo = this.words[tbl + 2 * i]!;
      const hi = this.words[tbl + 2 * i + 1]!;
      if ((lo | hi) === 0) continue;
      if (iopteLeaf(lo, lvl)) n++;
      else if (iopteTable(lo, lvl)) n += this.countLeaves(lvl + 1, this.derefTable(lo));
    }
    return n;
  }

  private report(kind: PgtableFindingKind, iova: number, message: string): void {
    if (this.onFinding !== null) this.onFinding(kind, iova, message);
  }
}
