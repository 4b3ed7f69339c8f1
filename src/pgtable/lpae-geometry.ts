/**
 * Arm LPAE (VMSAv8-64 long-descriptor) table geometry, as io-pgtable-arm.c
 * derives it from the page sizes and address sizes a driver asks for.
 *
 * A table is one granule of 8-byte descriptors, so each level resolves
 * `granule_shift - 3` bits. Levels are numbered 0..3 as in the Arm ARM; level 3
 * always holds pages, and the walk starts at `4 - levels`. The top table (pgd)
 * may be smaller than a granule, or at stage 2 up to 16 granules when the
 * architecture mandates concatenated tables.
 */
import { kerr, type KError } from "../lib/errno.ts";
import { PAGE_SIZE, SZ_16K, SZ_1G, SZ_2M, SZ_32M, SZ_4K, SZ_4T, SZ_512M, SZ_64K, bitmapAnd, bitmapHas, bitmapMin, bitmapOf, ilog2, pgsizesOf } from "./sizes.ts";

export const ARM_LPAE_MAX_ADDR_BITS = 52;
export const ARM_LPAE_S2_MAX_CONCAT_PAGES = 16;
export const ARM_LPAE_MAX_LEVELS = 4;
/** Smallest pgd allocation: the hardware wants at least 64-byte alignment. */
export const ARM_LPAE_MIN_PGD_BYTES = 64;

export interface ArmLpaeGeometry {
  /** Table granule in bytes: 4K, 16K or 64K. */
  readonly granule: number;
  readonly pgShift: number;
  readonly bitsPerLevel: number;
  readonly levels: number;
  readonly startLevel: number;
  /** log2 of the number of pgd entries (after any concatenation). */
  readonly pgdBits: number;
  /** `8 << pgdBits`. */
  readonly pgdSize: number;
  /** Bytes the pgd allocation takes: at least ARM_LPAE_MIN_PGD_BYTES. */
  readonly pgdAllocBytes: number;
  /** Whether the stage-2 pgd is a set of concatenated tables one level down. */
  readonly concatenated: boolean;
  readonly ptesPerTable: number;
}

/** The rewritten page sizes, ias and oas. */
export interface ArmLpaeRestricted {
  readonly pgsizeBitmap: number;
  readonly ias: number;
  readonly oas: number;
}

/**
 * Pick the granule (the CPU page size if offered, else the largest size below
 * it, else the smallest above) and keep only the block sizes of that granule;
 * clamp ias and oas to the granule's address limit.
 */
// @kernel: arm_lpae_restrict_pgsizes
export function armLpaeRestrictPgsizes(pgsizeBitmap: number, ias: number, oas: number): ArmLpaeRestricted {
  const sizes = pgsizesOf(pgsizeBitmap);
  const below = sizes.filter((s) => s < PAGE_SIZE);
  const above = sizes.filter((s) => s > PAGE_SIZE);
  let granule = 0;
  if (bitmapHas(pgsizeBitmap, PAGE_SIZE)) granule = PAGE_SIZE;
  else if (below.length) granule = below[below.length - 1]!;
  else if (above.length) granule = above[0]!;

  let maxAddrBits = 48;
  let pageSizes = 0;
  switch (granule) {
    case SZ_4K:
      pageSizes = bitmapOf(SZ_4K, SZ_2M, SZ_1G);
      break;
    case SZ_16K:
      pageSizes = bitmapOf(SZ_16K, SZ_32M);
      break;
    case SZ_64K:
      maxAddrBits = 52;
      pageSizes = bitmapOf(SZ_64K, SZ_512M);
      if (oas > 48) pageSizes += SZ_4T;
      break;
  }
  return {
    pgsizeBitmap: bitmapAnd(pgsizeBitmap, pageSizes),
    ias: Math.min(ias, maxAddrBits),
    oas: Math.min(oas, maxAddrBits),
  };
}

/** Levels, start level and pgd size for a restricted configuration. */
// @kernel: arm_lpae_alloc_pgtable
export function armLpaeGeometry(r: ArmLpaeRestricted): ArmLpaeGeometry | KError {
  if (!bitmapHas(r.pgsizeBitmap, SZ_4K) && !bitmapHas(r.pgsizeBitmap, SZ_16K) && !bitmapHas(r.pgsizeBitmap, SZ_64K)) {
    return kerr("EINVAL", "the page-size bitmap has no 4K, 16K or 64K granule once restricted to one granule's block sizes");
  }
  if (r.ias > ARM_LPAE_MAX_ADDR_BITS) return kerr("EINVAL", `ias ${r.ias} exceeds ${ARM_LPAE_MAX_ADDR_BITS} bits`);
  if (r.oas > ARM_LPAE_MAX_ADDR_BITS) return kerr("EINVAL", `oas ${r.oas} exceeds ${ARM_LPAE_MAX_ADDR_BITS} bits`);
  const pgShift = ilog2(bitmapMin(r.pgsizeBitmap));
  const bitsPerLevel = pgShift - 3;
  const vaBits = r.ias - pgShift;
  // The kernel has no guard here; with ias <= granule shift it would compute a nonsensical table.
  if (vaBits <= 0) return kerr("EINVAL", `ias ${r.ias} does not exceed the granule shift ${pgShift}`);
  const levels = Math.ceil(vaBits / bitsPerLevel);
  const pgdBits = vaBits - bitsPerLevel * (levels - 1);
  return makeGeometry(pgShift, ARM_LPAE_MAX_LEVELS - levels, pgdBits, false);
}

/**
 * Whether the Arm ARM forces a stage-2 table to start one level lower with
 * concatenated top tables: 16K granule starting at level 0 with ias or oas of
 * 48; 4K granule starting at level 0 with oas 40 or 42; 16K granule starting
 * at level 1 with oas 40.
 */
// @kernel: arm_lpae_concat_mandatory
export function armLpaeConcatMandatory(g: ArmLpaeGeometry, ias: number, oas: number): boolean {
  if (g.granule === SZ_16K && g.startLevel === 0) return oas === 48 || ias === 48;
  if (g.granule === SZ_4K && g.startLevel === 0) return oas === 40 || oas === 42;
  return g.granule === SZ_16K && g.startLevel === 1 && oas === 40;
}

/** The same table started one level lower, with the pgd made of concatenated tables. */
// @kernel: arm_64_lpae_alloc_pgtable_s2
export function armLpaeConcatenate(g: ArmLpaeGeometry): ArmLpaeGeometry | KError {
  if (2 ** g.pgdBits > ARM_LPAE_S2_MAX_CONCAT_PAGES) {
    return kerr("EINVAL", `concatenation is mandatory but the level-${g.startLevel} pgd has ${2 ** g.pgdBits} entries, more than ${ARM_LPAE_S2_MAX_CONCAT_PAGES} tables`);
  }
  return makeGeometry(g.pgShift, g.startLevel + 1, g.pgdBits + g.bitsPerLevel, true);
}

// Table sizes are at most 2^17 bytes: small-integer shifts keep them V8 small integers (2 ** n is a double).
function makeGeometry(pgShift: number, startLevel: number, pgdBits: number, concatenated: boolean): ArmLpaeGeometry {
  const pgdSize = 8 << pgdBits;
  return {
    granule: 1 << pgShift,
    pgShift,
    bitsPerLevel: pgShift - 3,
    levels: ARM_LPAE_MAX_LEVELS - startLevel,
    startLevel,
    pgdBits,
    pgdSize,
    pgdAllocBytes: Math.max(pgdSize, ARM_LPAE_MIN_PGD_BYTES),
    concatenated,
    ptesPerTable: 1 << (pgShift - 3),
  };
}

/** Right shift that selects level l's index bits: `(4 - l) * bits_per_level + 3`. */
// @kernel: ARM_LPAE_LVL_SHIFT
export function armLpaeLvlShift(g: ArmLpaeGeometry, lvl: number): number {
  return (ARM_LPAE_MAX_LEVELS - lvl) * g.bitsPerLevel + 3;
}

/** Block (or page) size mapped by one entry at level l. */
// @kernel: ARM_LPAE_BLOCK_SIZE
export function armLpaeBlockSize(g: ArmLpaeGeometry, lvl: number): number {
  return 2 ** armLpaeLvlShift(g, lvl);
}

/** Number of index bits at level l: the pgd may have more or fewer than a table. */
// @kernel: ARM_LPAE_LVL_IDX
export function armLpaeLvlIdxBits(g: ArmLpaeGeometry, lvl: number): number {
  return lvl === g.startLevel ? g.pgdBits : g.bitsPerLevel;
}
