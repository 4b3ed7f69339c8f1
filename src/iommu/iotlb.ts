/**
 * The IOTLB, modelled: a small direct-mapped cache of translations, in
 * typed arrays, that device DMA fills and the driver's invalidations clear.
 * It exists so that the window lazy invalidation leaves open (DMA-FQ: the
 * page table no longer maps an IOVA, but the IOTLB still does until the
 * flush queue flushes) is visible, as it is in hardware.
 */

export const IOTLB_ENTRIES = 1024;

export class IommuIotlb {
  /** Tag: IOVA page number + 1 (0: invalid). */
  private readonly tags = new Float64Array(IOTLB_ENTRIES);
  /** The cached output page address. */
  private readonly pages = new Float64Array(IOTLB_ENTRIES);
  /** Entries dropped by invalidations since creation (for tests and the snapshot). */
  invalidations = 0;

  constructor(
    /** The translation granule (the domain's smallest page). */
    readonly pageSize: number,
  ) {}

  private slot(pfn: number): number {
    return pfn % IOTLB_ENTRIES;
  }

  /** The cached physical page address for `iova`'s page, or -1 on a miss. */
  lookup(iova: number): number {
    const pfn = Math.floor(iova / this.pageSize);
    const s = this.slot(pfn);
    return this.tags[s] === pfn + 1 ? this.pages[s]! : -1;
  }

  fill(iova: number, pagePa: number): void {
    const pfn = Math.floor(iova / this.pageSize);
    const s = this.slot(pfn);
    this.tags[s] = pfn + 1;
    this.pages[s] = pagePa;
  }

  /** Drops entries for [start, end] (inclusive byte addresses). */
  invalidateRange(start: number, end: number): void {
    const first = Math.floor(start / this.pageSize);
    const last = Math.floor(end / this.pageSize);
    if (last - first + 1 >= IOTLB_ENTRIES) {
      this.invalidateAll();
      return;
    }
    for (let pfn = first; pfn <= last; pfn++) {
      const s = this.slot(pfn);
      if (this.tags[s] === pfn + 1) {
        this.tags[s] = 0;
        this.invalidations++;
      }
    }
  }

  invalidateAll(): void {
    for (let s = 0; s < IOTLB_ENTRIES; s++) {
      if (this.tags[s] !== 0) {
        this.tags[s] = 0;
        this.invalidations++;
      }
    }
  }

  /** Valid entries (for the snapshot). */
  get size(): number {
    let n = 0;
    for (let s = 0; s < IOTLB_ENTRIES; s++) if (this.tags[s] !== 0) n++;
    return n;
  }
}
