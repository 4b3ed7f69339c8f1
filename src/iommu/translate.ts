/**
 * Device DMA through the IOMMU, as the hardware performs it: the device's
 * requester ID selects the domain its group is attached to (in the
 * driver's view, the domain attach_dev installed), the IOTLB answers if it
 * holds the page, otherwise the page table is walked and the IOTLB filled.
 * No translation is a fault, reported to the domain's fault handler
 * (report_iommu_fault). Identity domains pass addresses through; blocked
 * domains reject everything. An IOTLB hit for a page the page table no
 * longer maps is a stale translation: the DMA still goes through, exactly
 * as it would in hardware until the invalidation happens.
 */
import type { Device } from "../base/device.ts";
import { devIommu } from "./dev-iommu.ts";
import { IOMMU_DOMAIN_BLOCKED, IOMMU_DOMAIN_IDENTITY, type IommuDomain } from "./domain.ts";
import type { IommuCore } from "./iommu-core.ts";
import { IommuIotlb } from "./iotlb.ts";

export interface DmaPage {
  iova: number;
  /** Physical address reached (the page's base plus the offset), or -1 on a fault. */
  pa: number;
  /** The IOTLB answered with a translation the page table no longer has. */
  stale: boolean;
}

export interface DeviceDmaResult {
  /** The domain the DMA went through, null without an IOMMU (no translation). */
  domain: IommuDomain | null;
  pages: DmaPage[];
  /** The first faulting IOVA, or null. */
  fault: number | null;
  faultReason: string | null;
}

// @kernel: report_iommu_fault (-ENOSYS without a handler)
function reportIommuFault(k: IommuCore, domain: IommuDomain, dev: Device, iova: number, write: boolean): number {
  const ret = domain.faultHandler ? domain.faultHandler(iova, write) : -38;
  if (k.tracing) k.note("report_iommu_fault", dev.name, `iova 0x${iova.toString(16)} ${write ? "write" : "read"} in ${domain}: handler ${ret === -38 ? "none (-ENOSYS)" : ret}`);
  return ret;
}

/** One DMA of `size` bytes from `iova` by `dev`, page by page; stops at the first fault. */
export function iommuDeviceDma(k: IommuCore, dev: Device, iova: number, size: number, write: boolean): DeviceDmaResult {
  const p = devIommu(dev);
  const domain = p?.iommuDev ? p.domain : null;
  const pages: DmaPage[] = [];
  if (domain === null) {
    // No IOMMU translates this device: its DMA addresses are physical addresses.
    pages.push({ iova, pa: iova, stale: false });
    return { domain: null, pages, fault: null, faultReason: null };
  }
  if (domain.type === IOMMU_DOMAIN_BLOCKED) {
    reportIommuFault(k, domain, dev, iova, write);
    return { domain, pages, fault: iova, faultReason: `${domain} blocks all DMA` };
  }
  if (domain.type === IOMMU_DOMAIN_IDENTITY) {
    pages.push({ iova, pa: iova, stale: false });
    return { domain, pages, fault: null, faultReason: null };
  }
  const gran = domain.pgsizes[0] ?? 4096;
  const iotlb = (domain.iotlb ??= new IommuIotlb(gran));
  const end = iova + size;
  for (let a = iova; a < end; a = (Math.floor(a / gran) + 1) * gran) {
    const off = a % gran;
    const base = a - off;
    const walked = domain.ops.iovaToPhys?.(domain, base) ?? 0;
    const hit = iotlb.lookup(base);
    if (hit >= 0) {
      pages.push({ iova: a, pa: hit + off, stale: walked !== hit });
      continue;
    }
    if (walked === 0) {
      reportIommuFault(k, domain, dev, a, write);
      return { domain, pages, fault: a, faultReason: `${domain} has no translation for IOVA 0x${a.toString(16)}` };
    }
    iotlb.fill(base, walked);
    pages.push({ iova: a, pa: walked + off, stale: false });
  }
  return { domain, pages, fault: null, faultReason: null };
}
