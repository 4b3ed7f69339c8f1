/**
 * struct iopt_pages (pages.c): the user memory behind one or more areas,
 * from a user VA or a memfd. A page is pinned once, when its first user
 * (an area stored in a domain, or an access pin) needs it, and unpinned
 * when its last user goes; the pfn is kept while it is pinned, so a domain
 * added later copies from it even if the process has gone (fork_gone).
 */
import { kerr, type KError } from "../lib/errno.ts";
import { PAGE_SIZE } from "../pgtable/sizes.ts";
import { DmaBuf } from "./dmabuf.ts";
import type { IoPagetable, IoptArea } from "./io-pagetable.ts";
import type { MemFile, Mm, PhysMem } from "./user-memory.ts";

export class IoptPages {
  /** Page-aligned base of the memory (VA for user memory, file offset for a memfd). */
  readonly base: number;
  readonly npages: number;
  /** Users of each page (areas in domains plus access pins). */
  readonly users: Int32Array;
  /** The pinned pfn of each page, -1 when not pinned. */
  readonly pfns: Int32Array;
  /** The mm charged for the pins (the process that mapped; IOAS_CHANGE_PROCESS moves it). */
  accountMm: Mm;
  /** RLIMIT_MODE mm: pins are also charged as locked memory (VmLck). */
  readonly lockAccount: boolean;
  /** The dma-buf the pages import (IOPT_ADDRESS_DMABUF): physical ranges, never pinned or accounted. */
  readonly dmabuf: DmaBuf | null;
  /** The exporter revoked the dma-buf (phys.len = 0): the pages map nothing any more. */
  revoked = false;
  /** Each area over these dma-buf pages and the IOAS it is in (pages->dmabuf.tracker); null for user memory. */
  readonly dmabufTrack: Map<IoptArea, IoPagetable> | null;

  constructor(
    readonly phys: PhysMem,
    /** The mm the pages come from (user VA), or the caller's mm for a file. */
    readonly sourceMm: Mm,
    readonly file: MemFile | null,
    /** The user VA, or the file offset. */
    readonly start: number,
    readonly length: number,
    readonly writable: boolean,
    lockAccount = false,
  ) {
    this.lockAccount = lockAccount;
    this.base = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
    this.npages = Math.ceil((start + length - this.base) / PAGE_SIZE);
    this.users = new Int32Array(this.npages);
    this.pfns = new Int32Array(this.npages).fill(-1);
    this.accountMm = sourceMm;
    this.dmabuf = file instanceof DmaBuf ? file : null;
    this.dmabufTrack = this.dmabuf !== null ? new Map() : null;
  }

  /** An area over these dma-buf pages went into an IOAS: the pages are the dma-buf's importer while any does. */
  trackArea(area: IoptArea, iopt: IoPagetable): void {
    this.dmabufTrack!.set(area, iopt);
    this.dmabuf!.importers.add(this);
  }

  untrackArea(area: IoptArea): void {
    this.dmabufTrack!.delete(area);
    if (this.dmabufTrack!.size === 0) this.dmabuf!.importers.delete(this);
  }

  /** Byte offset of `start` within the first page. */
  get pageOffset(): number {
    return this.start - this.base;
  }

  private pinOne(i: number): number | KError {
    if (this.file !== null) {
      const pfn = this.file.pfns[this.base / PAGE_SIZE + i];
      if (pfn === undefined || this.base + i * PAGE_SIZE >= this.file.size) return kerr("EFAULT", "the range lies beyond the end of the file");
      return pfn;
    }
    return this.sourceMm.pinOne(this.base + i * PAGE_SIZE, this.writable);
  }

  /** Takes a user of pages [first, last]; pins those that had none. On failure nothing changed. */
  // @kernel: iopt_pages_fill_xarray
  addUsers(first: number, last: number): 0 | KError {
    const users = this.users;
    for (let i = first; i <= last; i++) {
      if (users[i]! > 0) {
        users[i]!++;
        continue;
      }
      if (this.dmabuf !== null) {
        // A dma-buf's pages are the exporter's physical ranges: nothing to pin.
        this.pfns[i] = this.dmabuf.pfns[this.base / PAGE_SIZE + i]!;
        users[i] = 1;
        continue;
      }
      const pfn = this.pinOne(i);
      if (typeof pfn !== "number") {
        this.dropUsers(first, i - 1);
        return pfn;
      }
      this.pfns[i] = pfn;
      this.phys.pin(pfn);
      this.accountMm.pinnedVm++;
      if (this.lockAccount) this.accountMm.lockedVm++;
      users[i] = 1;
    }
    return 0;
  }

  /** Drops a user of pages [first, last]; unpins those left with none. */
  // @kernel: iopt_pages_unfill_xarray
  dropUsers(first: number, last: number): void {
    const users = this.users;
    for (let i = first; i <= last; i++) {
      if (--users[i]! > 0) continue;
      if (this.dmabuf !== null) {
        this.pfns[i] = -1;
        continue;
      }
      this.phys.unpin(this.pfns[i]!);
      this.accountMm.pinnedVm--;
      if (this.lockAccount) this.accountMm.lockedVm--;
      this.pfns[i] = -1;
    }
  }

  /** Pages currently pinned. */
  pinnedPages(): number {
    let n = 0;
    for (let i = 0; i < this.npages; i++) if (this.users[i]! > 0) n++;
    return n;
  }

  /** The pfn behind page i without pinning: the pinned one, or what the memory maps now (-1 if nothing). */
  peekPfn(i: number): number {
    const p = this.pfns[i]!;
    if (p >= 0) return p;
    if (this.file !== null) return this.file.pfns[this.base / PAGE_SIZE + i] ?? -1;
    return this.sourceMm.dead ? -1 : this.sourceMm.pfnOf(this.base + i * PAGE_SIZE);
  }
}
