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
 * The mock checks nothing a real table would: it ignores prot, overwrites
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
const TWO_32 = 4294967296;

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
  return new MockPgtable(cfg, new TablePool(CHUNK_BYTES, tableBase, 1));
}

class MockPgtable implements MockIoPgtable {
  readonly fmt = "IOMMUFD_MOCK" as const;
  readonly cfg: IoPgtableCfg;

  private readonly pool: TablePool;
  /** Chunk number (index / 512) -> word offset of the chunk in the pool. */
  private readonly chunks = new Map<number, number>();
  /** Live entries per chunk, indexed by the chunk's page number in the pool. */
  private chunkLive = new Uint16Array(16);
  private readonly hugeIova: boolean;
  private readonly onFinding: PgtableFindingHandler | null;
  private entries = 0;

  constructor(cfg: IoPgtableCfg, pool: TablePool) {
    this.cfg = cfg;
    this.pool = pool;
    this.hugeIova = cfg.pgsizeBitmap !== MOCK_IO_PAGE_SIZE;
    this.onFinding = cfg.onFinding;
  }

  tablePages(): number {
    return this.pool.allocations;
  }

  tableBytes(): number {
    return this.pool.bytes;
  }

  // @kernel: mock_domain_map_pages
  mapPages(iova: number, paddr: number, pgsize: number, pgcount: number, _prot: number, mapped: MappedBytes): 0 | KError {
    if (!this.sizeOk(iova, pgsize, "map_pages")) return kerr("EINVAL", `mock pgsize ${hex(pgsize)} is not a positive multiple of ${hex(MOCK_IO_PAGE_SIZE)}`);
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
  unmapPages(iova: number, pgsize: number, pgcount: number, _gather: IommuIotlbGather | null): number {
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
    if (iova % MOCK_IO_PAGE_SIZE !== 0) this.report("mock-iova-to-phys", iova, `iova_to_phys: iova ${hex(iova)} is not ${hex(MOCK_IO_PAGE_SIZE)}-aligned`);
    const p = this.slot(Math.floor(iova / MOCK_IO_PAGE_SIZE));
    const w = this.pool.words;
    if (p < 0 || !(w[p + 1]! & MOCK_PRESENT_HI)) {
      this.report("mock-iova-to-phys", iova, `iova_to_phys: nothing mapped at ${hex(iova)}`);
      return 0;
    }
    return ((w[p + 1]! & MOCK_PFN_HI_MASK) * TWO_32 + w[p]!) * MOCK_IO_PAGE_SIZE;
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
    for (const off of this.chunks.values()) this.pool.free(off, 1, CHUNK_BYTES);
    this.chunks.clear();
    this.entries = 0;
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
    const off = this.chunks.get(Math.floor(index / CHUNK_ENTRIES));
    return off === undefined ? -1 : off + 2 * (index % CHUNK_ENTRIES);
  }

  /** xa_store: returns whether the slot was occupied. */
  private store(index: number, lo: number, hi: number): boolean {
    const key = Math.floor(index / CHUNK_ENTRIES);
    let off = this.chunks.get(key);
    if (off === undefined) {
      off = this.pool.alloc(1, CHUNK_BYTES);
      this.chunks.set(key, off);
      const page = off / this.pool.pageWords;
      if (page >= this.chunkLive.length) {
        const grown = new Uint16Array(this.chunkLive.length * 2 + page);
        grown.set(this.chunkLive);
        this.chunkLive = grown;
      }
      this.chunkLive[page] = 0;
    }
    const p = off + 2 * (index % CHUNK_ENTRIES);
    const w = this.pool.words;
    const had = (w[p + 1]! & MOCK_PRESENT_HI) !== 0;
    w[p] = lo;
    w[p + 1] = (hi | MOCK_PRESENT_HI) >>> 0;
    if (!had) {
      this.chunkLive[off / this.pool.pageWords]!++;
      this.entries++;
    }
    return had;
  }

  /** xa_erase: clears the slot, returns the old high word (0 if it was empty); frees an emptied chunk. */
  private erase(index: number): number {
    const key = Math.floor(index / CHUNK_ENTRIES);
    const off = this.chunks.get(key);
    if (off === undefined) return 0;
    const p = off + 2 * (index % CHUNK_ENTRIES);
    const w = this.pool.words;
    const oldHi = w[p + 1]!;
    if (!(oldHi & MOCK_PRESENT_HI)) return 0;
    w[p] = 0;
    w[p + 1] = 0;
    this.entries--;
    const page = off / this.pool.pageWords;
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
