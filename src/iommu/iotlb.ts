/**
 * The IOTLB, modelled: a small direct-mapped cache of translations, in
 * typed arrays, that device DMA fills and the driver's invalidations clear.
 * It exists so that the window lazy invalidation leaves open (DMA-FQ: the
 * page table no longer maps an IOVA, but the IOTLB still does until the
 * flush queue flushes) is visible, as it is in hardware. An entry holds the
 * permissions of the leaf it was filled from beside the output page, as a
 * TLB entry does: a cached translation is checked against its cached
 * permissions, not the table's current ones.
 */

export const IOTLB_ENTRIES = 1024;

export class IommuIotlb {
  /** Tag: IOVA page number + 1 (0: invalid). */
  private readonly tags = new Float64Array(IOTLB_ENTRIES);
  /** The cached output page address. */
  private readonly pages = new Float64Array(IOTLB_ENTRIES);
  /** The cached permissions (IOMMU_* bits of the leaf, as the table's iovaProt read them). */
  private readonly prots = new Uint8Array(IOTLB_ENTRIES);

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

  /** The cached permissions for `iova`'s page, or -1 on a miss. */
  lookupProt(iova: number): number {
    const pfn = Math.floor(iova / this.pageSize);
    const s = this.slot(pfn);
    return this.tags[s] === pfn + 1 ? this.prots[s]! : -1;
  }

  /** Cache the translation of `iova`'s page: its output page address and the leaf's permissions. */
  fill(iova: number, pagePa: number, prot: number): void {
    const pfn = Math.floor(iova / this.pageSize);
    const s = this.slot(pfn);
    this.tags[s] = pfn + 1;
    this.pages[s] = pagePa;
    this.prots[s] = prot;
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
      if (this.tags[s] === pfn + 1) this.tags[s] = 0;
    }
  }

  invalidateAll(): void {
    this.tags.fill(0);
  }

  /** Valid entries (for the snapshot). */
  get size(): number {
    let n = 0;
    for (let s = 0; s < IOTLB_ENTRIES; s++) if (this.tags[s] !== 0) n++;
    return n;
  }
}
