/**
 * Device DMA through the IOMMU, as the hardware performs it: the device's
 * requester ID selects the domain its group is attached to (in the
 * driver's view, the domain attach_dev installed), the IOTLB answers if it
 * holds the page, otherwise the page table is walked and the IOTLB filled
 * with the translation and the leaf's permissions. No translation, or an
 * access the permissions do not grant (a write through a read-only leaf, a
 * read through a write-only one), is a fault, reported to the domain's
 * fault handler (report_iommu_fault with IOMMU_FAULT_READ or _WRITE).
 * Identity domains pass addresses through; blocked domains reject
 * everything. An IOTLB hit for a page the page table no longer maps, or
 * that it no longer lets this access through, is a stale translation: the
 * DMA still goes through, exactly as it would in hardware until the
 * invalidation happens.
 *
 * Only a driver that invalidates has an IOTLB: a domain whose ops have
 * neither iotlb_sync nor flush_iotlb_all (the iommufd selftest mock, whose
 * "translation" is a lookup in its xarray every time) is walked on every
 * access and never caches anything.
 */
import type { Device } from "../base/device.ts";
import { hex } from "../lib/bits.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../pgtable/types.ts";
import { devIommu } from "./dev-iommu.ts";
import { IOMMU_DOMAIN_BLOCKED, IOMMU_DOMAIN_IDENTITY, type IommuDomain } from "./domain.ts";
import { IOMMU_FAULT_READ, IOMMU_FAULT_WRITE, reportIommuFault } from "./fault.ts";
import type { IommuCore } from "./iommu-core.ts";
import { IommuIotlb } from "./iotlb.ts";

export interface DmaPage {
  iova: number;
  /** Physical address reached (the page's base plus the offset), or -1 on a fault. */
  pa: number;
  /** The IOTLB answered with a translation (or a permission) the page table no longer has. */
  stale: boolean;
}

/** Why a device DMA faulted. */
export type DmaFaultType =
  /** Nothing maps the IOVA. */
  | "translation"
  /** The leaf (or the IOTLB entry) does not grant the access. */
  | "permission"
  /** The device is attached to a blocking domain. */
  | "blocked";

export interface DeviceDmaResult {
  /** The domain the DMA went through, null without an IOMMU (no translation). */
  domain: IommuDomain | null;
  pages: DmaPage[];
  /** The first faulting IOVA, or null. */
  fault: number | null;
  faultReason: string | null;
  /** What kind of fault, null without one. */
  faultType: DmaFaultType | null;
  /** The flags report_iommu_fault got (IOMMU_FAULT_READ / IOMMU_FAULT_WRITE), null without a fault. */
  faultFlags: number | null;
  /** report_iommu_fault's return (the handler's answer, -ENOSYS without one), null without a fault. */
  faultRet: number | null;
}

/** Whether the domain's driver has an IOTLB to model: it has an invalidation op. */
// @kernel: iommu_iotlb_sync (a driver without iotlb_sync/flush_iotlb_all never invalidates)
export function iommuDomainCachesTranslations(domain: IommuDomain): boolean {
  return domain.ops.iotlbSync !== undefined || domain.ops.flushIotlbAll !== undefined;
}

function ok(domain: IommuDomain | null, pages: DmaPage[]): DeviceDmaResult {
  return { domain, pages, fault: null, faultReason: null, faultType: null, faultFlags: null, faultRet: null };
}

function fault(k: IommuCore, domain: IommuDomain, dev: Device, pages: DmaPage[], iova: number, write: boolean, type: DmaFaultType, reason: string, fills = 0): DeviceDmaResult {
  const flags = write ? IOMMU_FAULT_WRITE : IOMMU_FAULT_READ;
  const ret = reportIommuFault(k, domain, dev, iova, flags);
  // What the DMA did before it faulted stays done: the translations it cached, the stale entries it went through.
  if (fills > 0 || pages.some((p) => p.stale)) {
    k.effect("fault-keeps-iotlb-entries", dev.name, `the DMA faulted at IOVA ${hex(iova)} after ${pages.length} page(s) of ${domain}; the IOTLB keeps the ${fills} translation(s) it cached`);
  }
  return { domain, pages, fault: iova, faultReason: reason, faultType: type, faultFlags: flags, faultRet: ret };
}


/** Why `prot` does not let `write` through, for a fault message. */
function permissionReason(domain: IommuDomain, iova: number, prot: number, write: boolean, cached: boolean): string {
  const what = prot & IOMMU_READ ? "read-only" : prot & IOMMU_WRITE ? "write-only" : "without read or write permission";
  return `${domain} ${cached ? "has an IOTLB entry for" : "maps"} IOVA ${hex(iova)} ${what}: a ${write ? "write" : "read"} is not permitted`;
}

/** One DMA of `size` bytes from `iova` by `dev`, page by page; stops at the first fault. */
export function iommuDeviceDma(k: IommuCore, dev: Device, iova: number, size: number, write: boolean): DeviceDmaResult {
  const p = devIommu(dev);
  const domain = p?.iommuDev ? p.domain : null;
  const pages: DmaPage[] = [];
  if (domain === null) {
    // No IOMMU translates this device: its DMA addresses are physical addresses.
    pages.push({ iova, pa: iova, stale: false });
    return ok(null, pages);
  }
  if (domain.type === IOMMU_DOMAIN_BLOCKED) return fault(k, domain, dev, pages, iova, write, "blocked", `${domain} blocks all DMA`);
  if (domain.type === IOMMU_DOMAIN_IDENTITY) {
    pages.push({ iova, pa: iova, stale: false });
    return ok(domain, pages);
  }
  const gran = domain.pgsizes[0] ?? 4096;
  const iotlb = iommuDomainCachesTranslations(domain) ? (domain.iotlb ??= new IommuIotlb(gran)) : null;
  const iovaProt = domain.ops.iovaProt;
  const need = write ? IOMMU_WRITE : IOMMU_READ;
  const end = iova + size;
  let fills = 0;
  for (let a = iova; a < end; a = (Math.floor(a / gran) + 1) * gran) {
    const off = a % gran;
    const base = a - off;
    // The page table as it is now: its translation (-1: none) and the permissions of its leaf.
    let tprot: number;
    let tpa: number;
    if (iovaProt !== undefined) {
      tprot = iovaProt(domain, base);
      tpa = tprot === 0 ? -1 : (domain.ops.iovaToPhys?.(domain, base) ?? 0);
    } else {
      // A driver that cannot say: any translation grants every access (iova_to_phys 0 is none).
      const pa = domain.ops.iovaToPhys?.(domain, base) ?? 0;
      tpa = pa === 0 ? -1 : pa;
      tprot = tpa < 0 ? 0 : IOMMU_READ | IOMMU_WRITE;
    }
    const hit = iotlb === null ? -1 : iotlb.lookup(base);
    if (hit >= 0) {
      // The hardware goes by the cached entry, permissions included.
      const cprot = iotlb!.lookupProt(base);
      if ((cprot & need) === 0) return fault(k, domain, dev, pages, a, write, "permission", permissionReason(domain, a, cprot, write, true), fills);
      pages.push({ iova: a, pa: hit + off, stale: tpa !== hit || (tprot & need) === 0 });
      continue;
    }
    if (tpa < 0) return fault(k, domain, dev, pages, a, write, "translation", `${domain} has no translation for IOVA ${hex(a)}`, fills);
    // A walk that found a valid leaf is cached whatever the access, as a TLB does.
    if (iotlb !== null) {
      iotlb.fill(base, tpa, tprot);
      fills++;
    }
    if ((tprot & need) === 0) return fault(k, domain, dev, pages, a, write, "permission", permissionReason(domain, a, tprot, write, false), fills);
    pages.push({ iova: a, pa: tpa + off, stale: false });
  }
  return ok(domain, pages);
}
