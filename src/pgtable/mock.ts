/**
 * The iommufd selftest mock domain's page table (drivers/iommu/iommufd/selftest.c,
 * the xarray version).
 *
 * The kernel keeps an xarray indexed by `iova / MOCK_IO_PAGE_SIZE` whose
 * values are `paddr / MOCK_IO_PAGE_SIZE` with flag bits above the pfn:
 * START/LAST (one shared bit) marks the first and the last entry of a map
 * call, DIRTY is the fake dirty bit, HUGE marks entries written for a
 * MOCK_HUGE_PAGE_SIZE page. The model stores the same 64-bit values as two
 * 32-bit words in 4 KiB chunks of 512 entries (a sparse radix: a directory
 * from chunk number to chunk, chunks freed when they empty, like xarray
 * nodes), with bit 63 standing for "present" (xarray's non-NULL).
 *
 * The mock checks nothing a real table would: it ignores prot (an entry
 * grants read and write, whatever the map asked for), overwrites
 * existing entries (with a WARN), unmaps holes silently and always returns
 * the full size, and its iova_to_phys returns the page address without the
 * offset. Its WARNs are how the selftest catches core bugs; the model turns
 * them into findings.
 */
import { kerr, type KError } from "../lib/errno.ts";
import type { IommuIotlbGather } from "./gather.ts";
import { TABLE_POOL_DEFAULT_BASE, TablePool } from "./pool.ts";
import { PAGE_SIZE, SZ_4K, bitmapOf, hex } from "./sizes.ts";
import {
  IOMMU_READ,
  IOMMU_WRITE,
  NOOP_FLUSH_OPS,
  type IoPgtableCfg,
  type IoPgtableCfgInit,
  type IoPgtableOps,
  type MappedBytes,
  type PgtableFindingHandler,
  type PgtableFindingKind,
} from "./types.ts";

export const MOCK_IO_PAGE_SIZE = PAGE_SIZE / 2;
export const MOCK_HUGE_PAGE_SIZE = 512 * MOCK_IO_PAGE_SIZE;
/** The mock domain's aperture (domain geometry; the table itself does not enforce it). */
export const MOCK_APERTURE_START = 1 << 24;
export const MOCK_APERTURE_LAST = 2 ** 31 - 1;

/* Flag bits of an entry value: bits 53, 54, 55 of the 64-bit value, i.e. the high word's bits 21..23. */
export const MOCK_PFN_START_IOVA_HI = 1 << (53 - 32);
/** The same bit as START: a one-page map is both. */
export const MOCK_PFN_LAST_IOVA_HI = MOCK_PFN_START_IOVA_HI;
export const MOCK_PFN_DIRTY_IOVA_HI = 1 << (54 - 32);
export const MOCK_PFN_HUGE_IOVA_HI = 1 << (55 - 32);
/** Model-only: the entry exists (xarray slot non-NULL). */
const MOCK_PRESENT_HI = 1 << 31;
const MOCK_PFN_HI_MASK = (1 << 21) - 1;

/** IOMMU_DIRTY_NO_CLEAR: report dirty pages without clearing them. */
export const IOMMU_DIRTY_NO_CLEAR = 1 << 0;

/** Addresses the mock can hold: every integer a JS number represents exactly. */
const MOCK_ADDRESS_BITS = 53;
const CHUNK_ENTRIES = 512;
const CHUNK_BYTES = SZ_4K;
const CHUNK_WORDS = CHUNK_BYTES / 4;
const TWO_32 = 4294967296;
const TWO_NEG_32 = 2 ** -32;
/* The fast paths multiply by reciprocals of powers of two (exact) where they would divide: V8 divides small integers with idiv. */
const INV_PAGE = 1 / MOCK_IO_PAGE_SIZE;
const INV_CHUNK = 1 / CHUNK_ENTRIES;
/** A chunk's entries cover 1 MiB of IOVA. */
const INV_CHUNK_SPAN = INV_CHUNK * INV_PAGE;
/** log2 of MOCK_IO_PAGE_SIZE, and of CHUNK_WORDS. */
const MOCK_PAGE_SHIFT = 11;
const CHUNK_WORDS_SHIFT = 10;
/** The fast paths take at most this many entries (2 TiB of IOVA) in one call, a small integer. */
const MAX_FAST_ENTRIES = 2 ** 30;
/** Chunk numbers below this (IOVAs below 64 GiB: the aperture and far beyond) are looked up in an array. */
const DENSE_CHUNKS = 1 << 16;

/** A whole, non-negative multiple of MOCK_IO_PAGE_SIZE below 2^53 (the fast paths' addresses and page sizes). */
function isWholeIndex(iova: number): boolean {
  return iova >= 0 && iova <= Number.MAX_SAFE_INTEGER && iova - Math.floor(iova * INV_PAGE) * MOCK_IO_PAGE_SIZE === 0;
}

/**
 * The xarray's upper levels, reduced to what the mock needs: chunk number
 * (entry index / 512) -> word offset of the chunk in the pool, -1 if absent.
 * An array serves the chunk numbers below DENSE_CHUNKS (a Map lookup per
 * call cost more than the rest of the call), a Map the others.
 */
class ChunkDirectory {
  private dense = new Int32Array(16).fill(-1);
  private readonly sparse = new Map<number, number>();

  get(key: number): number {
    if (key >= 0 && key < this.dense.length) return this.dense[key]!;
    if (key >= 0 && key < DENSE_CHUNKS) return -1;
    return this.sparse.get(key) ?? -1;
  }

  set(key: number, off: number): void {
    if (key >= 0 && key < DENSE_CHUNKS) {
      if (key >= this.dense.length) {
        let len = this.dense.length * 2;
        while (len <= key) len *= 2;
        const d = new Int32Array(Math.min(len, DENSE_CHUNKS)).fill(-1);
        d.set(this.dense);
        this.dense = d;
      }
      this.dense[key] = off;
    } else {
      this.sparse.set(key, off);
    }
  }

  delete(key: number): void {
    if (key >= 0 && key < DENSE_CHUNKS) {
      if (key < this.dense.length) this.dense[key] = -1;
    } else {
      this.sparse.delete(key);
    }
  }

  /** Every chunk's word offset. */
  offsets(): number[] {
    const out: number[] = [];
    for (const off of this.dense) if (off >= 0) out.push(off);
    for (const off of this.sparse.values()) out.push(off);
    return out;
  }

  clear(): void {
    this.dense.fill(-1);
    this.sparse.clear();
  }
}

export interface MockIoPgtable extends IoPgtableOps {
  readonly fmt: "IOMMUFD_MOCK";
  /**
   * Report and (unless IOMMU_DIRTY_NO_CLEAR) clear dirty pages in
   * [iova, iova+size); `record(iova, length)` is iommu_dirty_bitmap_record.
   */
  readAndClearDirty(iova: number, size: number, flags: number, record: (iova: number, length: number) => void): void;
  /** Set the DIRTY bit of the entry at iova, as the selftest's IOMMU_TEST_OP_DIRTY does; false if unmapped. */
  setDirty(iova: number): boolean;
}

/** Tests: make ops take the entry-by-entry code for every call, to compare it with the chunk-wise fast paths. */
export function mockGeneralPathsOnly(ops: MockIoPgtable): void {
  if (ops instanceof MockPgtable) ops.useGeneralPathsOnly();
}

/** Allocate a mock table; the bitmap must be MOCK_IO_PAGE_SIZE, optionally with MOCK_HUGE_PAGE_SIZE. */
// @kernel: mock_domain_alloc_paging
export function allocMockPgtable(init: IoPgtableCfgInit): MockIoPgtable | KError {
  const small = MOCK_IO_PAGE_SIZE;
  const huge = bitmapOf(MOCK_IO_PAGE_SIZE, MOCK_HUGE_PAGE_SIZE);
  if (init.pgsizeBitmap !== small && init.pgsizeBitmap !== huge) {
    return kerr("EINVAL", `the mock's page sizes are ${hex(small)} or ${hex(huge)} (with MOCK_FLAGS_DEVICE_HUGE_IOVA), not ${hex(init.pgsizeBitmap)}`);
  }
  if (init.quirks) return kerr("EINVAL", `the mock table takes no io-pgtable quirks (got ${hex(init.quirks)})`);
  const tableBase = init.tableBase ?? TABLE_POOL_DEFAULT_BASE;
  const cfg: IoPgtableCfg = {
    quirks: 0,
    pgsizeBitmap: init.pgsizeBitmap,
    ias: MOCK_ADDRESS_BITS,
    oas: MOCK_ADDRESS_BITS,
    coherentWalk: true,
    tlb: init.tlb ?? NOOP_FLUSH_OPS,
    onFinding: init.onFinding ?? null,
    tableBase,
  };
  return new MockPgtable(cfg, new TablePool(CHUNK_BYTES, tableBase, 1, init.memory));
}

class MockPgtable implements MockIoPgtable {
  readonly fmt = "IOMMUFD_MOCK" as const;
  readonly cfg: IoPgtableCfg;

  private readonly pool: TablePool;
  /** Chunk number (index / 512) -> word offset of the chunk in the pool. */
  private readonly chunks = new ChunkDirectory();
  /** Live entries per chunk, indexed by the chunk's page number in the pool. */
  private chunkLive = new Uint16Array(16);
  private readonly hugeIova: boolean;
  private readonly onFinding: PgtableFindingHandler | null;
  private entries = 0;
  /** The chunk-wise fast paths apply (tests turn them off to compare). */
  private fast = true;

  constructor(cfg: IoPgtableCfg, pool: TablePool) {
    this.cfg = cfg;
    this.pool = pool;
    this.hugeIova = cfg.pgsizeBitmap !== MOCK_IO_PAGE_SIZE;
    this.onFinding = cfg.onFinding;
  }

  /** See mockGeneralPathsOnly. */
  useGeneralPathsOnly(): void {
    this.fast = false;
  }

  /** Each present entry maps MOCK_IO_PAGE_SIZE (a huge page is 512 entries, each marked HUGE). */
  leafBytes(): number {
    return this.entries * MOCK_IO_PAGE_SIZE;
  }

  tablePages(): number {
    return this.pool.allocations;
  }

  tableBytes(): number {
    return this.pool.bytes;
  }

  /*
   * map_pages, unmap_pages and iova_to_phys for whole, 2 KiB-aligned
   * addresses and whole counts (every call the IOMMU core makes) work chunk
   * by chunk: one directory lookup per 512 entries, the pfn advanced in
   * int32 halves. A map over present entries (which WARNs entry by entry)
   * and every unusual argument go to the general code.
   */

  // @kernel: mock_domain_map_pages
  mapPages(iova: number, paddr: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError {
    // The bitmap's sizes (2K, 1M) and a whole count: n entries of 2K.
    const n = pgcount * ((pgsize === MOCK_IO_PAGE_SIZE ? 1 : pgsize === MOCK_HUGE_PAGE_SIZE ? CHUNK_ENTRIES : 0) | 0);
    if (this.fast && n >= 1 && (pgcount | 0) === pgcount && n <= MAX_FAST_ENTRIES && isWholeIndex(iova) && paddr >= 0 && paddr <= Number.MAX_SAFE_INTEGER && Math.floor(paddr) === paddr) {
      const pfn = Math.floor(paddr * INV_PAGE);
      const huge = pgsize !== MOCK_IO_PAGE_SIZE ? MOCK_PFN_HUGE_IOVA_HI : 0;
      const done = this.mapInChunk(iova, pfn, n, huge);
      if (done > 0 || (done < 0 && this.mapFast(iova, pfn, n, huge))) {
        mapped.bytes += n * MOCK_IO_PAGE_SIZE;
        return 0;
      }
    }
    return this.mapPagesGeneral(iova, paddr, pgsize, pgcount, prot, mapped);
  }

  /** mapPages with 2 KiB frame numbers (see IoPgtableOps.mapPagesPfn). */
  // @kernel: mock_domain_map_pages
  mapPagesPfn(iovaPfn: number, paddrPfn: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes): 0 | KError {
    return this.mapPages(iovaPfn * MOCK_IO_PAGE_SIZE, paddrPfn * MOCK_IO_PAGE_SIZE, pgsize, pgcount, prot, mapped);
  }

  /** unmapPages with a 2 KiB frame number (see IoPgtableOps.mapPagesPfn). */
  // @kernel: mock_domain_unmap_pages
  unmapPagesPfn(iovaPfn: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number {
    return this.unmapPages(iovaPfn * MOCK_IO_PAGE_SIZE, pgsize, pgcount, gather);
  }

  /**
   * mapFast for entries within one chunk (one 4K page is two entries),
   * small enough for V8 to inline: 1 when stored, 0 having stored nothing
   * (an entry is present), -1 when they span chunks.
   */
  // @kernel: mock_domain_map_pages
  private mapInChunk(iova: number, pfn: number, n: number, huge: number): number {
    const first = ((iova | 0) >>> MOCK_PAGE_SHIFT) & (CHUNK_ENTRIES - 1);
    if (first + n > CHUNK_ENTRIES) return -1;
    const key = Math.floor(iova * INV_CHUNK_SPAN);
    let off = this.chunks.get(key);
    let w = this.pool.i32;
    if (off >= 0) {
      for (let q = off + 2 * first + 1, e = q + 2 * n; q < e; q += 2) if (w[q]! < 0) return 0;
    } else {
      off = this.chunkFor(key);
      // No memory for the chunk: stored nothing (the general code fails it with ENOMEM).
      if (off < 0) return 0;
      w = this.pool.i32;
    }
    let lo = pfn | 0;
    let hi = Math.floor(pfn * TWO_NEG_32) & MOCK_PFN_HI_MASK;
    for (let q = off + 2 * first, e = q + 2 * n, k = 0; q < e; q += 2, k++) {
      w[q] = lo;
      w[q + 1] = hi | huge | MOCK_PRESENT_HI | (k === 0 || k === n - 1 ? MOCK_PFN_START_IOVA_HI : 0);
      lo = (lo + 1) | 0;
      if (lo === 0) hi = (hi + 1) & MOCK_PFN_HI_MASK;
    }
    this.chunkLive[off >> CHUNK_WORDS_SHIFT]! += n;
    this.entries += n;
    return 1;
  }

  /**
   * Store n entries from iova, pfns from pfn: START on the first, LAST on
   * the last, `huge` on all. False having stored nothing if any of them is
   * present (the general code then stores them one by one, WARNing).
   */
  // @kernel: mock_domain_map_pages
  private mapFast(iova: number, pfn: number, n: number, huge: number): boolean {
    let lo = pfn | 0;
    let hi = Math.floor(pfn * TWO_NEG_32) & MOCK_PFN_HI_MASK;
    // A chunk covers 1 MiB of IOVA: its number, and the entry's place in it from the low address word.
    let key = Math.floor(iova * INV_CHUNK_SPAN);
    let first = ((iova | 0) >>> MOCK_PAGE_SHIFT) & (CHUNK_ENTRIES - 1);
    const w = this.pool.i32;
    let missing = 0;
    for (let k = 0; k < n; key++, first = 0) {
      const run = Math.min(CHUNK_ENTRIES - first, n - k);
      const off = this.chunks.get(key);
      if (off >= 0) {
        for (let q = off + 2 * first + 1, e = q + 2 * run; q < e; q += 2) if (w[q]! < 0) return false;
      } else missing++;
      k += run;
    }
    // The chunks it needs do not all fit in the memory budget: stored nothing (the general code fails it with ENOMEM).
    if (missing > 0 && !this.pool.canAlloc(missing)) return false;
    key = Math.floor(iova * INV_CHUNK_SPAN);
    first = ((iova | 0) >>> MOCK_PAGE_SHIFT) & (CHUNK_ENTRIES - 1);
    for (let k = 0; k < n; key++, first = 0) {
      const run = Math.min(CHUNK_ENTRIES - first, n - k);
      const off = this.chunkFor(key);
      const w32 = this.pool.i32;
      for (let q = off + 2 * first, e = q + 2 * run; q < e; q += 2, k++) {
        w32[q] = lo;
        w32[q + 1] = hi | huge | MOCK_PRESENT_HI | (k === 0 || k === n - 1 ? MOCK_PFN_START_IOVA_HI : 0);
        lo = (lo + 1) | 0;
        if (lo === 0) hi = (hi + 1) & MOCK_PFN_HI_MASK;
      }
      this.chunkLive[off >> CHUNK_WORDS_SHIFT]! += run;
      this.entries += run;
    }
    return true;
  }

  /** ENOMEM if the chunks a map of `len` bytes from `iova` would add do not all fit in the memory budget; else null. */
  // @kernel: mock_domain_map_pages (xa_store's -ENOMEM)
  private chunksMissing(iova: number, len: number): KError | null {
    if (!(len > 0)) return null;
    const firstKey = Math.floor(Math.floor(iova / MOCK_IO_PAGE_SIZE) * INV_CHUNK);
    const lastKey = Math.floor(Math.floor((iova + len - 1) / MOCK_IO_PAGE_SIZE) * INV_CHUNK);
    let missing = 0;
    for (let key = firstKey; key <= lastKey; key++) if (this.chunks.get(key) < 0) missing++;
    if (missing === 0 || this.pool.canAlloc(missing)) return null;
    this.report("table-alloc-failed", iova, `map_pages: no page-table memory left for ${missing} chunk(s) (the budget of ${this.pool.memory.limit} bytes is spent)`);
    return kerr("ENOMEM", `no page-table memory left to map ${hex(len)} bytes at ${hex(iova)}: the page-table memory limit of ${this.pool.memory.limit} bytes is reached`);
  }

  /** The chunk for chunk number key, allocated if absent (xa_store's node allocation); -1 when the memory budget is spent. */
  private chunkFor(key: number): number {
    let off = this.chunks.get(key);
    if (off < 0) {
      off = this.pool.alloc(1, CHUNK_BYTES);
      if (off < 0) return -1;
      this.chunks.set(key, off);
      const page = off / CHUNK_WORDS;
      if (page >= this.chunkLive.length) {
        const grown = new Uint16Array(this.chunkLive.length * 2 + page);
        grown.set(this.chunkLive);
        this.chunkLive = grown;
      }
      this.chunkLive[page] = 0;
    }
    return off;
  }

  /** map_pages entry by entry: every call the fast path does not take. */
  // @kernel: mock_domain_map_pages
  private mapPagesGeneral(iova: number, paddr: number, pgsize: number, pgcount: number, _prot: number, mapped: MappedBytes): 0 | KError {
    if (!this.sizeOk(iova, pgsize, "map_pages")) return kerr("EINVAL", `mock pgsize ${hex(pgsize)} is not a positive multiple of ${hex(MOCK_IO_PAGE_SIZE)}`);
    // xa_store's nodes, counted before anything is stored: a map they do not all fit fails at once with ENOMEM.
    const nomem = this.chunksMissing(iova, pgsize * pgcount);
    if (nomem !== null) return nomem;
    const huge = pgsize !== MOCK_IO_PAGE_SIZE ? MOCK_PFN_HUGE_IOVA_HI : 0;
    let flags = MOCK_PFN_START_IOVA_HI;
    for (; pgcount > 0; pgcount--) {
      for (let cur = 0; cur !== pgsize; cur += MOCK_IO_PAGE_SIZE) {
        if (pgcount === 1 && cur + MOCK_IO_PAGE_SIZE === pgsize) flags = MOCK_PFN_LAST_IOVA_HI;
        flags |= huge;
        const pfn = Math.floor(paddr / MOCK_IO_PAGE_SIZE);
        if (this.store(Math.floor(iova / MOCK_IO_PAGE_SIZE), pfn >>> 0, (Math.floor(pfn / TWO_32) & MOCK_PFN_HI_MASK) | flags)) {
          this.report("mock-map-overwrite", iova, `map_pages: iova ${hex(iova)} was already mapped; the entry was overwritten`);
        }
        iova += MOCK_IO_PAGE_SIZE;
        paddr += MOCK_IO_PAGE_SIZE;
        mapped.bytes += MOCK_IO_PAGE_SIZE;
        flags = 0;
      }
    }
    return 0;
  }

  // @kernel: mock_domain_unmap_pages
  unmapPages(iova: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number {
    const n = pgcount * ((pgsize === MOCK_IO_PAGE_SIZE ? 1 : pgsize === MOCK_HUGE_PAGE_SIZE ? CHUNK_ENTRIES : 0) | 0);
    if (this.fast && n >= 1 && (pgcount | 0) === pgcount && n <= MAX_FAST_ENTRIES && isWholeIndex(iova)) {
      this.unmapFast(iova, n);
      return n * MOCK_IO_PAGE_SIZE;
    }
    return this.unmapPagesGeneral(iova, pgsize, pgcount, gather);
  }

  /**
   * Erase n entries from iova: the first and the last one by one, for the
   * START/LAST checks in the order the entry-by-entry loop makes them, the
   * ones between a chunk run at a time.
   */
  // @kernel: mock_domain_unmap_pages
  private unmapFast(iova: number, n: number): void {
    // Two present entries in one chunk (a 4K page, what the DMA layer unmaps most): one directory lookup.
    if (n === 2 && this.unmapPair(iova)) return;
    this.unmapEnd(iova, iova, 0, n);
    if (n > 2) this.eraseRange(iova + MOCK_IO_PAGE_SIZE, n - 2);
    if (n > 1) this.unmapEnd(iova, iova + (n - 1) * MOCK_IO_PAGE_SIZE, n - 1, n);
  }

  /** unmapFast of two entries that are both present in the same chunk: true when done, false having changed nothing. */
  private unmapPair(iova: number): boolean {
    const idx = ((iova | 0) >>> MOCK_PAGE_SHIFT) & (CHUNK_ENTRIES - 1);
    if (idx === CHUNK_ENTRIES - 1) return false;
    const key = Math.floor(iova * INV_CHUNK_SPAN);
    const off = this.chunks.get(key);
    if (off < 0) return false;
    const w = this.pool.i32;
    const p = off + 2 * idx;
    const old0 = w[p + 1]!;
    const old1 = w[p + 3]!;
    if (old0 >= 0 || old1 >= 0) return false;
    w[p] = 0;
    w[p + 1] = 0;
    w[p + 2] = 0;
    w[p + 3] = 0;
    this.entries -= 2;
    if ((this.chunkLive[off >> CHUNK_WORDS_SHIFT]! -= 2) === 0) {
      this.chunks.delete(key);
      this.pool.free(off, 1, CHUNK_BYTES);
    }
    if (!this.hugeIova) {
      this.checkUnmapEnds(iova, 0, 2, old0);
      this.checkUnmapEnds(iova, 1, 2, old1);
    }
    return true;
  }

  /** xa_erase of the entry at `at`, the k-th of n from iova, with the loop's check on it. */
  private unmapEnd(iova: number, at: number, k: number, n: number): void {
    const key = Math.floor(at * INV_CHUNK_SPAN);
    const off = this.chunks.get(key);
    if (off < 0) return;
    const w = this.pool.i32;
    const p = off + 2 * (((at | 0) >>> MOCK_PAGE_SHIFT) & (CHUNK_ENTRIES - 1));
    const old = w[p + 1]!;
    if (old >= 0) return;
    w[p] = 0;
    w[p + 1] = 0;
    this.entries--;
    if (--this.chunkLive[off >> CHUNK_WORDS_SHIFT]! === 0) {
      this.chunks.delete(key);
      this.pool.free(off, 1, CHUNK_BYTES);
    }
    // With huge pages the core switches page size mid-range, so the check cannot hold.
    if (!this.hugeIova) this.checkUnmapEnds(iova, k, n, old);
  }

  /** xa_erase of count entries from iova, a chunk run at a time, freeing the chunks that empty. */
  private eraseRange(iova: number, count: number): void {
    let key = Math.floor(iova * INV_CHUNK_SPAN);
    let first = ((iova | 0) >>> MOCK_PAGE_SHIFT) & (CHUNK_ENTRIES - 1);
    for (let k = 0; k < count; key++, first = 0) {
      const run = Math.min(CHUNK_ENTRIES - first, count - k);
      k += run;
      const off = this.chunks.get(key);
      if (off < 0) continue;
      const w = this.pool.i32;
      let erased = 0;
      for (let q = off + 2 * first, e = q + 2 * run; q < e; q += 2) {
        if (w[q + 1]! < 0) {
          w[q] = 0;
          w[q + 1] = 0;
          erased++;
        }
      }
      const page = off >> CHUNK_WORDS_SHIFT;
      this.entries -= erased;
      if (erased > 0 && (this.chunkLive[page]! -= erased) === 0) {
        this.chunks.delete(key);
        this.pool.free(off, 1, CHUNK_BYTES);
      }
    }
  }

  /** The general loop's START (first entry) and LAST (last entry) checks on an erased entry's old high word. */
  private checkUnmapEnds(iova: number, k: number, n: number, old: number): void {
    // The messages cost more than the rest of a call: only for a listener.
    if (this.onFinding === null) return;
    const at = iova + k * MOCK_IO_PAGE_SIZE;
    if (k === 0 && !(old & MOCK_PFN_START_IOVA_HI)) this.report("mock-unmap-split", at, `unmap_pages: unmap starts at ${hex(at)}, inside an earlier map (no START mark)`);
    if (k === n - 1 && !(old & MOCK_PFN_LAST_IOVA_HI)) this.report("mock-unmap-split", at, `unmap_pages: unmap ends at ${hex(at + MOCK_IO_PAGE_SIZE)}, inside an earlier map (no LAST mark)`);
  }

  /** unmap_pages entry by entry: every call the fast path does not take. */
  // @kernel: mock_domain_unmap_pages
  private unmapPagesGeneral(iova: number, pgsize: number, pgcount: number, _gather: IommuIotlbGather | null): number {
    if (!this.sizeOk(iova, pgsize, "unmap_pages")) return 0;
    let first = true;
    let ret = 0;
    for (; pgcount > 0; pgcount--) {
      for (let cur = 0; cur !== pgsize; cur += MOCK_IO_PAGE_SIZE) {
        const old = this.erase(Math.floor(iova / MOCK_IO_PAGE_SIZE));
        // With huge pages the core switches page size mid-range, so the check cannot hold.
        if (!this.hugeIova) {
          if (first) {
            if (old !== 0 && !(old & MOCK_PFN_START_IOVA_HI)) {
              this.report("mock-unmap-split", iova, `unmap_pages: unmap starts at ${hex(iova)}, inside an earlier map (no START mark)`);
            }
            first = false;
          }
          if (pgcount === 1 && cur + MOCK_IO_PAGE_SIZE === pgsize && old !== 0 && !(old & MOCK_PFN_LAST_IOVA_HI)) {
            this.report("mock-unmap-split", iova, `unmap_pages: unmap ends at ${hex(iova + MOCK_IO_PAGE_SIZE)}, inside an earlier map (no LAST mark)`);
          }
        }
        iova += MOCK_IO_PAGE_SIZE;
        ret += MOCK_IO_PAGE_SIZE;
      }
    }
    return ret;
  }

  // @kernel: mock_domain_iova_to_phys
  iovaToPhys(iova: number): number {
    if (this.fast && isWholeIndex(iova)) {
      const off = this.chunks.get(Math.floor(iova * INV_CHUNK_SPAN));
      if (off >= 0) {
        const w = this.pool.i32;
        const p = off + 2 * (((iova | 0) >>> MOCK_PAGE_SHIFT) & (CHUNK_ENTRIES - 1));
        const hi = w[p + 1]!;
        if (hi < 0) return ((hi & MOCK_PFN_HI_MASK) * TWO_32 + (w[p]! >>> 0)) * MOCK_IO_PAGE_SIZE;
      }
    }
    return this.iovaToPhysGeneral(iova);
  }

  /** iova_to_phys for a misaligned or unmapped iova: the WARNs, then the same lookup. */
  // @kernel: mock_domain_iova_to_phys
  private iovaToPhysGeneral(iova: number): number {
    if (iova % MOCK_IO_PAGE_SIZE !== 0) this.report("mock-iova-to-phys", iova, `iova_to_phys: iova ${hex(iova)} is not ${hex(MOCK_IO_PAGE_SIZE)}-aligned`);
    const p = this.slot(Math.floor(iova / MOCK_IO_PAGE_SIZE));
    const w = this.pool.words;
    if (p < 0 || !(w[p + 1]! & MOCK_PRESENT_HI)) {
      this.report("mock-iova-to-phys", iova, `iova_to_phys: nothing mapped at ${hex(iova)}`);
      return 0;
    }
    return ((w[p + 1]! & MOCK_PFN_HI_MASK) * TWO_32 + w[p]!) * MOCK_IO_PAGE_SIZE;
  }

  /**
   * The permissions of the entry for iova (IoPgtableOps.iovaProt). The
   * mock's entries hold no permissions: mock_domain_map_pages drops prot,
   * so whatever was asked for, a present entry reads back as read-write.
   * No WARN for an unmapped iova (mock_domain_iova_to_phys would): this is
   * the model's device walk, not a kernel call.
   */
  // @kernel: mock_domain_map_pages
  iovaProt(iova: number): number {
    if (!(iova >= 0 && iova <= Number.MAX_SAFE_INTEGER)) return 0;
    const p = this.slot(Math.floor(iova / MOCK_IO_PAGE_SIZE));
    return p >= 0 && this.pool.words[p + 1]! & MOCK_PRESENT_HI ? IOMMU_READ | IOMMU_WRITE : 0;
  }

  // @kernel: mock_domain_read_and_clear_dirty
  readAndClearDirty(iova: number, size: number, flags: number, record: (iova: number, length: number) => void): void {
    const end = iova + size;
    do {
      let pgsize = MOCK_IO_PAGE_SIZE;
      const p = this.slot(Math.floor(iova / MOCK_IO_PAGE_SIZE));
      if (p < 0 || !(this.pool.words[p + 1]! & MOCK_PRESENT_HI)) {
        iova += pgsize;
        continue;
      }
      if (this.pool.words[p + 1]! & MOCK_PFN_HUGE_IOVA_HI) pgsize = MOCK_HUGE_PAGE_SIZE;
      const head = iova - (iova % pgsize);
      if (this.testAndClearDirty(head, pgsize, flags)) record(iova, pgsize);
      iova += pgsize;
    } while (iova < end);
  }

  // @kernel: iommufd_test_dirty
  setDirty(iova: number): boolean {
    const p = this.slot(Math.floor(iova / MOCK_IO_PAGE_SIZE));
    if (p < 0 || !(this.pool.words[p + 1]! & MOCK_PRESENT_HI)) return false;
    this.pool.words[p + 1] = this.pool.words[p + 1]! | MOCK_PFN_DIRTY_IOVA_HI;
    return true;
  }

  // @kernel: mock_domain_free
  free(): void {
    if (this.entries > 0) this.report("mock-free-nonempty", 0, `domain freed with ${this.entries} entries still mapped`);
    for (const off of this.chunks.offsets()) this.pool.free(off, 1, CHUNK_BYTES);
    this.chunks.clear();
    this.entries = 0;
    this.pool.release();
  }

  /** The kernel WARNs on misalignment and loops forever on a pgsize that is not a multiple of 2K. */
  private sizeOk(iova: number, pgsize: number, op: string): boolean {
    const sizeBad = !(pgsize > 0) || pgsize % MOCK_IO_PAGE_SIZE !== 0;
    if (iova % MOCK_IO_PAGE_SIZE !== 0 || sizeBad) {
      this.report("mock-misaligned", iova, `${op}: iova ${hex(iova)} or pgsize ${hex(pgsize)} is not a multiple of ${hex(MOCK_IO_PAGE_SIZE)}${sizeBad ? "; the kernel would never finish this loop, the model refuses it" : ""}`);
    }
    return !sizeBad;
  }

  // @kernel: mock_test_and_clear_dirty
  private testAndClearDirty(iova: number, pageSize: number, flags: number): boolean {
    const end = iova + pageSize - 1;
    let dirty = false;
    for (let cur = iova; cur < end; cur += MOCK_IO_PAGE_SIZE) {
      const p = this.slot(Math.floor(cur / MOCK_IO_PAGE_SIZE));
      if (p < 0) continue;
      const hi = this.pool.words[p + 1]!;
      if (!(hi & MOCK_PRESENT_HI) || !(hi & MOCK_PFN_DIRTY_IOVA_HI)) continue;
      dirty = true;
      if (!(flags & IOMMU_DIRTY_NO_CLEAR)) this.pool.words[p + 1] = hi & ~MOCK_PFN_DIRTY_IOVA_HI;
    }
    return dirty;
  }

  /** Word offset of entry `index`, or -1 if its chunk does not exist. */
  private slot(index: number): number {
    const key = Math.floor(index * INV_CHUNK);
    const off = this.chunks.get(key);
    return off < 0 ? -1 : off + 2 * (index - key * CHUNK_ENTRIES);
  }

  /** xa_store: returns whether the slot was occupied. */
  private store(index: number, lo: number, hi: number): boolean {
    const key = Math.floor(index * INV_CHUNK);
    const off = this.chunkFor(key);
    const p = off + 2 * (index - key * CHUNK_ENTRIES);
    const w = this.pool.words;
    const had = (w[p + 1]! & MOCK_PRESENT_HI) !== 0;
    w[p] = lo;
    w[p + 1] = (hi | MOCK_PRESENT_HI) >>> 0;
    if (!had) {
      this.chunkLive[off / CHUNK_WORDS]!++;
      this.entries++;
    }
    return had;
  }

  /** xa_erase: clears the slot, returns the old high word (0 if it was empty); frees an emptied chunk. */
  private erase(index: number): number {
    const key = Math.floor(index * INV_CHUNK);
    const off = this.chunks.get(key);
    if (off < 0) return 0;
    const p = off + 2 * (index - key * CHUNK_ENTRIES);
    const w = this.pool.words;
    const oldHi = w[p + 1]!;
    if (!(oldHi & MOCK_PRESENT_HI)) return 0;
    w[p] = 0;
    w[p + 1] = 0;
    this.entries--;
    const page = off / CHUNK_WORDS;
    if (--this.chunkLive[page]! === 0) {
      this.chunks.delete(key);
      this.pool.free(off, 1, CHUNK_BYTES);
    }
    return oldHi;
  }

  private report(kind: PgtableFindingKind, iova: number, message: string): void {
    if (this.onFinding !== null) this.onFinding(kind, iova, message);
  }
}
