/**
 * Default domains (iommu.c): which type a group gets (command line, the
 * driver's preference, untrusted devices, disagreeing members), how it is
 * allocated (on the group's first device), and how it is installed with
 * the direct mappings firmware requires.
 */
import type { Device } from "../base/device.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import {
  IOMMU_SET_DOMAIN_MUST_SUCCEED,
  iommuGroupSetDomain,
  iommuGroupSetDomainInternal,
} from "./attach.ts";
import { devIommu, devIommuOps } from "./dev-iommu.ts";
import { iommuCreateDeviceDirectMappings } from "./direct-mapping.ts";
import {
  adoptDomain,
  IOMMU_HWPT_ALLOC_PASID,
  iommuAllocIdentityDomain,
  iommuDomainFree,
  iommuPagingDomainAllocFlagsTyped,
} from "./domain-alloc.ts";
import {
  __IOMMU_DOMAIN_PAGING,
  domainTypeName,
  IOMMU_DOMAIN_DMA,
  IOMMU_DOMAIN_IDENTITY,
  iommuIsDmaDomain,
  type IommuDomain,
} from "./domain.ts";
import { iommuGroupFirstDev, type IommuGroup } from "./group.ts";
import type { IommuCore } from "./iommu-core.ts";

// @kernel: iommu_get_def_domain_type (one member's preference, merged into cur)
function iommuGetDefDomainType(k: IommuCore, group: IommuGroup, dev: Device, cur: number): number {
  const ops = devIommuOps(dev)!;
  let type: number;
  if (ops.defaultDomain) type = ops.defaultDomain.type;
  else if (ops.defDomainType) type = ops.defDomainType(dev);
  else return cur;
  if (type === 0 || cur === type) return cur;
  if (cur === 0) return type;
  k.warn(
    "iommu_get_def_domain_type",
    dev.name,
    `IOMMU driver error, requesting conflicting def_domain_type, ${domainTypeName(cur)} and ${domainTypeName(type)}, for devices in ${group}`,
  );
  // Drivers may force IDENTITY or DMA; IDENTITY takes precedence.
  return type === IOMMU_DOMAIN_IDENTITY ? type : cur;
}

// @kernel: iommu_get_default_domain_type (-1: no acceptable type)
export function iommuGetDefaultDomainType(k: IommuCore, group: IommuGroup, targetType: number): number {
  let driverType = 0;
  let untrusted: Device | null = null;
  for (const gdev of group.devices) {
    driverType = iommuGetDefDomainType(k, group, gdev.dev, driverType);
    if (gdev.dev.pci?.untrusted) untrusted = gdev.dev;
  }
  if (untrusted !== null) {
    if (driverType !== 0 && driverType !== IOMMU_DOMAIN_DMA) {
      k.warn("iommu_get_default_domain_type", untrusted.name, "Device is not trusted, but driver is overriding group type");
      return -1;
    }
    driverType = IOMMU_DOMAIN_DMA;
  }
  if (targetType !== 0) {
    if (driverType !== 0 && targetType !== driverType) return -1;
    return targetType;
  }
  return driverType;
}

// @kernel: __iommu_group_alloc_default_domain (on the group's first device)
function groupAllocDefaultDomainTyped(k: IommuCore, group: IommuGroup, reqType: number): IommuDomain | KError {
  const dev = iommuGroupFirstDev(group)!;
  if ((reqType & __IOMMU_DOMAIN_PAGING) !== 0) {
    const flags = devIommu(dev)!.maxPasids > 0 ? IOMMU_HWPT_ALLOC_PASID : 0;
    const d = iommuPagingDomainAllocFlagsTyped(k, dev, reqType, flags);
    if (flags !== 0 && isErr(d) && d.errno === "EOPNOTSUPP") {
      return iommuPagingDomainAllocFlagsTyped(k, dev, reqType, 0);
    }
    return d;
  }
  if (reqType === IOMMU_DOMAIN_IDENTITY) return iommuAllocIdentityDomain(k, dev);
  return kerr("EINVAL", `no default domain of type ${domainTypeName(reqType)}`);
}

// @kernel: iommu_group_alloc_default_domain
function iommuGroupAllocDefaultDomain(k: IommuCore, group: IommuGroup, reqType: number): IommuDomain | KError {
  const ops = devIommuOps(iommuGroupFirstDev(group)!)!;
  if (ops.defaultDomain) {
    if (reqType !== ops.defaultDomain.type) {
      return kerr("EINVAL", `${ops.name} forces a ${domainTypeName(ops.defaultDomain.type)} default domain; ${domainTypeName(reqType)} was asked`);
    }
    return adoptDomain(k, ops.defaultDomain);
  }
  if (reqType !== 0) return groupAllocDefaultDomainTyped(k, group, reqType);
  const dom = groupAllocDefaultDomainTyped(k, group, k.defDomainType);
  if (!isErr(dom) || k.defDomainType === IOMMU_DOMAIN_DMA) return dom;
  const dma = groupAllocDefaultDomainTyped(k, group, IOMMU_DOMAIN_DMA);
  if (isErr(dma)) return dma;
  k.warn(
    "iommu_group_alloc_default_domain",
    group.toString(),
    `Failed to allocate default IOMMU domain of type ${domainTypeName(k.defDomainType)} - Falling back to IOMMU_DOMAIN_DMA`,
  );
  return dma;
}

// @kernel: iommu_setup_default_domain
export function iommuSetupDefaultDomain(k: IommuCore, group: IommuGroup, targetType: number): 0 | KError {
  const oldDom = group.defaultDomain;
  const wasOn = group.domain;
  const reqType = iommuGetDefaultDomainType(k, group, targetType);
  if (reqType < 0) return kerr("EINVAL", `${group}: its devices cannot agree on a default domain type`);
  const dom = iommuGroupAllocDefaultDomain(k, group, reqType);
  if (isErr(dom)) return dom;
  if (group.defaultDomain === dom) return 0;
  if (k.tracing) k.note("iommu_setup_default_domain", group.toString(), `${dom}${reqType === 0 ? "" : ` (type requested by the driver or sysfs)`}`);

  // IOMMU_RESV_DIRECT regions must be mapped before their device is attached.
  let directFailed = false;
  for (const gdev of group.devices) {
    if (iommuCreateDeviceDirectMappings(k, dom, gdev.dev) !== 0) {
      directFailed = true;
      k.warn("iommu_setup_default_domain", gdev.dev.name, "IOMMU driver was not able to establish FW requested direct mapping");
    }
  }
  group.defaultDomain = dom;
  let ret: 0 | KError = 0;
  if (group.domain === null) {
    // Drivers may not fail the first attach; the domain stays default so release frees it.
    ret = iommuGroupSetDomainInternal(k, group, dom, IOMMU_SET_DOMAIN_MUST_SUCCEED);
    if (ret !== 0) {
      k.warn("iommu_setup_default_domain", group.toString(), `first attach failed: ${ret.errno}`);
      if (oldDom !== null) iommuDomainFree(k, oldDom);
      return ret;
    }
  } else {
    ret = iommuGroupSetDomain(k, group, dom);
    if (ret !== 0) {
      if (oldDom !== null) {
        iommuDomainFree(k, dom);
        group.defaultDomain = oldDom;
      }
      return ret;
    }
  }
  if (directFailed) {
    for (const gdev of group.devices) {
      ret = iommuCreateDeviceDirectMappings(k, dom, gdev.dev);
      if (ret === 0) continue;
      if (oldDom !== null) {
        // @kernel: iommu_setup_default_domain (err_restore_domain: back to the old default, whatever the group was on)
        iommuGroupSetDomainInternal(k, group, oldDom, IOMMU_SET_DOMAIN_MUST_SUCCEED);
        iommuDomainFree(k, dom);
        group.defaultDomain = oldDom;
        if (wasOn !== oldDom) k.effect("default-domain-restore-moves-group", group.toString(), `the new default domain failed with ${ret.errno} after the switch; ${group} is back on its old default ${oldDom}, not on ${wasOn}`);
      }
      return ret;
    }
  }
  if (oldDom !== null) iommuDomainFree(k, oldDom);
  return 0;
}

// @kernel: iommu_setup_dma_ops (dev->dma_iommu follows the default domain; PCI tries 32-bit IOVAs first)
export function iommuSetupDmaOps(dev: Device, domain: IommuDomain): void {
  dev.dmaIommu = iommuIsDmaDomain(domain);
  if (dev.dmaIommu && dev.pci !== null) devIommu(dev)!.pci32bitWorkaround = true;
}
