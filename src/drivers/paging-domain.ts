/**
 * Paging domains the drivers share: an IO page table from pgtable/,
 * finalised for one instance (its format) at allocation or, for a domain
 * allocated without a device, by its first attach. A paging domain's tables
 * are allocated on its first map, so a machine with 100,000 idle default
 * domains holds no table memory.
 */
import type { Device } from "../base/device.ts";
import { devIommu } from "../iommu/dev-iommu.ts";
import { IOMMU_DOMAIN_UNMANAGED, IommuDomain } from "../iommu/domain.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import type { IommuDevice } from "../iommu/iommu-device.ts";
import type { IommuDomainOps, IommuIotlbGather, MappedBytes } from "../iommu/ops.ts";
import { isErr, kerr, KError } from "../lib/errno.ts";
import { iommuIotlbGatherAddRange } from "../pgtable/gather.ts";
import { allocIoPgtableOps, pgsizesOf, type IoPgtableOps, type PgtableFindingKind } from "../pgtable/index.ts";
import type { DriverEnv } from "./driver.ts";
import { topFootprint, type PagingFormat } from "./paging-format.ts";
import { newTlbLog, noTlbStats, type TlbLog } from "./tlb-log.ts";

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
