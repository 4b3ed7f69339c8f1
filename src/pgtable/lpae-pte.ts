/**
 * Arm LPAE descriptor encoding, as io-pgtable-arm.c produces it.
 *
 * A descriptor is 64 bits, stored as two 32-bit words: `lo` holds bits 31:0,
 * `hi` bits 63:32. Every constant below is named after the kernel macro and
 * split into the word it lives in.
 */
import {
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  IO_PGTABLE_QUIRK_ARM_HD,
  IO_PGTABLE_QUIRK_ARM_NS,
  IO_PGTABLE_QUIRK_ARM_S2FWB,
  type IoPgtableFmt,
} from "./types.ts";
import { SZ_64K } from "./sizes.ts";

/* Bits [1:0]: descriptor type. */
export const ARM_LPAE_PTE_TYPE_MASK = 0x3;
export const ARM_LPAE_PTE_TYPE_BLOCK = 1;
export const ARM_LPAE_PTE_TYPE_TABLE = 3;
export const ARM_LPAE_PTE_TYPE_PAGE = 3;

/* Low-word attribute bits. */
export const ARM_LPAE_PTE_NS = 1 << 5;
export const ARM_LPAE_PTE_AP_UNPRIV = 1 << 6;
export const ARM_LPAE_PTE_AP_RDONLY = 1 << 7;
export const ARM_LPAE_PTE_SH_OS = 2 << 8;
export const ARM_LPAE_PTE_SH_IS = 3 << 8;
export const ARM_LPAE_PTE_AF = 1 << 10;
export const ARM_LPAE_PTE_nG = 1 << 11;
export const ARM_LPAE_PTE_ATTRINDX_SHIFT = 2;
export const ARM_LPAE_PTE_HAP_READ = 1 << 6;
export const ARM_LPAE_PTE_HAP_WRITE = 2 << 6;
export const ARM_LPAE_PTE_MEMATTR_DEV = 0x1 << 2;
export const ARM_LPAE_PTE_MEMATTR_NC = 0x5 << 2;
export const ARM_LPAE_PTE_MEMATTR_FWB_WB = 0x6 << 2;
export const ARM_LPAE_PTE_MEMATTR_OIWB = 0xf << 2;

/* High-word bits, given as the bit's position minus 32. */
/** DBM, bit 51. */
export const ARM_LPAE_PTE_DBM_HI = 1 << (51 - 32);
/** XN (UXN|PXN), bits 54:53. */
export const ARM_LPAE_PTE_XN_HI = 3 << (53 - 32);
/** SW_SYNC, bit 55: software bit, "table pointer already cleaned to memory" (non-coherent walks). */
export const ARM_LPAE_PTE_SW_SYNC_HI = 1 << (55 - 32);
/** NSTABLE, bit 63. */
export const ARM_LPAE_PTE_NSTABLE_HI = 1 << (63 - 32);

/* ARM_LPAE_PTE_ADDR_MASK = GENMASK(47, 12), split into words. */
export const ARM_LPAE_PTE_ADDR_MASK_LO = 0xfffff000;
export const ARM_LPAE_PTE_ADDR_MASK_HI = 0xffff;

/* MAIR attribute indices, their attributes, and the MAIR value the allocator writes. */
export const ARM_LPAE_MAIR_ATTR_IDX_NC = 0;
export const ARM_LPAE_MAIR_ATTR_IDX_CACHE = 1;
export const ARM_LPAE_MAIR_ATTR_IDX_DEV = 2;
export const ARM_LPAE_MAIR_ATTR_IDX_INC_OCACHE = 3;
export const ARM_LPAE_MAIR_ATTR_NC = 0x44;
export const ARM_LPAE_MAIR_ATTR_WBRWA = 0xff;
export const ARM_LPAE_MAIR_ATTR_DEVICE = 0x04;
export const ARM_LPAE_MAIR_ATTR_INC_OWBRWA = 0xf4;
/** 0xf404ff44: attribute n in byte n. */
// @kernel: arm_64_lpae_alloc_pgtable_s1
export const ARM_LPAE_MAIR =
  ARM_LPAE_MAIR_ATTR_NC * 2 ** (8 * ARM_LPAE_MAIR_ATTR_IDX_NC) +
  ARM_LPAE_MAIR_ATTR_WBRWA * 2 ** (8 * ARM_LPAE_MAIR_ATTR_IDX_CACHE) +
  ARM_LPAE_MAIR_ATTR_DEVICE * 2 ** (8 * ARM_LPAE_MAIR_ATTR_IDX_DEV) +
  ARM_LPAE_MAIR_ATTR_INC_OWBRWA * 2 ** (8 * ARM_LPAE_MAIR_ATTR_IDX_INC_OCACHE);

const TWO_32 = 4294967296;
/** Multiplying by 2^-32 is exact and cheaper than dividing by 2^32. */
const TWO_NEG_32 = 2 ** -32;

/** The attribute words of a leaf for `prot`, without type and address. */
// @kernel: arm_lpae_prot_to_pte
export function armLpaeProtToPte(fmt: IoPgtableFmt, quirks: number, prot: number): { lo: number; hi: number } {
  let lo = 0;
  let hi = 0;
  if (fmt === "ARM_64_LPAE_S1") {
    lo |= ARM_LPAE_PTE_nG;
    if (!(prot & IOMMU_WRITE) && prot & IOMMU_READ) lo |= ARM_LPAE_PTE_AP_RDONLY;
    else if (quirks & IO_PGTABLE_QUIRK_ARM_HD) hi |= ARM_LPAE_PTE_DBM_HI;
    if (!(prot & IOMMU_PRIV)) lo |= ARM_LPAE_PTE_AP_UNPRIV;
    if (prot & IOMMU_MMIO) lo |= ARM_LPAE_MAIR_ATTR_IDX_DEV << ARM_LPAE_PTE_ATTRINDX_SHIFT;
    else if (prot & IOMMU_CACHE) lo |= ARM_LPAE_MAIR_ATTR_IDX_CACHE << ARM_LPAE_PTE_ATTRINDX_SHIFT;
  } else {
    if (prot & IOMMU_READ) lo |= ARM_LPAE_PTE_HAP_READ;
    if (prot & IOMMU_WRITE) lo |= ARM_LPAE_PTE_HAP_WRITE;
    if (prot & IOMMU_MMIO) lo |= ARM_LPAE_PTE_MEMATTR_DEV;
    else if (prot & IOMMU_CACHE) lo |= quirks & IO_PGTABLE_QUIRK_ARM_S2FWB ? ARM_LPAE_PTE_MEMATTR_FWB_WB : ARM_LPAE_PTE_MEMATTR_OIWB;
    else lo |= ARM_LPAE_PTE_MEMATTR_NC;
  }
  lo |= prot & IOMMU_CACHE ? ARM_LPAE_PTE_SH_IS : ARM_LPAE_PTE_SH_OS;
  if (prot & IOMMU_NOEXEC) hi |= ARM_LPAE_PTE_XN_HI;
  if (quirks & IO_PGTABLE_QUIRK_ARM_NS) lo |= ARM_LPAE_PTE_NS;
  lo |= ARM_LPAE_PTE_AF;
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

/** ATTRINDX, bits 4:2 of a stage-1 leaf. */
const ARM_LPAE_PTE_ATTRINDX_MASK = 0x7 << ARM_LPAE_PTE_ATTRINDX_SHIFT;
/** MemAttr, bits 5:2 of a stage-2 leaf. */
const ARM_LPAE_PTE_MEMATTR_MASK = 0xf << 2;

/**
 * The access a leaf grants, as IOMMU_* bits: armLpaeProtToPte read back the
 * way the SMMU reads the descriptor. Stage 1 has no read permission (every
 * valid leaf is readable) and AP[2] (AP_RDONLY) withholds write, unless
 * hardware dirty management is on (IO_PGTABLE_QUIRK_ARM_HD) and DBM is set:
 * then AP[2] means "writable, clean" and a write is allowed (the SMMU clears
 * AP[2]). AP[1] (AP_UNPRIV) clear means privileged only. Stage 2 has S2AP:
 * HAP_READ and HAP_WRITE, each on its own, so a write-only leaf exists. XN
 * (bits 54:53) is IOMMU_NOEXEC at either stage. Table descriptors carry no
 * permissions here (io-pgtable-arm never sets APTable/XNTable).
 */
// @kernel: arm_lpae_prot_to_pte
export function armLpaePteToProt(fmt: IoPgtableFmt, quirks: number, lo: number, hi: number): number {
  let prot = 0;
  if (fmt === "ARM_64_LPAE_S1") {
    prot |= IOMMU_READ;
    if (!(lo & ARM_LPAE_PTE_AP_RDONLY) || (quirks & IO_PGTABLE_QUIRK_ARM_HD && hi & ARM_LPAE_PTE_DBM_HI)) prot |= IOMMU_WRITE;
    if (!(lo & ARM_LPAE_PTE_AP_UNPRIV)) prot |= IOMMU_PRIV;
    const idx = (lo & ARM_LPAE_PTE_ATTRINDX_MASK) >>> ARM_LPAE_PTE_ATTRINDX_SHIFT;
    if (idx === ARM_LPAE_MAIR_ATTR_IDX_DEV) prot |= IOMMU_MMIO;
    else if (idx === ARM_LPAE_MAIR_ATTR_IDX_CACHE) prot |= IOMMU_CACHE;
  } else {
    if (lo & ARM_LPAE_PTE_HAP_READ) prot |= IOMMU_READ;
    if (lo & ARM_LPAE_PTE_HAP_WRITE) prot |= IOMMU_WRITE;
    const attr = lo & ARM_LPAE_PTE_MEMATTR_MASK;
    if (attr === ARM_LPAE_PTE_MEMATTR_DEV) prot |= IOMMU_MMIO;
    else if (attr === ARM_LPAE_PTE_MEMATTR_OIWB || attr === ARM_LPAE_PTE_MEMATTR_FWB_WB) prot |= IOMMU_CACHE;
  }
  if (hi & ARM_LPAE_PTE_XN_HI) prot |= IOMMU_NOEXEC;
  return prot;
}

/**
 * Low word of the output-address field for `paddr`. PA[51:48] is folded into
 * bits 15:12, which are RES0 whenever those PA bits can be set (64K granule).
 */
// @kernel: paddr_to_iopte
export function paddrToIopteLo(paddr: number): number {
  const phi = (paddr * TWO_NEG_32) >>> 0;
  return ((paddr >>> 0) & ARM_LPAE_PTE_ADDR_MASK_LO) | (((phi >>> 16) & 0xf) << 12);
}

/** High word of the output-address field for `paddr`. */
// @kernel: paddr_to_iopte
export function paddrToIopteHi(paddr: number): number {
  return ((paddr * TWO_NEG_32) >>> 0) & ARM_LPAE_PTE_ADDR_MASK_HI;
}

/** The output address held by a descriptor; with a 64K granule bits 15:12 are PA[51:48]. */
// @kernel: iopte_to_paddr
export function iopteToPaddr(lo: number, hi: number, granule: number): number {
  if (granule < SZ_64K) return (hi & ARM_LPAE_PTE_ADDR_MASK_HI) * TWO_32 + ((lo & ARM_LPAE_PTE_ADDR_MASK_LO) >>> 0);
  return ((hi & ARM_LPAE_PTE_ADDR_MASK_HI) + ((lo >>> 12) & 0xf) * 0x10000) * TWO_32 + ((lo & 0xffff0000) >>> 0);
}

/** Leaf test: a page (type 3) at level 3, a block (type 1) above. */
// @kernel: iopte_leaf
export function iopteLeaf(lo: number, lvl: number): boolean {
  return (lo & ARM_LPAE_PTE_TYPE_MASK) === (lvl === 3 ? ARM_LPAE_PTE_TYPE_PAGE : ARM_LPAE_PTE_TYPE_BLOCK);
}

/** Table test: type 3 below level 3. */
// @kernel: iopte_table
export function iopteTable(lo: number, lvl: number): boolean {
  return lvl !== 3 && (lo & ARM_LPAE_PTE_TYPE_MASK) === ARM_LPAE_PTE_TYPE_TABLE;
}
