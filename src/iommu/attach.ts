/**
 * Attaching domains (iommu.c): the per-device primitive, the group-wide
 * switch with its rollback, and the public attach/detach API. A group is
 * the unit: every member ends on the same RID domain, or the switch is
 * undone.
 */
import type { Device } from "../base/device.ts";
import { mutexLock, mutexUnlock } from "../base/mutex.ts";
import type { Path } from "../base/path.ts";
import { kernelPath } from "../base/traced.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { devGroup, devHasIommu, devIommu, devIommuOps } from "./dev-iommu.ts";
import { domainIommuOpsCompatible } from "./domain-alloc.ts";
import { IOMMU_DOMAIN_BLOCKED, type IommuDomain } from "./domain.ts";
import { iommuGroupFirstDev, type IommuGroup } from "./group.ts";
import type { IommuCore } from "./iommu-core.ts";

export const IOMMU_SET_DOMAIN_MUST_SUCCEED = 1 << 0;

// @kernel: __iommu_attach_device
export function iommuAttachDeviceRaw(
  k: IommuCore,
  domain: IommuDomain,
  dev: Device,
  old: IommuDomain | null,
): 0 | KError {
  const ret = domain.ops.attachDev(domain, dev, old);
  const p = devIommu(dev)!;
  if (ret !== 0) return ret;
  p.attachDeferred = false;
  // The driver's view: the domain this device's RID now translates through.
  p.domain = domain;
  if (k.tracing) k.note("attach_dev", dev.name, `${domain}`);
  return 0;
}

// @kernel: __iommu_device_set_domain
export function iommuDeviceSetDomain(
  k: IommuCore,
  group: IommuGroup,
  dev: Device,
  newDomain: IommuDomain,
  oldDomain: IommuDomain | null,
  flags: number,
): 0 | KError {
  const p = devIommu(dev)!;
  if (p.requireDirect && (newDomain.type === IOMMU_DOMAIN_BLOCKED || newDomain === group.blockingDomain)) {
    k.warn(
      "__iommu_device_set_domain",
      dev.name,
      "Firmware has requested this device have a 1:1 IOMMU mapping, rejecting configuring the device without a 1:1 mapping",
    );
    return kerr("EINVAL", `${dev.name} requires a 1:1 mapping and cannot be blocked`);
  }
  if (p.attachDeferred) {
    if (newDomain === group.defaultDomain) return 0;
    p.attachDeferred = false;
  }
  const ret = iommuAttachDeviceRaw(k, newDomain, dev, oldDomain);
  if (ret !== 0) {
    if (
      (flags & IOMMU_SET_DOMAIN_MUST_SUCCEED) !== 0 &&
      group.blockingDomain !== null &&
      group.blockingDomain !== newDomain
    ) {
      iommuAttachDeviceRaw(k, group.blockingDomain, dev, oldDomain);
    }
    return ret;
  }
  return 0;
}

// @kernel: __iommu_group_set_domain_internal
export function iommuGroupSetDomainInternal(
  k: IommuCore,
  group: IommuGroup,
  newDomain: IommuDomain | null,
  flags: number,
): 0 | KError {
  if (group.domain === newDomain) return 0;
  if (newDomain === null) {
    k.warn("__iommu_group_set_domain_internal", group.toString(), "switching to a NULL domain");
    return kerr("EINVAL", `${group}: cannot switch to no domain`);
  }
  let result: 0 | KError = 0;
  const devs = group.devices;
  const unfinalised = newDomain.iommu === null;
  for (let i = 0; i < devs.length; i++) {
    const ret = iommuDeviceSetDomain(k, group, devs[i]!.dev, newDomain, group.domain, flags);
    if (ret === 0) continue;
    result = ret;
    if ((flags & IOMMU_SET_DOMAIN_MUST_SUCCEED) !== 0) {
      group.domainWarned = true;
      k.effect("must-succeed-attach-refused", devs[i]!.dev.name, `the driver refused ${newDomain} (${ret.errno}) in a switch that may not fail; ${devs[i]!.dev.name} stays where the driver left it`);
      continue;
    }
    if (unfinalised) attachFinalised(k, newDomain, ret);
    // Revert the members already moved; a NULL old domain (first probe) is left for release to clean up.
    for (let j = 0; j < i; j++) {
      if (group.domain === null) continue;
      const r = iommuDeviceSetDomain(k, group, devs[j]!.dev, group.domain, newDomain, IOMMU_SET_DOMAIN_MUST_SUCCEED);
      if (r !== 0) {
        // WARN_ON: the device stays on the new domain.
        k.warn("__iommu_group_set_domain_internal", devs[j]!.dev.name, `revert failed: ${r.errno}`);
        k.effect("attach-revert-refused", devs[j]!.dev.name, `the driver refused the revert to ${group.domain} (${r.errno}); ${devs[j]!.dev.name} stays on ${newDomain}`);
        group.domainWarned = true;
      }
    }
    return ret;
  }
  group.domain = newDomain;
  return result;
}

/** A failed attach leaves behind the finalisation a driver's attach_dev did before anything could fail (a failure effect). */
export function attachFinalised(k: IommuCore, domain: IommuDomain, ret: KError): void {
  if (domain.iommu === null) return;
  k.effect("attach-finalises-domain", domain.toString(), `the attach failed with ${ret.errno}, and ${domain} stays finalised for ${domain.iommu.name}`);
}

// @kernel: __iommu_group_set_domain
export function iommuGroupSetDomain(k: IommuCore, group: IommuGroup, d: IommuDomain): 0 | KError {
  return iommuGroupSetDomainInternal(k, group, d, 0);
}

// @kernel: __iommu_group_set_domain_nofail
export function iommuGroupSetDomainNofail(k: IommuCore, group: IommuGroup, d: IommuDomain | null): void {
  const ret = iommuGroupSetDomainInternal(k, group, d, IOMMU_SET_DOMAIN_MUST_SUCCEED);
  if (ret !== 0) k.warn("__iommu_group_set_domain_nofail", group.toString(), `${ret.errno}: ${ret.message}`);
}

// @kernel: __iommu_group_set_core_domain (the blocking domain if owned, else the default)
export function iommuGroupSetCoreDomain(k: IommuCore, group: IommuGroup): void {
  iommuGroupSetDomainNofail(k, group, group.owner !== null ? group.blockingDomain : group.defaultDomain);
}

// @kernel: __iommu_attach_group
export function iommuAttachGroupLocked(k: IommuCore, domain: IommuDomain, group: IommuGroup): 0 | KError {
  if (group.domain !== null && group.domain !== group.defaultDomain && group.domain !== group.blockingDomain) {
    return kerr("EBUSY", `${group} is attached to ${group.domain}; detach it first`);
  }
  const dev = iommuGroupFirstDev(group);
  if (dev === null || !devHasIommu(dev) || !domainIommuOpsCompatible(devIommuOps(dev)!, domain)) {
    return kerr("EINVAL", `${domain} was not allocated by ${group}'s IOMMU driver`);
  }
  return iommuGroupSetDomain(k, group, domain);
}

export const iommuAttachGroup = kernelPath("iommu_attach_group", function* (k: IommuCore, domain: IommuDomain, group: IommuGroup): Path<0 | KError> {
  yield* mutexLock(k.sched, group.mutex);
  const ret = iommuAttachGroupLocked(k, domain, group);
  yield* mutexUnlock(k.sched, group.mutex);
  return ret;
}, { subject: (_k, _domain, group) => group.toString(), detail: (_k, domain) => domain.toString() });

/** Singleton groups only. */
export const iommuAttachDevice = kernelPath("iommu_attach_device", function* (k: IommuCore, domain: IommuDomain, dev: Device): Path<0 | KError> {
  const group = devGroup(dev);
  if (group === null) return kerr("ENODEV", `${dev.name} is not in an IOMMU group`);
  yield* mutexLock(k.sched, group.mutex);
  let ret: 0 | KError;
  if (group.devices.length !== 1) {
    ret = kerr("EINVAL", `${dev.name}'s ${group} has ${group.devices.length} devices; iommu_attach_device needs a singleton group`);
  } else {
    ret = iommuAttachGroupLocked(k, domain, group);
  }
  yield* mutexUnlock(k.sched, group.mutex);
  return ret;
}, { subject: (_k, _domain, dev) => dev.name, detail: (_k, domain) => domain.toString() });

/** Ignored unless `domain` is attached and the group is a singleton. */
export const iommuDetachDevice = kernelPath("iommu_detach_device", function* (k: IommuCore, domain: IommuDomain, dev: Device): Path<0 | KError> {
  const group = devGroup(dev);
  if (group === null) return kerr("ENODEV", `${dev.name} is not in an IOMMU group`);
  yield* mutexLock(k.sched, group.mutex);
  let ret: 0 | KError = 0;
  if (group.domain !== domain || group.devices.length !== 1) {
    // The kernel WARNs and ignores the call; the model reports it and changes nothing.
    ret = kerr("EINVAL", `${domain} is not attached to ${dev.name}'s singleton group`);
  } else {
    iommuGroupSetCoreDomain(k, group);
  }
  yield* mutexUnlock(k.sched, group.mutex);
  return ret;
}, { subject: (_k, _domain, dev) => dev.name, detail: (_k, domain) => domain.toString() });

export const iommuDetachGroup = kernelPath("iommu_detach_group", function* (k: IommuCore, group: IommuGroup): Path<0 | KError> {
  yield* mutexLock(k.sched, group.mutex);
  iommuGroupSetCoreDomain(k, group);
  yield* mutexUnlock(k.sched, group.mutex);
  return 0;
}, (_k, group) => group.toString());
