/**
 * mmap of the iommufd fd (main.c iommufd_fops_mmap, and the region table
 * driver.c fills with iommufd_viommu_alloc_mmap): a driver publishes a
 * region of pages under an offset; user space maps it with exactly that
 * offset and length, and while it is mapped the owning object is busy.
 */
import { PAGE_SIZE } from "../pgtable/sizes.ts";
import { kerr, type KError } from "../lib/errno.ts";
import type { IommufdCtx, IommufdObject } from "./object.ts";

/** struct iommufd_mmap: a published region. */
export interface IommufdMmapRegion {
  readonly offset: number;
  readonly length: number;
  readonly owner: IommufdObject;
  /** The region's memory, as 32-bit words. */
  readonly words: Uint32Array;
}

/** A live mapping of a region (a VMA). */
export interface IommufdVma {
  readonly region: IommufdMmapRegion;
  unmapped: boolean;
}

const tables = new WeakMap<IommufdCtx, Map<number, IommufdMmapRegion>>();

function table(ictx: IommufdCtx): Map<number, IommufdMmapRegion> {
  let t = tables.get(ictx);
  if (t === undefined) tables.set(ictx, (t = new Map()));
  return t;
}

/** Publishes `words` under the lowest free page-aligned offset from PAGE_SIZE; the offset. */
// @kernel: _iommufd_alloc_mmap
export function iommufdAllocMmap(ictx: IommufdCtx, owner: IommufdObject, length: number, words: Uint32Array): number {
  const t = table(ictx);
  const taken = [...t.values()].sort((a, b) => a.offset - b.offset);
  let start = PAGE_SIZE;
  for (const r of taken) {
    if (r.offset >= start + length) break;
    start = Math.max(start, r.offset + r.length);
  }
  t.set(start, { offset: start, length, owner, words });
  return start;
}

// @kernel: _iommufd_destroy_mmap
export function iommufdDestroyMmap(ictx: IommufdCtx, offset: number): void {
  table(ictx).delete(offset);
}

/** mmap(length, MAP_SHARED, fd, offset): the offset must be a region's, and the length, rounded up to whole pages as mmap does, its length exactly. */
// @kernel: iommufd_fops_mmap
export function iommufdMmap(ictx: IommufdCtx, length: number, offset: number): IommufdVma | KError {
  const r = table(ictx).get(offset);
  if (r === undefined) return kerr("ENXIO", `no mmap region starts at offset 0x${offset.toString(16)}`);
  if (Math.ceil(length / PAGE_SIZE) * PAGE_SIZE !== r.length) return kerr("ENXIO", `length 0x${length.toString(16)} is not the region's 0x${r.length.toString(16)}`);
  r.owner.users++;
  return { region: r, unmapped: false };
}

/** munmap: the VMA's reference on the owner goes. */
// @kernel: iommufd_fops_vma_close
export function iommufdMunmap(vma: IommufdVma): void {
  if (vma.unmapped) return;
  vma.unmapped = true;
  vma.region.owner.users--;
}
