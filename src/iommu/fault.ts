/**
 * The legacy per-domain fault reporting of iommu.c: a domain user installs
 * a handler with iommu_set_fault_handler, and an IOMMU driver that takes a
 * fault on the domain calls report_iommu_fault, which hands it to that
 * handler or returns -ENOSYS. (The IOPF path of io-pgfault.c, page requests
 * routed to an iommufd fault queue, is separate and not modelled here.)
 *
 * The handler lives in the domain's cookie slot, which a domain has only one
 * of: a DMA-API domain's slot holds its IOVA cookie from allocation on (the
 * core calls iommu_get_dma_cookie when it allocates one), an SVA domain's
 * its mm, an iommufd HWPT's its hw_pagetable. Only a domain whose slot is
 * still empty (in practice an UNMANAGED paging domain of a kernel user such
 * as remoteproc, msm or VFIO type1, or a driver's static domain) takes a
 * handler, and only once.
 */
import type { Device } from "../base/device.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { IOMMU_DOMAIN_SVA, iommuIsDmaDomain, type IommuDomain, type IommuFaultHandler } from "./domain.ts";
import type { IommuCore } from "./iommu-core.ts";

/* iommu fault flags (include/linux/iommu.h). */
export const IOMMU_FAULT_READ = 0x0;
export const IOMMU_FAULT_WRITE = 0x1;

/** -ENOSYS: report_iommu_fault's answer when no handler is installed. */
export const REPORT_FAULT_NO_HANDLER = -38;

/** `enum iommu_domain_cookie_type`, the kinds the model can tell apart (no MSI cookie or iommufd HWPT yet). */
export type IommuDomainCookieType = "NONE" | "DMA_IOVA" | "FAULT_HANDLER" | "SVA";

/**
 * What occupies the domain's cookie slot. The model's DMA layer creates the
 * IOVA cookie lazily (domain.cookie) where the kernel does it at allocation,
 * so a DMA-API domain counts as DMA_IOVA from the start, as in the kernel.
 */
// @kernel: iommu_get_dma_cookie (a DMA-API domain holds its IOVA cookie from allocation)
export function iommuDomainCookieType(domain: IommuDomain): IommuDomainCookieType {
  if (domain.faultHandler !== null) return "FAULT_HANDLER";
  if (iommuIsDmaDomain(domain) || domain.cookie !== null) return "DMA_IOVA";
  if (domain.type === IOMMU_DOMAIN_SVA) return "SVA";
  return "NONE";
}

/**
 * Install `handler` with `token` on `domain`. The kernel returns nothing: a
 * domain whose cookie slot is taken (a DMA-API domain, an SVA domain, one
 * that already has a handler) is a WARN_ON and the call is ignored. The
 * model WARNs the same way, leaves the domain untouched, and also returns
 * EBUSY so that a caller (or a scenario) can see the refusal.
 */
// @kernel: iommu_set_fault_handler
export function iommuSetFaultHandler(k: IommuCore, domain: IommuDomain, handler: IommuFaultHandler, token: unknown): 0 | KError {
  const cookie = iommuDomainCookieType(domain);
  if (cookie !== "NONE") {
    const msg = `${domain}'s cookie slot holds ${cookie === "DMA_IOVA" ? "the DMA-API IOVA cookie" : cookie === "SVA" ? "an SVA mm" : "a fault handler already"} (cookie_type ${cookie}, not NONE): the handler is not installed`;
    k.warn("iommu_set_fault_handler", String(domain), `WARN_ON: ${msg}`);
    return kerr("EBUSY", msg);
  }
  domain.faultHandler = handler;
  domain.faultHandlerToken = token;
  return 0;
}

/**
 * An IOMMU driver reports a fault on `domain` by `dev` at `iova`; flags is
 * IOMMU_FAULT_READ or IOMMU_FAULT_WRITE. Returns the handler's answer, or
 * -ENOSYS without a handler. The fault is traced either way
 * (trace_io_page_fault).
 */
// @kernel: report_iommu_fault
export function reportIommuFault(k: IommuCore, domain: IommuDomain, dev: Device, iova: number, flags: number): number {
  const h = domain.faultHandler;
  const ret = h !== null ? h(domain, dev, iova, flags, domain.faultHandlerToken) : REPORT_FAULT_NO_HANDLER;
  if (k.tracing) {
    const how = h === null ? "no handler (-ENOSYS)" : `handler returned ${ret}`;
    k.note("report_iommu_fault", dev.name, `iova 0x${iova.toString(16)} ${flags & IOMMU_FAULT_WRITE ? "write" : "read"} in ${domain}: ${how}`);
  }
  return ret;
}
