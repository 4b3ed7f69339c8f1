/**
 * Domain allocation and freeing through a device's ops (iommu.c):
 * paging domains are finalised for the instance serving that device;
 * identity and blocking domains prefer the driver's static ones.
 */
import type { BusType } from "../base/bus.ts";
import type { Device } from "../base/device.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { devHasIommu, devIommuOps } from "./dev-iommu.ts";
import {
  IOMMU_DOMAIN_IDENTITY,
  IOMMU_DOMAIN_UNMANAGED,
  type IommuDomain,
} from "./domain.ts";
import { iommuGroupFirstDev, type IommuGroup } from "./group.ts";
import type { IommuCore } from "./iommu-core.ts";
import type { IommuOps } from "./ops.ts";

// include/uapi/linux/iommufd.h: IOMMU_HWPT_ALLOC_* flags the core passes through
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;

/** Gives a domain its model id and lists it as live, the first time the core holds it. */
export function adoptDomain(k: IommuCore, d: IommuDomain): IommuDomain {
  if (d.id === 0) d.id = k.domainIda.alloc();
  d.effects ??= k;
  if (!d.freed) k.domains.add(d);
  return d;
}

// @kernel: iommu_domain_init
function iommuDomainInit(k: IommuCore, d: IommuDomain, type: number, ops: IommuOps): IommuDomain {
  d.type = type;
  d.owner = ops;
  return adoptDomain(k, d);
}

// @kernel: __iommu_paging_domain_alloc_flags
export function iommuPagingDomainAllocFlagsTyped(
  k: IommuCore,
  dev: Device,
  type: number,
  flags: number,
): IommuDomain | KError {
  if (!devHasIommu(dev)) return kerr("ENODEV", `${dev.name} has no IOMMU to allocate a domain on`);
  const ops = devIommuOps(dev)!;
  let d: IommuDomain | KError;
  if (flags === 0 && ops.domainAllocPaging) d = ops.domainAllocPaging(dev);
  else if (ops.domainAllocPagingFlags) d = ops.domainAllocPagingFlags(dev, flags, null);
  else return kerr("EOPNOTSUPP", `${ops.name} cannot allocate a paging domain with flags 0x${flags.toString(16)}`);
  if (isErr(d)) return d;
  return iommuDomainInit(k, d, type, ops);
}

// @kernel: iommu_paging_domain_alloc_flags
export function iommuPagingDomainAllocFlags(k: IommuCore, dev: Device, flags: number): IommuDomain | KError {
  return iommuPagingDomainAllocFlagsTyped(k, dev, IOMMU_DOMAIN_UNMANAGED, flags);
}

// @kernel: iommu_paging_domain_alloc
export function iommuPagingDomainAlloc(k: IommuCore, dev: Device): IommuDomain | KError {
  return iommuPagingDomainAllocFlags(k, dev, 0);
}

// @kernel: __iommu_alloc_identity_domain
export function iommuAllocIdentityDomain(k: IommuCore, dev: Device): IommuDomain | KError {
  const ops = devIommuOps(dev)!;
  if (ops.identityDomain) return adoptDomain(k, ops.identityDomain);
  if (ops.domainAllocIdentity) {
    const d = ops.domainAllocIdentity(dev);
    if (isErr(d)) return d;
    return iommuDomainInit(k, d, IOMMU_DOMAIN_IDENTITY, ops);
  }
  return kerr("EOPNOTSUPP", `${ops.name} has no identity domain`);
}

// @kernel: __iommu_group_alloc_blocking_domain
export function iommuGroupAllocBlockingDomain(k: IommuCore, group: IommuGroup): 0 | KError {
  if (group.blockingDomain !== null) return 0;
  const dev = iommuGroupFirstDev(group);
  if (dev === null) return kerr("ENODEV", `${group} has no devices`);
  const ops = devIommuOps(dev)!;
  if (ops.blockedDomain) {
    group.blockingDomain = adoptDomain(k, ops.blockedDomain);
    return 0;
  }
  // A driver without a blocked domain gets an empty paging domain as the blocker.
  const d = iommuPagingDomainAlloc(k, dev);
  if (isErr(d)) return d;
  group.blockingDomain = d;
  return 0;
}

// @kernel: iommu_domain_free
export function iommuDomainFree(k: IommuCore, d: IommuDomain): void {
  if (d.isStatic || d.freed) return;
  d.ops.free?.(d);
  d.freed = true;
  k.domains.delete(d);
  if (d.id !== 0) k.domainIda.free(d.id);
}

// @kernel: domain_iommu_ops_compatible
export function domainIommuOpsCompatible(ops: IommuOps, d: IommuDomain): boolean {
  if (d.owner === ops) return true;
  return d === ops.blockedDomain || d === ops.identityDomain;
}

// @kernel: iommu_domain_alloc (v6.8-v6.12, removed in v6.13: ops from the bus's devices, no device)
export function iommuDomainAllocBus(k: IommuCore, bus: BusType): IommuDomain | KError {
  // @kernel: __iommu_domain_alloc_dev (every device on the bus with an IOMMU must share ops)
  let ops: IommuOps | null = null;
  for (const dev of bus.devices) {
    if (!devHasIommu(dev)) continue;
    const o = devIommuOps(dev)!;
    if (ops !== null && o !== ops) {
      // WARN_ONCE: logged the first time only.
      if (!k.ctx.diag.warnings.some((w) => w.fn === "__iommu_domain_alloc_dev")) {
        k.warn("__iommu_domain_alloc_dev", bus.name, `Multiple IOMMU drivers present for bus ${bus.name}, which the public IOMMU API can't fully support yet`);
      }
      return kerr("EBUSY", `bus ${bus.name} has devices of ${ops.name} and ${o.name}`);
    }
    ops = o;
  }
  if (ops === null) return kerr("ENODEV", `no device on bus ${bus.name} has an IOMMU`);
  return iommuDomainAllocNullDev(k, ops);
}

/**
 * iommu_domain_alloc(bus) up to v6.7: the bus's own ops (`bus->iommu_ops`),
 * NULL for a bus without them; a domain comes back even when no device on
 * the bus has an IOMMU.
 */
// @kernel: iommu_domain_alloc (up to v6.7: bus->iommu_ops)
export function iommuDomainAllocBusOps(k: IommuCore, bus: BusType, ops: IommuOps | null): IommuDomain | KError {
  if (ops === null) return kerr("ENODEV", `bus ${bus.name} has no iommu_ops to allocate a domain with`);
  return iommuDomainAllocNullDev(k, ops);
}

// @kernel: __iommu_domain_alloc (domain_alloc_paging with a NULL device)
function iommuDomainAllocNullDev(k: IommuCore, ops: IommuOps): IommuDomain | KError {
  let d: IommuDomain | KError;
  if (ops.domainAllocPaging) d = ops.domainAllocPaging(null);
  else if (ops.domainAllocPagingFlags) d = ops.domainAllocPagingFlags(null, 0, null);
  else return kerr("EOPNOTSUPP", `${ops.name} has no paging allocator`);
  if (isErr(d)) return d;
  return iommuDomainInit(k, d, IOMMU_DOMAIN_UNMANAGED, ops);
}
