/**
 * User memory as iommufd sees it: a process's address space (`struct
 * mm_struct`) of VMAs over physical pages, memfd files, and a pin count per
 * physical page (the page refcount's GUP_PIN_COUNTING_BIAS part), so a
 * double pin or a leaked pin shows in the snapshot and in MD_CHECK_REFS.
 * Hugetlb mappings are compound pages (2 MiB, physically contiguous).
 * Page contents live in 1 MiB segments allocated on first touch.
 */
import { kerr, type KError } from "../lib/errno.ts";
import { PAGE_SIZE, SZ_2M } from "../pgtable/sizes.ts";

/** Physical address of pfn 0 of user memory (above the low 4 GiB, below 2^53). */
export const USER_PHYS_BASE = 2 ** 32;
const SEG_SHIFT = 8; // 256 pages per data segment
const SEG_PAGES = 1 << SEG_SHIFT;
const HPAGE_PAGES = SZ_2M / PAGE_SIZE;

/** Every physical page user memory has handed out: pin counts, compound flags, contents. */
export class PhysMem {
  private nextPfn = 0;
  pins = new Int32Array(1024);
  compound = new Uint8Array(1024);
  private readonly segs: (Uint8Array | undefined)[] = [];
  /** Pages pinned now (the sum of `pins`). */
  pinnedTotal = 0;

  /** Allocates `n` contiguous pages (aligned to `align` pages). */
  alloc(n: number, align = 1, compound = false): number {
    const pfn = Math.ceil(this.nextPfn / align) * align;
    this.nextPfn = pfn + n;
    if (this.nextPfn > this.pins.length) {
      let len = this.pins.length * 2;
      while (len < this.nextPfn) len *= 2;
      const p = new Int32Array(len);
      p.set(this.pins);
      this.pins = p;
      const c = new Uint8Array(len);
      c.set(this.compound);
      this.compound = c;
    }
    if (compound) this.compound.fill(1, pfn, pfn + n);
    return pfn;
  }

  pin(pfn: number): void {
    this.pins[pfn]!++;
    this.pinnedTotal++;
  }

  unpin(pfn: number): void {
    this.pins[pfn]!--;
    this.pinnedTotal--;
  }

  /** The byte array holding `pfn` and the page's offset in it. */
  seg(pfn: number): Uint8Array {
    const i = pfn >>> SEG_SHIFT;
    return (this.segs[i] ??= new Uint8Array(SEG_PAGES * PAGE_SIZE));
  }

  /** Offset of `pfn`'s first byte within seg(pfn). */
  segOffset(pfn: number): number {
    return (pfn & (SEG_PAGES - 1)) * PAGE_SIZE;
  }
}

/** A memfd: pages by file offset, allocated as the file grows. */
export class MemFile {
  pfns: number[] = [];
  constructor(
    readonly phys: PhysMem,
    public size: number,
    readonly hugetlb = false,
  ) {
    this.grow();
  }

  private grow(): void {
    const n = Math.ceil(this.size / PAGE_SIZE);
    while (this.pfns.length < n) {
      if (this.hugetlb) {
        const base = this.phys.alloc(HPAGE_PAGES, HPAGE_PAGES, true);
        for (let i = 0; i < HPAGE_PAGES; i++) this.pfns.push(base + i);
      } else {
        this.pfns.push(this.phys.alloc(1));
      }
    }
  }

  /** ftruncate: pages past the new end leave the file (pinned ones stay pinned). */
  truncate(size: number): void {
    this.size = size;
    this.pfns.length = Math.min(this.pfns.length, Math.ceil(size / PAGE_SIZE));
    this.grow();
  }
}

export interface Vma {
  start: number;
  /** Exclusive end. */
  end: number;
  writable: boolean;
  /** pfn of each page, by (va - start) / PAGE_SIZE. */
  pfns: Int32Array;
  /** The memfd it maps, if any, and the file offset of `start`. */
  file: MemFile | null;
  fileOffset: number;
  /** A MAP_PRIVATE mapping: a CPU write to a page breaks COW. */
  cow: boolean;
}

export interface MmapOptions {
  /** MAP_HUGETLB: compound 2 MiB pages, 2 MiB-aligned. */
  hugetlb?: boolean;
  /** PROT_WRITE; default true. */
  writable?: boolean;
  /** MAP_FIXED at this address. */
  addr?: number;
  /** Alignment of the chosen address (default PAGE_SIZE). */
  align?: number;
  /** Map this memfd from `offset`. */
  file?: MemFile;
  offset?: number;
  /** MAP_PRIVATE of a file: a CPU write copies the page. */
  cow?: boolean;
}

/** A process's address space: VMAs sorted by start; `dead` once the process exited. */
export class Mm {
  readonly vmas: Vma[] = [];
  dead = false;
  /** Pages pinned on this mm's account (/proc VmPin, in pages). */
  pinnedVm = 0;
  /** Pages charged as locked (RLIMIT_MODE mm: VmLck). */
  lockedVm = 0;
  private nextVa = 0x7f00_0000_0000;
  /** The process's file table: fd → memfd (IOAS_MAP_FILE resolves fds here). */
  readonly files = new Map<number, MemFile>();
  /** The next fd number the process hands out (shared with the contexts it opens). */
  nextFd = 3;

  constructor(
    readonly phys: PhysMem,
    readonly pid: number,
  ) {}

  /** fork(): a child process whose address space maps the same pages (MAP_SHARED memory stays shared). */
  fork(pid: number): Mm {
    const child = new Mm(this.phys, pid);
    for (const v of this.vmas) child.vmas.push({ ...v, pfns: v.pfns.slice() });
    child.nextVa = this.nextVa;
    for (const [fd, f] of this.files) child.files.set(fd, f);
    child.nextFd = this.nextFd;
    return child;
  }

  mmap(length: number, o: MmapOptions = {}): number {
    const len = Math.ceil(length / PAGE_SIZE) * PAGE_SIZE;
    const align = o.hugetlb ? Math.max(SZ_2M, o.align ?? 0) : (o.align ?? PAGE_SIZE);
    const start = o.addr ?? Math.ceil(this.nextVa / align) * align;
    if (o.addr === undefined) this.nextVa = start + len + PAGE_SIZE;
    if (o.addr !== undefined) this.munmap(start, len);
    const n = len / PAGE_SIZE;
    const pfns = new Int32Array(n);
    const fileOffset = o.offset ?? 0;
    if (o.file !== undefined) {
      for (let i = 0; i < n; i++) pfns[i] = o.file.pfns[fileOffset / PAGE_SIZE + i] ?? -1;
    } else {
      const base = o.hugetlb ? this.phys.alloc(n, HPAGE_PAGES, true) : this.phys.alloc(n);
      for (let i = 0; i < n; i++) pfns[i] = base + i;
    }
    this.insert({ start, end: start + len, writable: o.writable ?? true, pfns, file: o.file ?? null, fileOffset, cow: o.cow ?? false });
    return start;
  }

  private insert(v: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i]!.start < v.start) i++;
    this.vmas.splice(i, 0, v);
  }

  /** Removes [va, va+length) from the address space, splitting VMAs. */
  munmap(va: number, length: number): void {
    const end = va + Math.ceil(length / PAGE_SIZE) * PAGE_SIZE;
    const keep: Vma[] = [];
    for (const v of this.vmas) {
      if (v.end <= va || v.start >= end) {
        keep.push(v);
        continue;
      }
      if (v.start < va) keep.push(this.slice(v, v.start, va));
      if (v.end > end) keep.push(this.slice(v, end, v.end));
    }
    this.vmas.length = 0;
    this.vmas.push(...keep);
  }

  private slice(v: Vma, s: number, e: number): Vma {
    const a = (s - v.start) / PAGE_SIZE;
    return { ...v, start: s, end: e, pfns: v.pfns.slice(a, a + (e - s) / PAGE_SIZE), fileOffset: v.fileOffset + (s - v.start) };
  }

  findVma(va: number): Vma | null {
    let lo = 0;
    let hi = this.vmas.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.vmas[mid]!;
      if (va < v.start) hi = mid - 1;
      else if (va >= v.end) lo = mid + 1;
      else return v;
    }
    return null;
  }

  /** The pfn behind a user VA, or -1 if nothing is mapped there. */
  pfnOf(va: number): number {
    const v = this.findVma(va);
    if (v === null) return -1;
    return v.pfns[Math.floor((va - v.start) / PAGE_SIZE)]!;
  }

  /** pin_user_pages of one page: EFAULT when unmapped, when the process is gone, or a write pin of a read-only VMA. */
  pinOne(va: number, write: boolean): number | KError {
    if (this.dead) return kerr("EFAULT", `process ${this.pid} has exited; its pages cannot be pinned`);
    const v = this.findVma(va);
    if (v === null) return kerr("EFAULT", `no user memory at 0x${va.toString(16)} in process ${this.pid}`);
    if (write && !v.writable) return kerr("EFAULT", `a write pin of the read-only mapping at 0x${va.toString(16)}`);
    const pfn = v.pfns[Math.floor((va - v.start) / PAGE_SIZE)]!;
    if (pfn < 0) return kerr("EFAULT", `0x${va.toString(16)} lies beyond the end of its file`);
    // FOLL_PIN with unshare: a private page is made exclusive now, so a later CPU write does not move it.
    if (v.cow) v.cow = false;
    return pfn;
  }

  /** Whether every page of [va, va + length) is mapped (and writable, for a CPU write): copy_from_user / copy_to_user would not fault. */
  covers(va: number, length: number, write = false): boolean {
    const end = va + length;
    for (let p = va; p < end; p = (Math.floor(p / PAGE_SIZE) + 1) * PAGE_SIZE) {
      if (this.pfnOf(p) < 0) return false;
      if (write && !this.findVma(p)!.writable) return false;
    }
    return true;
  }

  /** A CPU write of bytes at va (copy-on-write for a private mapping not yet unshared); the caller checks covers() first. */
  write(va: number, bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const p = va + done;
      const v = this.findVma(p);
      if (v === null) throw new Error(`segfault at 0x${p.toString(16)} (BUG: the caller did not check covers())`);
      const idx = Math.floor((p - v.start) / PAGE_SIZE);
      if (v.cow) {
        const old = v.pfns[idx]!;
        const fresh = this.phys.alloc(1);
        this.phys.seg(fresh).set(this.phys.seg(old).subarray(this.phys.segOffset(old), this.phys.segOffset(old) + PAGE_SIZE), this.phys.segOffset(fresh));
        v.pfns[idx] = fresh;
        v.cow = false;
      }
      const pfn = v.pfns[idx]!;
      const inPage = p % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - inPage, bytes.length - done);
      this.phys.seg(pfn).set(bytes.subarray(done, done + n), this.phys.segOffset(pfn) + inPage);
      done += n;
    }
  }

  /** A CPU read of `length` bytes at va; the caller checks covers() first. */
  read(va: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const p = va + done;
      const pfn = this.pfnOf(p);
      if (pfn < 0) throw new Error(`segfault at 0x${p.toString(16)} (BUG: the caller did not check covers())`);
      const inPage = p % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - inPage, length - done);
      const so = this.phys.segOffset(pfn) + inPage;
      out.set(this.phys.seg(pfn).subarray(so, so + n), done);
      done += n;
    }
    return out;
  }
}
