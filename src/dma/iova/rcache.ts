/**
 * The IOVA range cache (iova.c "rcache"), as of v6.7 and its descendants:
 * one cache per size class of order 0..IOVA_RANGE_CACHE_MAX_SIZE-1; per
 * class, each CPU holds a `loaded` and a `prev` magazine, and a global depot
 * holds an unbounded list of full magazines with its length (`depot_size`).
 *
 * Every push onto a depot schedules that class's delayed work
 * (IOVA_DEPOT_DELAY_MS later, unless already pending). The model has no
 * clock: `depotWorkPending` says the work is queued and `depotWork` runs
 * it, when the caller's simulated time says it is due.
 *
 * Cached pfns stay allocated in the domain's tree; releasing them to the
 * tree goes through the domain's own find and free, so the calls that do
 * take the domain, as their kernel counterparts take `iovad`.
 */
import type { IovaDomain } from "../iova.ts";
import { IOVA_MAG_SIZE, IovaMagazines, NO_MAGAZINE } from "./magazine.ts";
import { orderBase2 } from "./log2.ts";

/** Size classes: ranges of 1, 2, 4 ... 32 granules are cached. */
export const IOVA_RANGE_CACHE_MAX_SIZE = 6;

/** Delay of the depot-trimming work, in milliseconds. */
export const IOVA_DEPOT_DELAY_MS = 100;

export class IovaRcaches {
  readonly mags: IovaMagazines;
  /** Per CPU and class, indexed cpu * IOVA_RANGE_CACHE_MAX_SIZE + class. */
  private readonly loaded: Int32Array;
  private readonly prev: Int32Array;
  private readonly depot = new Int32Array(IOVA_RANGE_CACHE_MAX_SIZE).fill(NO_MAGAZINE);
  private readonly depotSizes = new Int32Array(IOVA_RANGE_CACHE_MAX_SIZE);
  private readonly workPending = new Uint8Array(IOVA_RANGE_CACHE_MAX_SIZE);

  private constructor(
    private readonly nrCpuIds: number,
    magazineLimit: number,
  ) {
    this.mags = new IovaMagazines(magazineLimit);
    this.loaded = new Int32Array(nrCpuIds * IOVA_RANGE_CACHE_MAX_SIZE);
    this.prev = new Int32Array(nrCpuIds * IOVA_RANGE_CACHE_MAX_SIZE);
  }

  /** null when the magazines for every possible CPU cannot all be had. */
  // @kernel: iova_domain_init_rcaches
  static init(nrCpuIds: number, magazineLimit: number): IovaRcaches | null {
    const rc = new IovaRcaches(nrCpuIds, magazineLimit);
    for (let i = 0; i < nrCpuIds * IOVA_RANGE_CACHE_MAX_SIZE; i++) {
      rc.loaded[i] = rc.mags.alloc();
      rc.prev[i] = rc.mags.alloc();
      if (rc.loaded[i] === NO_MAGAZINE || rc.prev[i] === NO_MAGAZINE) return null;
    }
    return rc;
  }

  /**
   * A cached pfn for a range of `size` ending below limitPfn (exclusive), or
   * 0. When size exceeds limitPfn the kernel's unsigned subtraction wraps
   * and any cached pfn would do; here the bound is negative and none does.
   */
  // @kernel: iova_rcache_get
  get(size: number, limitPfn: number, cpu: number): number {
    const cls = orderBase2(size);
    if (cls >= IOVA_RANGE_CACHE_MAX_SIZE) return 0;
    return this.getFrom(cls, limitPfn - size, cpu);
  }

  /** false when the range cannot be cached and must go back to the tree. */
  // @kernel: iova_rcache_insert
  insert(pfn: number, size: number, cpu: number): boolean {
    const cls = orderBase2(size);
    if (cls >= IOVA_RANGE_CACHE_MAX_SIZE) return false;
    return this.insertInto(cls, pfn, cpu);
  }

  // @kernel: __iova_rcache_get
  private getFrom(cls: number, limitPfn: number, cpu: number): number {
    const mags = this.mags;
    const i = cpu * IOVA_RANGE_CACHE_MAX_SIZE + cls;
    const loaded = this.loaded[i]!;
    if (!mags.empty(loaded)) return mags.pop(loaded, limitPfn);
    const prev = this.prev[i]!;
    if (!mags.empty(prev)) {
      this.prev[i] = loaded;
      this.loaded[i] = prev;
      return mags.pop(prev, limitPfn);
    }
    if (this.depot[cls] === NO_MAGAZINE) return 0;
    mags.free(loaded);
    const full = this.depotPop(cls);
    this.loaded[i] = full;
    return mags.pop(full, limitPfn);
  }

  // @kernel: __iova_rcache_insert
  private insertInto(cls: number, pfn: number, cpu: number): boolean {
    const mags = this.mags;
    const i = cpu * IOVA_RANGE_CACHE_MAX_SIZE + cls;
    const loaded = this.loaded[i]!;
    if (!mags.full(loaded)) {
      mags.push(loaded, pfn);
      return true;
    }
    const prev = this.prev[i]!;
    if (!mags.full(prev)) {
      this.prev[i] = loaded;
      this.loaded[i] = prev;
      mags.push(prev, pfn);
      return true;
    }
    const fresh = mags.alloc();
    if (fresh === NO_MAGAZINE) return false;
    this.depotPush(cls, loaded);
    this.workPending[cls] = 1; // schedule_delayed_work: a pending work keeps its expiry
    this.loaded[i] = fresh;
    mags.push(fresh, pfn);
    return true;
  }

  // @kernel: iova_depot_pop
  private depotPop(cls: number): number {
    const m = this.depot[cls]!;
    this.depot[cls] = this.mags.next[m]!;
    this.depotSizes[cls]!--;
    return m;
  }

  // @kernel: iova_depot_push
  private depotPush(cls: number, m: number): void {
    this.mags.next[m] = this.depot[cls]!;
    this.depot[cls] = m;
    this.depotSizes[cls]!++;
  }

  /**
   * Runs the class's delayed work if it is queued: while the depot holds
   * more magazines than there are online CPUs, one magazine goes back to
   * the tree per run and the work re-arms itself. Returns whether it
   * trimmed a magazine.
   */
  // @kernel: iova_depot_work_func
  depotWork(iovad: IovaDomain, cls: number): boolean {
    if (this.workPending[cls] === 0) return false;
    this.workPending[cls] = 0;
    if (this.depotSizes[cls]! <= iovad.numOnlineCpus()) return false;
    const m = this.depotPop(cls);
    this.magazineFreePfns(iovad, m);
    this.mags.free(m);
    this.workPending[cls] = 1;
    return true;
  }

  depotWorkPending(cls: number): boolean {
    return this.workPending[cls] === 1;
  }

  depotSize(cls: number): number {
    return this.depotSizes[cls]!;
  }

  /** The pfns a CPU holds for a class, top of each magazine last. */
  cpuMagazines(cpu: number, cls: number): { loaded: number[]; prev: number[] } {
    const i = cpu * IOVA_RANGE_CACHE_MAX_SIZE + cls;
    return { loaded: this.magazinePfns(this.loaded[i]!), prev: this.magazinePfns(this.prev[i]!) };
  }

  /** The pfns of each depot magazine of a class, most recently pushed first. */
  depotMagazines(cls: number): number[][] {
    const out: number[][] = [];
    for (let m = this.depot[cls]!; m !== NO_MAGAZINE; m = this.mags.next[m]!) out.push(this.magazinePfns(m));
    return out;
  }

  /** Pfns cached for a class: every CPU's magazines plus the depot. */
  cachedPfns(cls: number): number {
    let n = this.depotSizes[cls]! * IOVA_MAG_SIZE;
    for (let cpu = 0; cpu < this.nrCpuIds; cpu++) {
      const i = cpu * IOVA_RANGE_CACHE_MAX_SIZE + cls;
      n += this.mags.size[this.loaded[i]!]! + this.mags.size[this.prev[i]!]!;
    }
    return n;
  }

  // @kernel: free_cpu_cached_iovas
  freeCpuCachedIovas(iovad: IovaDomain, cpu: number): void {
    for (let cls = 0; cls < IOVA_RANGE_CACHE_MAX_SIZE; cls++) {
      const i = cpu * IOVA_RANGE_CACHE_MAX_SIZE + cls;
      this.magazineFreePfns(iovad, this.loaded[i]!);
      this.magazineFreePfns(iovad, this.prev[i]!);
    }
  }

  // @kernel: free_global_cached_iovas
  freeGlobalCachedIovas(iovad: IovaDomain): void {
    for (let cls = 0; cls < IOVA_RANGE_CACHE_MAX_SIZE; cls++) {
      while (this.depot[cls] !== NO_MAGAZINE) {
        const m = this.depotPop(cls);
        this.magazineFreePfns(iovad, m);
        this.mags.free(m);
      }
    }
  }

  /**
   * Drops every magazine without returning its pfns to the tree (the tree
   * is about to be freed whole) and cancels the delayed work.
   */
  // @kernel: free_iova_rcaches
  free(): void {
    this.workPending.fill(0);
    this.depot.fill(NO_MAGAZINE);
    this.depotSizes.fill(0);
    this.mags.reset();
  }

  // @kernel: iova_magazine_free_pfns
  private magazineFreePfns(iovad: IovaDomain, m: number): void {
    const base = m * IOVA_MAG_SIZE;
    const n = this.mags.size[m]!;
    for (let i = 0; i < n; i++) {
      const pfn = this.mags.pfns[base + i]!;
      const iova = iovad.findIova(pfn);
      if (iova === null) {
        iovad.warn(`iova_magazine_free_pfns: cached pfn ${pfn} is not in the tree`);
        continue;
      }
      iovad.__freeIova(iova);
    }
    this.mags.size[m] = 0;
  }

  private magazinePfns(m: number): number[] {
    const base = m * IOVA_MAG_SIZE;
    return Array.from(this.mags.pfns.subarray(base, base + this.mags.size[m]!));
  }
}
