/**
 * struct io_pagetable (io_pagetable.c): the IOVA space of an IOAS. Areas
 * (whole-map units), reserved ranges (each with an owner: a domain's
 * out-of-aperture ranges, a test's ADD_RESERVED) and allowed ranges are
 * kept in arrays sorted by IOVA and found by binary search. Every domain
 * attached holds every area; an area in at least one domain holds its
 * pages pinned.
 */
import type { IommuDomain } from "../iommu/domain.ts";
import { iommuMap, iommuUnmap } from "../iommu/map.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { PAGE_SIZE, SZ_2M } from "../pgtable/sizes.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../pgtable/types.ts";
import type { IoptPages } from "./pages.ts";
import { ULONG_MAX } from "./uapi.ts";
import { USER_PHYS_BASE } from "./user-memory.ts";
import { AreaStore } from "./area-store.ts";

export class IoptArea {
  /** Pins taken through accesses (`num_accesses`). */
  numAccesses = 0;
  /** Locked by a HW queue (`num_locks`). */
  numLocks = 0;
  constructor(
    public iova: number,
    /** Inclusive. */
    public last: number,
    readonly pages: IoptPages,
    /** Byte offset of the area's first byte from `pages.base`. */
    readonly pagesByte: number,
    /** IOMMU_READ / IOMMU_WRITE. */
    readonly iommuProt: number,
  ) {}

  get length(): number {
    return this.last - this.iova + 1;
  }
  get firstIndex(): number {
    return Math.floor(this.pagesByte / PAGE_SIZE);
  }
  get lastIndex(): number {
    return Math.floor((this.pagesByte + this.length - 1) / PAGE_SIZE);
  }
}

export interface IovaRange {
  start: number;
  last: number;
}
interface ReservedRange extends IovaRange {
  owner: unknown;
  /** The exact bounds, as u64s. */
  startX: bigint;
  lastX: bigint;
  /** The doubles `start`, `last` are not the exact bounds (a u64 above 2^53 that a double rounds). */
  inexact: boolean;
}

const U64_MAX_X = (1n << 64n) - 1n;

/** A model u64 (a double; U64_MAX for 2^64 − 1) as the exact bigint it stands for. */
function toU64(x: number): bigint {
  return x >= ULONG_MAX ? U64_MAX_X : BigInt(x);
}

/** What an IOAS tells its accesses when an area with their pins is being unmapped (iommufd_access_notify_unmap). */
export interface IoptAccessHook {
  /** Alignment the access needs (PAGE_SIZE with needs_pin_pages), 1 otherwise. */
  readonly iovaAlignment: number;
  unmap(iova: number, length: number): void;
}

/** A piece of pages to map: iopt_pages_list's element. */
export interface PagesElm {
  pages: IoptPages;
  /** Byte offset from pages.base. */
  pagesByte: number;
  length: number;
}

function overlaps(a: IovaRange, start: number, last: number): boolean {
  return a.start <= last && a.last >= start;
}

export class IoPagetable {
  /** Sorted by iova; non-overlapping. */
  /** The areas, sorted by IOVA (iopt->area_itree). */
  readonly areaStore = new AreaStore<IoptArea>();
  readonly reserved: ReservedRange[] = [];
  allowed: IovaRange[] = [];
  readonly domains: IommuDomain[] = [];
  readonly accesses: IoptAccessHook[] = [];
  iovaAlignment = 1;
  disableLargePages = false;
  /** The context's fault-injection point (iommufd_should_fail), consulted before each domain map. */
  shouldFail: () => boolean = () => false;

  /** Every area, ascending (a fresh array: not for hot paths). */
  get areas(): IoptArea[] {
    return this.areaStore.toArray();
  }

  /** The first area intersecting [start, last], or null (iopt_area_iter_first). */
  areaIterFirst(start: number, last: number): IoptArea | null {
    return this.areaStore.first(start, last);
  }

  /** The areas intersecting [start, last], ascending. */
  areasIn(start: number, last: number): IoptArea[] {
    const out: IoptArea[] = [];
    for (let a = this.areaStore.first(start, last); a !== null && a.iova <= last; a = this.areaStore.next(a)) out.push(a);
    return out;
  }

  reservedIterFirst(start: number, last: number): ReservedRange | null {
    for (const r of this.reserved) if (overlaps(r, start, last)) return r;
    return null;
  }

  // @kernel: iopt_check_iova
  checkIova(iova: number, length: number): 0 | KError {
    if (iova % this.iovaAlignment !== 0) return kerr("EINVAL", `IOVA 0x${iova.toString(16)} is not aligned to the IOAS's ${this.iovaAlignment}`);
    const last = iova + length - 1;
    if (last >= ULONG_MAX) return kerr("EOVERFLOW", "iova + length overflows");
    if (this.reservedIterFirst(iova, last) !== null) return kerr("EINVAL", `[0x${iova.toString(16)}, 0x${last.toString(16)}] touches a reserved range`);
    if (this.areaIterFirst(iova, last) !== null) return kerr("EEXIST", `[0x${iova.toString(16)}, 0x${last.toString(16)}] overlaps an existing mapping`);
    return 0;
  }

  /** The holes of reserved ∪ areas inside [start, last], ascending; stops when `fn` returns true. */
  private forEachHole(start: number, last: number, fn: (s: number, l: number) => boolean): boolean {
    const used: IovaRange[] = [];
    for (const r of this.reserved) if (overlaps(r, start, last)) used.push(r);
    used.sort((a, b) => a.start - b.start);
    let ri = 0;
    let a = this.areaStore.atOrAfter(start);
    let cur = start;
    for (;;) {
      // The next used range: whichever of the reserved and area cursors starts first.
      const r = used[ri];
      let next: IovaRange | undefined;
      if (r !== undefined && (a === null || r.start <= a.iova)) {
        next = r;
        ri++;
      } else if (a !== null && a.iova <= last) {
        next = { start: a.iova, last: a.last };
        a = this.areaStore.next(a);
      }
      if (next === undefined || next.start > last) return fn(cur, last);
      if (next.start > cur && fn(cur, next.start - 1)) return true;
      if (next.last >= last) return false;
      cur = Math.max(cur, next.last + 1);
    }
  }

  // @kernel: iopt_alloc_iova
  allocIova(uptr: number, length: number): number | KError {
    if (length === 0 || length >= ULONG_MAX / 2) return kerr("EOVERFLOW", `cannot allocate an IOVA for length ${length}`);
    let align = 2 ** Math.ceil(Math.log2(length));
    if (uptr !== 0) align = Math.min(align, lowestBit(uptr));
    align = Math.min(align, SZ_2M);
    if (align < this.iovaAlignment) return kerr("EINVAL", `the map's alignment ${align} is below the IOAS's ${this.iovaAlignment}`);
    const pageOffset = uptr % PAGE_SIZE;
    // A reserved range whose bounds a double rounds: find the hole in exact u64 arithmetic (off the hot path).
    if (this.reserved.some((r) => r.inexact)) return this.allocIovaExact(length, align, pageOffset);
    const spans: IovaRange[] = this.allowed.length === 0 ? [{ start: PAGE_SIZE, last: ULONG_MAX - PAGE_SIZE }] : this.allowed;
    let found = -1;
    for (const sp of spans) {
      const s = Math.max(sp.start, PAGE_SIZE);
      const l = Math.min(sp.last, ULONG_MAX - PAGE_SIZE);
      if (s > l) continue;
      if (
        this.forEachHole(s, l, (hs, hl) => {
          const start = Math.ceil(hs / align) * align + pageOffset;
          if (start > hl || hl - start < length - 1) return false;
          found = start;
          return true;
        })
      )
        break;
    }
    if (found < 0) return kerr("ENOSPC", `no free IOVA range of ${length} bytes`);
    return found;
  }

  /**
   * allocIova's search over exact u64 bounds: the holes of reserved ∪ areas
   * inside each allowed span (or [PAGE_SIZE, ULONG_MAX − PAGE_SIZE]), the
   * first whose start, aligned up, still holds `length`; an alignment that
   * runs past 2^64 − 1 fits nothing (the overflow the kernel guards against).
   */
  // @kernel: iopt_alloc_iova
  private allocIovaExact(length: number, align: number, pageOffset: number): number | KError {
    const len = BigInt(length);
    const al = BigInt(align);
    const off = BigInt(pageOffset);
    const used: { s: bigint; l: bigint }[] = this.reserved.map((r) => ({ s: r.startX, l: r.lastX }));
    for (const a of this.areaStore.toArray()) used.push({ s: toU64(a.iova), l: toU64(a.last) });
    used.sort((x, y) => (x.s < y.s ? -1 : x.s > y.s ? 1 : 0));
    const page = BigInt(PAGE_SIZE);
    const spans = this.allowed.length === 0 ? [{ s: page, l: U64_MAX_X - page }] : this.allowed.map((r) => ({ s: toU64(r.start), l: toU64(r.last) }));
    for (const sp of spans) {
      const s0 = sp.s > page ? sp.s : page;
      const l0 = sp.l < U64_MAX_X - page ? sp.l : U64_MAX_X - page;
      let cur = s0;
      for (let i = 0; i <= used.length && cur <= l0; i++) {
        const u = used[i];
        const holeLast = u === undefined || u.s > l0 ? l0 : u.s - 1n;
        if (u === undefined || u.s > cur) {
          // @kernel: __alloc_iova_check_range
          const start = ((cur + al - 1n) / al) * al + off;
          if (start <= U64_MAX_X && start <= holeLast && holeLast - start >= len - 1n) return Number(start);
        }
        if (u === undefined || u.s > l0) break;
        if (u.l + 1n > cur) cur = u.l + 1n;
      }
    }
    return kerr("ENOSPC", `no free IOVA range of ${length} bytes`);
  }

  // @kernel: iopt_check_iova_alignment
  checkIovaAlignment(align: number): 0 | KError {
    for (const a of this.areas) {
      if (a.iova % align !== 0 || a.length % align !== 0 || (a.pagesByte % PAGE_SIZE) % align !== 0) {
        return kerr("EADDRINUSE", `the area at 0x${a.iova.toString(16)} is not aligned to ${align}`);
      }
    }
    return 0;
  }

  // @kernel: iopt_disable_large_pages
  disableLargePagesNow(): 0 | KError {
    if (this.disableLargePages) return 0;
    if (this.domains.length !== 0 && this.areaStore.size !== 0) return kerr("EINVAL", "domains are attached and areas are mapped: large pages can no longer be given up");
    this.disableLargePages = true;
    const rc = this.calculateIovaAlignment();
    if (rc !== 0) this.disableLargePages = false;
    return rc;
  }

  // @kernel: iopt_calculate_iova_alignment
  calculateIovaAlignment(): 0 | KError {
    let a = 1;
    for (const d of this.domains) a = Math.max(a, d.pgsizes[0] ?? 1);
    for (const x of this.accesses) a = Math.max(a, x.iovaAlignment);
    if (this.disableLargePages) a = Math.max(a, PAGE_SIZE);
    if (a > this.iovaAlignment) {
      const rc = this.checkIovaAlignment(a);
      if (rc !== 0) return rc;
    }
    this.iovaAlignment = a;
    return 0;
  }

  /** Maps one area into one domain, in physically contiguous runs; undone on failure. */
  // @kernel: iopt_area_fill_domain
  private fillAreaDomain(area: IoptArea, d: IommuDomain): 0 | KError {
    // Revoked dma-buf pages map nothing (the fill silently does nothing).
    if (area.pages.revoked) return 0;
    // The mock's map_pages injection point.
    if (this.shouldFail()) return kerr("ENOENT", "fault injection: domain map");
    const pages = area.pages;
    const len = area.length;
    let b = 0;
    while (b < len) {
      const o = area.pagesByte + b;
      const idx = Math.floor(o / PAGE_SIZE);
      const pfn = pages.pfns[idx]!;
      let runEnd = Math.min(len, b + PAGE_SIZE - (o % PAGE_SIZE));
      let nextPfn = pfn + 1;
      while (runEnd < len && pages.pfns[idx + (runEnd - b + (o % PAGE_SIZE)) / PAGE_SIZE] === nextPfn) {
        runEnd = Math.min(len, runEnd + PAGE_SIZE);
        nextPfn++;
      }
      const rc = iommuMap(d, area.iova + b, USER_PHYS_BASE + pfn * PAGE_SIZE + (o % PAGE_SIZE), runEnd - b, area.iommuProt);
      if (rc !== 0) {
        if (b > 0) iommuUnmap(d, area.iova, b);
        return rc;
      }
      b = runEnd;
    }
    return 0;
  }

  /** Puts an area into every domain (pinning its pages first); undone on failure. */
  // @kernel: iopt_fill_domains_pages
  fillAreaAllDomains(area: IoptArea): 0 | KError {
    if (this.domains.length === 0) return 0;
    const rc = area.pages.addUsers(area.firstIndex, area.lastIndex);
    if (rc !== 0) return rc;
    for (let i = 0; i < this.domains.length; i++) {
      const r = this.fillAreaDomain(area, this.domains[i]!);
      if (r !== 0) {
        for (let j = 0; j < i; j++) this.domainUnmap(this.domains[j]!, area);
        area.pages.dropUsers(area.firstIndex, area.lastIndex);
        return r;
      }
    }
    return 0;
  }

  private unfillAreaAllDomains(area: IoptArea): void {
    if (this.domains.length === 0) return;
    for (const d of this.domains) this.domainUnmap(d, area);
    area.pages.dropUsers(area.firstIndex, area.lastIndex);
  }

  /** Takes an area out of one domain (nothing for revoked dma-buf pages: the revoke did it). */
  // @kernel: iopt_area_unmap_domain
  private domainUnmap(d: IommuDomain, area: IoptArea): void {
    if (!area.pages.revoked) iommuUnmap(d, area.iova, area.length);
  }

  /** A dma-buf revoke: the area leaves every domain and stays in the IOAS. */
  // @kernel: iopt_area_unmap_domain_range
  unmapAreaDomains(area: IoptArea): void {
    for (const d of this.domains) this.domainUnmap(d, area);
  }

  /**
   * Maps a list of pages pieces as consecutive areas at `iova` (FIXED) or
   * an allocated IOVA (`fixed` false; `uptr` gives the alignment).
   */
  // @kernel: iopt_map_pages
  mapPages(elms: readonly PagesElm[], length: number, iova: number, fixed: boolean, uptr: number, iommuProt: number): number | KError {
    if (length === 0 || length % this.iovaAlignment !== 0) return kerr("EINVAL", `length ${length} is zero or not a multiple of the IOAS alignment ${this.iovaAlignment}`);
    let dst = iova;
    if (!fixed) {
      const r = this.allocIova(uptr, length);
      if (typeof r !== "number") return r;
      dst = r;
    } else {
      const rc = this.checkIova(iova, length);
      if (rc !== 0) return rc;
    }
    // @kernel: iopt_insert_area
    for (const e of elms) {
      if ((iommuProt & IOMMU_WRITE) !== 0 && !e.pages.writable) return kerr("EPERM", "a writeable map of memory that is not writable");
      if ((e.pagesByte % PAGE_SIZE) % this.iovaAlignment !== 0) return kerr("EINVAL", `the memory's offset in its page is not aligned to the IOAS's ${this.iovaAlignment}`);
    }
    const made: IoptArea[] = [];
    let at = dst;
    for (const e of elms) {
      const area = new IoptArea(at, at + e.length - 1, e.pages, e.pagesByte, iommuProt);
      const rc = this.fillAreaAllDomains(area);
      if (rc !== 0) {
        for (const m of made) this.unfillAreaAllDomains(m);
        return rc;
      }
      made.push(area);
      at += e.length;
    }
    for (const m of made) {
      this.areaStore.insert(m);
      if (m.pages.dmabuf !== null) m.pages.trackArea(m, this);
    }
    return dst;
  }

  /** Removes the areas inside [start, last]; the bytes removed. Not atomic, as the kernel's is not. */
  // @kernel: iopt_unmap_iova_range
  unmapIovaRange(start: number, last: number): number | KError {
    let unmapped = 0;
    let tries = 0;
    for (let area = this.areaStore.first(start, last); area !== null && area.iova <= last; area = this.areaStore.first(start, last)) {
      if (area.iova < start || area.last > last) return unmapped > 0 ? kerr("ENOENT", "an area crosses the range's edge (earlier areas stay unmapped)") : kerr("ENOENT", `the area [0x${area.iova.toString(16)}, 0x${area.last.toString(16)}] is not wholly inside the range`);
      if (area.numLocks > 0) return kerr("EBUSY", `the area at 0x${area.iova.toString(16)} is locked by a HW queue`);
      if (area.numAccesses > 0) {
        if (++tries > 100) return kerr("EDEADLK", "accesses keep their pins on the area");
        for (const acc of [...this.accesses]) acc.unmap(area.iova, area.length);
        continue;
      }
      this.unfillAreaAllDomains(area);
      this.areaStore.remove(area);
      if (area.pages.dmabuf !== null) area.pages.untrackArea(area);
      unmapped += area.length;
    }
    return unmapped;
  }

  /**
   * Splits the areas that hold each of `iovas` so that one ends there
   * (type1 VFIO compatibility: an unmap may cut a mapping). All checked
   * first: a cut off the IOAS alignment is EINVAL, through an area with
   * access pins EBUSY, and then nothing is cut.
   */
  // @kernel: iopt_cut_iova
  cutIova(iovas: readonly number[]): 0 | KError {
    const cuts: [IoptArea, number][] = [];
    for (const x of iovas) {
      const area = this.areaStore.first(x, x);
      if (area === null || area.last === x) continue;
      // @kernel: iopt_area_split
      const rhsStart = x + 1;
      if (rhsStart % this.iovaAlignment !== 0 || (area.pagesByte + (rhsStart - area.iova)) % this.iovaAlignment !== 0) {
        return kerr("EINVAL", `a cut at 0x${x.toString(16)} is not aligned to the IOAS's ${this.iovaAlignment}`);
      }
      if (area.numAccesses > 0) return kerr("EBUSY", `the area at 0x${area.iova.toString(16)} has access pins`);
      cuts.push([area, x]);
    }
    for (const [, x] of cuts) {
      const cur = this.areaStore.first(x, x)!;
      if (cur.last === x) continue;
      const lhs = new IoptArea(cur.iova, x, cur.pages, cur.pagesByte, cur.iommuProt);
      const rhs = new IoptArea(x + 1, cur.last, cur.pages, cur.pagesByte + (x + 1 - cur.iova), cur.iommuProt);
      // Each half holds its own pages; a page both halves touch gets a second user.
      if (this.domains.length !== 0 && lhs.lastIndex === rhs.firstIndex) cur.pages.addUsers(rhs.firstIndex, rhs.firstIndex);
      this.areaStore.remove(cur);
      this.areaStore.insert(lhs);
      this.areaStore.insert(rhs);
      if (cur.pages.dmabuf !== null) {
        cur.pages.untrackArea(cur);
        cur.pages.trackArea(lhs, this);
        cur.pages.trackArea(rhs, this);
      }
    }
    return 0;
  }

  // @kernel: iopt_reserve_iova
  reserveIova(start: number, last: number, owner: unknown): 0 | KError {
    return this.reserveIovaExact(toU64(start), toU64(last), owner);
  }

  /** reserveIova with exact u64 bounds (a test's ADD_RESERVED near 2^64). */
  // @kernel: iopt_reserve_iova
  reserveIovaExact(startX: bigint, lastX: bigint, owner: unknown): 0 | KError {
    const start = Number(startX);
    const last = lastX === U64_MAX_X ? ULONG_MAX : Number(lastX);
    if (this.areaIterFirst(start, last) !== null) return kerr("EADDRINUSE", `[0x${startX.toString(16)}, 0x${lastX.toString(16)}] is mapped`);
    for (const a of this.allowed) if (overlaps(a, start, last)) return kerr("EADDRINUSE", `[0x${startX.toString(16)}, 0x${lastX.toString(16)}] is an allowed range`);
    this.reserved.push({ start, last, owner, startX, lastX, inexact: toU64(start) !== startX || toU64(last) !== lastX });
    return 0;
  }

  // @kernel: iopt_remove_reserved_iova
  removeReservedIova(owner: unknown): void {
    for (let i = this.reserved.length - 1; i >= 0; i--) if (this.reserved[i]!.owner === owner) this.reserved.splice(i, 1);
  }

  // @kernel: iopt_set_allow_iova
  setAllowIova(ranges: IovaRange[]): 0 | KError {
    for (const r of ranges) {
      if (this.reservedIterFirst(r.start, r.last) !== null) return kerr("EADDRINUSE", `the allowed range [0x${r.start.toString(16)}, 0x${r.last.toString(16)}] is reserved`);
    }
    this.allowed = [...ranges].sort((a, b) => a.start - b.start);
    return 0;
  }

  /** The holes of the reserved ranges over [0, ULONG_MAX]. */
  // @kernel: iommufd_ioas_iova_ranges
  iovaRanges(): IovaRange[] {
    const rs = [...this.reserved].sort((a, b) => a.start - b.start);
    const out: IovaRange[] = [];
    let cur = 0;
    for (const r of rs) {
      if (r.start > cur) out.push({ start: cur, last: r.start - 1 });
      cur = Math.max(cur, r.last + 1);
    }
    if (cur <= ULONG_MAX - 1 || out.length === 0) {
      if (cur < ULONG_MAX) out.push({ start: cur, last: ULONG_MAX });
    }
    return out;
  }

  // @kernel: iopt_table_add_domain
  addDomain(d: IommuDomain): 0 | KError {
    const min = d.pgsizes[0] ?? PAGE_SIZE;
    if (min > PAGE_SIZE) return kerr("EINVAL", `the domain's smallest page ${min} exceeds PAGE_SIZE`);
    const rc = this.checkIovaAlignment(Math.max(this.iovaAlignment, min));
    if (rc !== 0) return rc;
    const g = d.geometry;
    if (g.apertureStart !== 0) {
      const r = this.reserveIova(0, g.apertureStart - 1, d);
      if (r !== 0) return r;
    }
    if (g.apertureEnd < ULONG_MAX) {
      const r = this.reserveIova(g.apertureEnd + 1, ULONG_MAX, d);
      if (r !== 0) {
        this.removeReservedIova(d);
        return r;
      }
    }
    // @kernel: iopt_fill_domain
    const all = this.areas;
    for (let i = 0; i < all.length; i++) {
      const area = all[i]!;
      let r: 0 | KError = 0;
      if (this.domains.length === 0) r = area.pages.addUsers(area.firstIndex, area.lastIndex);
      if (r === 0) {
        r = this.fillAreaDomain(area, d);
        if (r !== 0 && this.domains.length === 0) area.pages.dropUsers(area.firstIndex, area.lastIndex);
      }
      if (r !== 0) {
        for (let j = 0; j < i; j++) {
          const a = all[j]!;
          this.domainUnmap(d, a);
          if (this.domains.length === 0) a.pages.dropUsers(a.firstIndex, a.lastIndex);
        }
        this.removeReservedIova(d);
        return r;
      }
    }
    this.domains.push(d);
    this.calculateIovaAlignment();
    return 0;
  }

  // @kernel: iopt_table_remove_domain
  removeDomain(d: IommuDomain): void {
    const i = this.domains.indexOf(d);
    if (i < 0) return;
    this.domains.splice(i, 1);
    for (const a of this.areas) {
      this.domainUnmap(d, a);
      if (this.domains.length === 0) a.pages.dropUsers(a.firstIndex, a.lastIndex);
    }
    this.removeReservedIova(d);
    this.calculateIovaAlignment();
  }

  /** Pieces of pages covering [iova, iova+length) exactly, for IOAS_COPY (iopt_get_pages). */
  // @kernel: iopt_get_pages
  getPages(iova: number, length: number): PagesElm[] | KError {
    if (length === 0) return kerr("EINVAL", "a copy of length 0");
    const last = iova + length - 1;
    if (last >= ULONG_MAX) return kerr("EOVERFLOW", "src_iova + length overflows");
    const out: PagesElm[] = [];
    let cur = iova;
    for (let a = this.areaStore.atOrAfter(iova); a !== null && cur <= last; a = this.areaStore.next(a)) {
      if (a.iova > cur) break;
      const end = Math.min(a.last, last);
      out.push({ pages: a.pages, pagesByte: a.pagesByte + (cur - a.iova), length: end - cur + 1 });
      cur = end + 1;
    }
    if (cur <= last) return kerr("ENOENT", `[0x${iova.toString(16)}, 0x${last.toString(16)}] is not wholly mapped`);
    return out;
  }

  /** The IOMMU prot bits a map or copy asks for. */
  static protOf(readable: boolean, writeable: boolean): number {
    return (readable ? IOMMU_READ : 0) | (writeable ? IOMMU_WRITE : 0);
  }
}

function lowestBit(x: number): number {
  let b = 1;
  while (x % (b * 2) === 0 && b < 2 ** 62) b *= 2;
  return b;
}
