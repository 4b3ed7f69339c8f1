/**
 * Domain building blocks the drivers share: static identity / blocked
 * domains (global objects in the kernel drivers) and paging domains whose
 * IO page table is finalised for one instance. A paging domain's tables are
 * allocated on its first map, so a machine with 100,000 idle default
 * domains holds no table memory.
 */
import type { Device } from "../base/device.ts";
import { pciDisablePasid, pciEnablePasid } from "../base/pci/ats.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import { isErr, kerr, KError } from "../lib/errno.ts";
import { devIommu } from "../iommu/dev-iommu.ts";
import { IOMMU_DOMAIN_BLOCKED, IOMMU_DOMAIN_IDENTITY, IOMMU_DOMAIN_UNMANAGED, IommuDomain, type IommuDomainGeometry } from "../iommu/domain.ts";
import type { IommuDevice } from "../iommu/iommu-device.ts";
import type { IommuResvRegion } from "../iommu/resv-region.ts";
import type { DriverEnv } from "./driver.ts";
import type { IommuDomainOps, IommuIotlbGather, MappedBytes, TlbInvalidation, TlbInvalidationKind, TlbStats } from "../iommu/ops.ts";
import { iommuIotlbGatherAddRange } from "../pgtable/gather.ts";
import {
  allocIoPgtableOps,
  ioPgtableTopFootprint,
  IOMMU_READ,
  IOMMU_WRITE,
  pgsizesOf,
  type IoPgtableCfgInit,
  type IoPgtableFmt,
  type IoPgtableOps,
  type PgtableFindingKind,
} from "../pgtable/index.ts";

/** How many of a domain's most recent IOTLB invalidations its TlbLog keeps (a power of two). */
export const TLB_LOG_RECENT = 64;

const TLB_KINDS: readonly TlbInvalidationKind[] = ["flush_all", "flush_walk", "sync"];
const KIND_FLUSH_ALL = 0;
const KIND_FLUSH_WALK = 1;
const KIND_SYNC = 2;

/**
 * Invalidations a domain's driver issued, so tests can see what a change
 * caused: counts per callback, and a ring of the last TLB_LOG_RECENT
 * invalidations (kind, iova, size) in one typed array allocated with the
 * log, so recording one is three array writes and a counter.
 */
export class TlbLog {
  flushAll = 0;
  flushWalk = 0;
  addPage = 0;
  sync = 0;
  /** Invalidations recorded so far; the next one goes to ring slot `recorded % TLB_LOG_RECENT`. */
  recorded = 0;
  /** The ring: per slot, kind, iova and size. */
  private readonly ring = new Float64Array(3 * TLB_LOG_RECENT);

  private record(kind: number, iova: number, size: number): void {
    const r = this.ring;
    // `&` keeps the slot right past 2^31 records too (ToInt32 wraps by 2^32, a multiple of the ring size).
    const i = (this.recorded & (TLB_LOG_RECENT - 1)) * 3;
    r[i] = kind;
    r[i + 1] = iova;
    r[i + 2] = size;
    this.recorded++;
  }

  /** The whole IOTLB was invalidated (tlb_flush_all, flush_iotlb_all). */
  recordFlushAll(): void {
    this.flushAll++;
    this.record(KIND_FLUSH_ALL, 0, 0);
  }

  /** A table went away: walk caches and leaves for [iova, iova + size) were invalidated (tlb_flush_walk). */
  recordFlushWalk(iova: number, size: number): void {
    this.flushWalk++;
    this.record(KIND_FLUSH_WALK, iova, size);
  }

  /**
   * iotlb_sync of a gather; a non-empty gather invalidated [start, end].
   * Takes the gather, not its addresses: a call V8 does not inline would
   * box each address of 2^31 or more into a new heap number.
   */
  recordSync(gather: IommuIotlbGather): void {
    this.sync++;
    if (gather.end >= gather.start) this.record(KIND_SYNC, gather.start, gather.end - gather.start + 1);
  }

  /** The counts and the recorded invalidations, oldest first, as plain data. */
  stats(): TlbStats {
    const n = Math.min(this.recorded, TLB_LOG_RECENT);
    const invalidations: TlbInvalidation[] = [];
    for (let k = this.recorded - n; k < this.recorded; k++) {
      const i = (k & (TLB_LOG_RECENT - 1)) * 3;
      const kind = TLB_KINDS[this.ring[i]!]!;
      invalidations.push(kind === "flush_all" ? { kind, iova: null, size: null } : { kind, iova: this.ring[i + 1]!, size: this.ring[i + 2]! });
    }
    return {
      flushAll: this.flushAll,
      flushWalk: this.flushWalk,
      addPage: this.addPage,
      sync: this.sync,
      invalidations,
      invalidationsTotal: this.recorded,
    };
  }
}

/**
 * One instance's finalised page-table format: what a paging domain
 * allocated for that instance gets. Computed once per instance and shared
 * by its domains (each still gets its own tables).
 */
export interface PagingFormat {
  readonly iommu: IommuDevice;
  readonly fmt: IoPgtableFmt;
  /** The table the driver says it built (e.g. AMD's "amd-v2"), when it differs from the modelled format. */
  readonly label: string;
  /** The restricted configuration: page sizes, ias, oas. */
  readonly cfg: Readonly<Omit<IoPgtableCfgInit, "tlb" | "onFinding">>;
  readonly pgsizes: readonly number[];
  readonly geometry: IommuDomainGeometry;
}

export function pagingFormat(
  iommu: IommuDevice,
  fmt: IoPgtableFmt,
  cfg: Omit<IoPgtableCfgInit, "tlb" | "onFinding">,
  aperture: { start: number; end: number },
  label: string = fmt,
): PagingFormat {
  return Object.freeze({
    iommu,
    fmt,
    label,
    cfg: Object.freeze({ ...cfg }),
    // Not frozen: V8 (Node 20) compiles an indexed load from a frozen array to a generic IC call,
    // about 10 ns, and the core reads pgsizes[0] on every map and unmap. `readonly` keeps it unchanged.
    pgsizes: pgsizesOf(cfg.pgsizeBitmap),
    geometry: Object.freeze({ apertureStart: aperture.start, apertureEnd: aperture.end, forceAperture: true }),
  });
}

function newTlbLog(): TlbLog {
  return new TlbLog();
}

/** What a domain whose driver issued no invalidation reports. */
function noTlbStats(): TlbStats {
  return { flushAll: 0, flushWalk: 0, addPage: 0, sync: 0, invalidations: [], invalidationsTotal: 0 };
}

/** The top table a format's domains count before the model builds it, computed once per format. */
const topFootprints = new WeakMap<PagingFormat, ReturnType<typeof ioPgtableTopFootprint>>();
function topFootprint(format: PagingFormat): ReturnType<typeof ioPgtableTopFootprint> {
  let f = topFootprints.get(format);
  if (f === undefined) {
    f = ioPgtableTopFootprint(format.fmt, format.cfg);
    topFootprints.set(format, f);
  }
  return f;
}

export interface PgtableFinding {
  kind: PgtableFindingKind;
  iova: number;
  message: string;
}

export interface PagingDomainPriv {
  /**
   * The format of the instance the domain is finalised for: set at
   * allocation, or, for a domain a driver allocated without a device, by its
   * first attach (null until then).
   */
  format: PagingFormat | null;
  /** The IO page table, allocated on the first map. */
  pgtbl: IoPgtableOps | null;
  /** Invalidations issued (allocated with the page table or the first sync). */
  tlb: TlbLog | null;
  /** Kernel WARNs and quirks the page table reported (allocated on the first one). */
  findings: PgtableFinding[] | null;
}

export function pagingPriv(d: IommuDomain): PagingDomainPriv {
  return d.priv as PagingDomainPriv;
}

/** A static domain every device of the driver can attach to (no instance check): one per driver, as `ops->identity_domain` and `ops->blocked_domain` are. */
export function staticDomain(type: number): IommuDomain {
  const ops: IommuDomainOps = {
    attachDev: () => 0,
    setDevPasid: () => 0,
  };
  return new IommuDomain(type, ops, true);
}

export function staticIdentityDomain(): IommuDomain {
  return staticDomain(IOMMU_DOMAIN_IDENTITY);
}

export function staticBlockedDomain(): IommuDomain {
  return staticDomain(IOMMU_DOMAIN_BLOCKED);
}

function allocPgtbl(d: IommuDomain, p: PagingDomainPriv, env: DriverEnv, unfinalisedErrno: "ENODEV" | "EINVAL"): IoPgtableOps | KError {
  const report = env.report;
  // Before the domain is finalised it has no page table: the driver's errno (LateFinalise.mapErrno).
  // @kernel: arm_smmu_map_pages (no io-pgtable ops: -ENODEV)
  // @kernel: viommu_map_pages (the map's flags exceed the domain's, which finalisation sets: -EINVAL)
  if (p.format === null) return kerr(unfinalisedErrno, `${d} has no page table: it is not finalised for any instance until its first attach`);
  const tlb = (p.tlb ??= newTlbLog());
  const ops = allocIoPgtableOps(p.format.fmt, {
    ...p.format.cfg,
    memory: env.pgtableMemory,
    tlb: {
      tlbFlushAll: () => {
        tlb.recordFlushAll();
        d.iotlb?.invalidateAll();
      },
      // A table went away: walk caches and any leaf entries under it are invalidated now.
      tlbFlushWalk: (iova, size) => {
        tlb.recordFlushWalk(iova, size);
        d.iotlb?.invalidateRange(iova, iova + size - 1);
      },
      tlbAddPage: (gather, iova, granule) => {
        tlb.addPage++;
        iommuIotlbGatherAddRange(gather, iova, granule);
      },
    },
    onFinding: (kind, iova, message) => {
      (p.findings ??= []).push({ kind, iova, message });
      report?.(d, `${kind} at 0x${iova.toString(16)}: ${message}`);
    },
  });
  if (isErr(ops)) return ops;
  p.pgtbl = ops;
  return ops;
}

/** How a driver treats a domain allocated before it knew its instance. */
export interface LateFinalise {
  /** The core, for the trace note. */
  k: IommuCore;
  /** The driver's function that finalises (named in the trace). */
  finalise: string;
  /** The format of an instance's domains: the first attach finalises the domain with the attaching device's. */
  formatOf: (iommu: IommuDevice) => PagingFormat;
  /** Whether a PASID attach finalises it too (SMMUv3's set_dev_pasid), or is refused with EINVAL. */
  atPasid: boolean;
  /**
   * What map_pages returns before then: ENODEV where there is no io-pgtable
   * yet (arm_smmu_map_pages), EINVAL where the map's permissions exceed the
   * flags the domain has until it is finalised (viommu_map_pages).
   */
  mapErrno: "ENODEV" | "EINVAL";
}

/**
 * Domain ops of a paging domain. `attachCheck` is the driver's own rule for
 * which devices may attach (the instance check, feature checks); an
 * injected `fail_attach` fault refuses UNMANAGED domains (and any PASID
 * attachment) for that device. `finalise` is for drivers that can allocate
 * a domain without knowing its instance: the first attach finalises it for
 * the attaching device's instance, and later attaches meet `attachCheck`.
 */
export function pagingDomainOps(
  env: DriverEnv,
  attachCheck: (d: IommuDomain, dev: Device) => 0 | KError,
  late: LateFinalise | null = null,
): IommuDomainOps {
  const unfinalisedErrno = late?.mapErrno ?? "ENODEV";
  /** Finalise an unfinalised domain for dev's instance, if the driver does that here. */
  const finaliseFor = (d: IommuDomain, dev: Device, pasid: boolean): 0 | KError => {
    if (pagingPriv(d).format !== null) return 0;
    // A driver that does not finalise here refuses the domain.
    if (late === null || (pasid && !late.atPasid)) return kerr("EINVAL", `${d} is not finalised for any instance${pasid ? ": attach it to a device first" : ""}`);
    const iommu = devIommu(dev)?.iommuDev ?? null;
    if (iommu === null) return kerr("ENODEV", `${dev.name} has no IOMMU to finalise ${d} for`);
    if (late.k.tracing) late.k.note(late.finalise, dev.name, `${d} allocated without a device: finalised now for ${iommu.name}, the instance of the first device attached`);
    pagingDomainFinalise(d, late.formatOf(iommu));
    return 0;
  };
  return {
    attachDev(d, dev) {
      const fault = env.quirks.failAttach.get(dev.name);
      if (fault !== undefined && d.type === IOMMU_DOMAIN_UNMANAGED) return kerr(fault, `injected fault: attach_dev of ${d} to ${dev.name}`);
      // An unfinalised domain is finalised for the attaching device's instance.
      // @kernel: arm_smmu_attach_dev
      // @kernel: viommu_attach_dev
      const f = finaliseFor(d, dev, false);
      if (f !== 0) return f;
      return attachCheck(d, dev);
    },
    setDevPasid(d, dev) {
      // A PCI function whose PASID capability could not be enabled at probe takes no PASID domain.
      if (dev.pci !== null && !dev.pci.pasidEnabled) return kerr("EINVAL", `PASID is not enabled on ${dev.name}`);
      const fault = env.quirks.failAttach.get(dev.name);
      if (fault !== undefined) return kerr(fault, `injected fault: set_dev_pasid of ${d} on ${dev.name}`);
      // @kernel: arm_smmu_s1_set_dev_pasid (SMMUv3 finalises an unfinalised domain here too; LateFinalise.atPasid)
      const f = finaliseFor(d, dev, true);
      if (f !== 0) return f;
      return attachCheck(d, dev);
    },
    mapPages(d: IommuDomain, iova: number, paddr: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes) {
      const p = pagingPriv(d);
      // The table exists but for the first map: no type test on the way.
      if (p.pgtbl !== null) return p.pgtbl.mapPages(iova, paddr, pgsize, pgcount, prot, mapped);
      const t = allocPgtbl(d, p, env, unfinalisedErrno);
      if (t instanceof KError) return t;
      return t.mapPages(iova, paddr, pgsize, pgcount, prot, mapped);
    },
    unmapPages(d: IommuDomain, iova: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null) {
      const t = pagingPriv(d).pgtbl;
      return t === null ? 0 : t.unmapPages(iova, pgsize, pgcount, gather);
    },
    mapPagesPfn(d: IommuDomain, iovaPfn: number, paddrPfn: number, pgsize: number, pgcount: number, prot: number, mapped: MappedBytes) {
      const p = pagingPriv(d);
      if (p.pgtbl !== null) return p.pgtbl.mapPagesPfn(iovaPfn, paddrPfn, pgsize, pgcount, prot, mapped);
      const t = allocPgtbl(d, p, env, unfinalisedErrno);
      if (t instanceof KError) return t;
      return t.mapPagesPfn(iovaPfn, paddrPfn, pgsize, pgcount, prot, mapped);
    },
    unmapPagesPfn(d: IommuDomain, iovaPfn: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null) {
      const t = pagingPriv(d).pgtbl;
      return t === null ? 0 : t.unmapPagesPfn(iovaPfn, pgsize, pgcount, gather);
    },
    iovaToPhys(d: IommuDomain, iova: number) {
      const t = pagingPriv(d).pgtbl;
      return t === null ? 0 : t.iovaToPhys(iova);
    },
    // Model only: the permission bits of the leaf at iova, which device DMA checks its access against.
    iovaProt(d: IommuDomain, iova: number) {
      const t = pagingPriv(d).pgtbl;
      return t === null ? 0 : t.iovaProt(iova);
    },
    iotlbSync(d: IommuDomain, gather: IommuIotlbGather) {
      (pagingPriv(d).tlb ??= newTlbLog()).recordSync(gather);
      if (gather.end >= gather.start) d.iotlb?.invalidateRange(gather.start, gather.end);
      // Table pages the unmap detached are free once the IOTLB no longer walks them.
      gather.freelist.put();
    },
    flushIotlbAll(d: IommuDomain) {
      (pagingPriv(d).tlb ??= newTlbLog()).recordFlushAll();
      d.iotlb?.invalidateAll();
    },
    stats(d: IommuDomain) {
      const p = pagingPriv(d);
      const t = p.pgtbl;
      // The kernel allocates the top table when the domain is finalised; the model builds it at the
      // first map (a machine of 100,000 devices would otherwise hold 100,000 idle pgds), and counts it from the start.
      // A freed domain holds nothing.
      const top = t === null && p.format !== null && !d.freed ? topFootprint(p.format) : null;
      return {
        mappedBytes: t === null ? 0 : t.leafBytes(),
        tablePages: t !== null ? t.tablePages() : top === null || isErr(top) ? 0 : top.pages,
        tableBytes: t !== null ? t.tableBytes() : top === null || isErr(top) ? 0 : top.bytes,
        tlb: p.tlb === null ? noTlbStats() : p.tlb.stats(),
        findings: (p.findings ?? []).map((f) => `${f.kind} at 0x${f.iova.toString(16)}: ${f.message}`),
      };
    },
    free(d: IommuDomain) {
      const p = pagingPriv(d);
      p.pgtbl?.free();
      p.pgtbl = null;
    },
  };
}

/**
 * Makes a paging domain of `type` finalised for no instance yet, as a driver
 * whose domain_alloc had no device does (iommu_domain_alloc(bus), up to
 * v6.12; arm-smmu v2 always): no page table, no aperture, and the page
 * sizes the core takes from the ops (`ops->pgsize_bitmap`, what the
 * driver's instances together support) until its first attach finalises it.
 */
// @kernel: __iommu_domain_alloc (pgsize_bitmap from the ops when the driver left it 0)
export function newUnfinalisedPagingDomain(type: number, ops: IommuDomainOps, opsPgsizeBitmap: number): IommuDomain {
  const priv: PagingDomainPriv = { format: null, pgtbl: null, tlb: null, findings: null };
  return new IommuDomain(type, ops, false, null, pgsizesOf(opsPgsizeBitmap), undefined, priv);
}

/** Finalises an unfinalised paging domain for the instance of `format`: its page sizes, aperture and table format. */
export function pagingDomainFinalise(d: IommuDomain, format: PagingFormat): void {
  pagingPriv(d).format = format;
  d.iommu = format.iommu;
  d.pgsizes = format.pgsizes;
  d.geometry = format.geometry;
  d.pgtableFormat = format.label;
}

/** Makes a paging domain of `type` finalised for the instance of `format`. */
export function newPagingDomain(type: number, ops: IommuDomainOps, format: PagingFormat): IommuDomain {
  const priv: PagingDomainPriv = {
    format,
    pgtbl: null,
    tlb: null,
    findings: null,
  };
  const d = new IommuDomain(type, ops, false, format.iommu, format.pgsizes, format.geometry, priv);
  d.pgtableFormat = format.label;
  return d;
}

/** The instance check most drivers make in attach_dev: a domain serves the instance it was finalised for. */
export function sameInstance(d: IommuDomain, dev: Device, driver: string): 0 | KError {
  const iommu = devIommu(dev)?.iommuDev ?? null;
  if (d.iommu !== null && iommu !== d.iommu) {
    return kerr("EINVAL", `${driver}: ${d} was finalised for ${d.iommu.name}, but ${dev.name} is behind ${iommu?.name ?? "no IOMMU"}`);
  }
  return 0;
}

/** Reserved regions firmware reports for a device (RMRR, IORT RMR, DT iommu-addresses). */
// @kernel: iommu_dma_get_resv_regions (the firmware part)
export function firmwareResvRegions(env: DriverEnv, dev: Device): IommuResvRegion[] {
  const fw = env.firmware.resvRegions.get(dev.name);
  if (fw === undefined) return [];
  return fw.map((r) => ({ start: r.start, length: r.length, prot: IOMMU_READ | IOMMU_WRITE, type: r.kind }));
}

/** The driver's def_domain_type answer from its quirk table (0: no preference). */
export function quirkDefDomainType(env: DriverEnv, dev: Device): number {
  return env.quirks.defDomainType.get(dev.name) ?? 0;
}

/**
 * What the PASID-capable drivers do in probe_device (arm_smmu_enable_pasid,
 * intel and amd alike): enable PASID on a PCI function whose capability
 * the instance can use. A failure (no ACS isolation) is logged, not fatal:
 * the device just cannot take PASID domains.
 */
export function enablePasidAtProbe(k: IommuCore, dev: Device, iommu: IommuDevice): void {
  if (dev.pci === null || dev.pci.maxPasids === 0 || iommu.maxPasids === 0 || dev.pci.pasidEnabled) return;
  const r = pciEnablePasid(dev);
  if (r !== 0) k.warn("pci_enable_pasid", dev.name, `Failed to enable PASID: ${r.message}`);
}

export function disablePasidAtRelease(dev: Device): void {
  if (dev.pci !== null) pciDisablePasid(dev);
}
