/**
 * PASID attachments (iommu.c, reference §9): a PASID attachment applies to
 * every PASID-capable member of the group, so a group keeps one domain per
 * PASID; a failure on one member rolls the others back through the blocked
 * domain. While a group holds PASID attachments no second DMA-API user
 * joins it and its ownership cannot change (ownership.ts checks that).
 */
import type { Device } from "../base/device.ts";
import { mutexLock, mutexUnlock } from "../base/mutex.ts";
import type { Path } from "../base/path.ts";
import { kernelPath } from "../base/traced.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { attachFinalised } from "./attach.ts";
import { devGroup, devIommu, devIommuOps } from "./dev-iommu.ts";
import { domainIommuOpsCompatible } from "./domain-alloc.ts";
import type { IommuDomain } from "./domain.ts";
import type { IommuGroup } from "./group.ts";
import type { IommuCore } from "./iommu-core.ts";

export const IOMMU_NO_PASID = 0;

function pasidMembers(group: IommuGroup): Device[] {
  return group.devices.map((g) => g.dev).filter((d) => (devIommu(d)?.maxPasids ?? 0) > 0);
}

/** The checks iommu_attach_device_pasid and iommu_replace_device_pasid share before locking. */
// @kernel: iommu_attach_device_pasid (its checks before taking group->mutex)
function pasidPrecheck(dev: Device, domain: IommuDomain, pasid: number): KError | IommuGroup {
  const group = devGroup(dev);
  if (group === null) return kerr("ENODEV", `${dev.name} is not in an IOMMU group`);
  const ops = devIommuOps(dev)!;
  if (!domain.ops.setDevPasid || !ops.blockedDomain || !ops.blockedDomain.ops.setDevPasid) {
    return kerr("EOPNOTSUPP", `${ops.name} or ${domain} cannot attach PASIDs`);
  }
  if (!domainIommuOpsCompatible(ops, domain)) return kerr("EINVAL", `${domain} was not allocated by ${ops.name}`);
  if (pasid === IOMMU_NO_PASID) return kerr("EINVAL", "PASID 0 (IOMMU_NO_PASID) is the RID itself, not a PASID");
  return group;
}

/** Takes `pasid` of `dev` off `domain` through the blocked domain. */
// @kernel: iommu_remove_dev_pasid
function iommuRemoveDevPasid(k: IommuCore, dev: Device, pasid: number, domain: IommuDomain): void {
  const blocked = devIommuOps(dev)!.blockedDomain!;
  const r = blocked.ops.setDevPasid!(blocked, dev, pasid, domain);
  if (r !== 0) k.warn("iommu_remove_dev_pasid", dev.name, `the blocked domain refused PASID ${pasid}: ${r.errno}`);
}

/** Sets `domain` at `pasid` on every PASID-capable member; rolls the done ones back on failure. */
// @kernel: __iommu_set_group_pasid
function setPasidOnMembers(k: IommuCore, group: IommuGroup, domain: IommuDomain, pasid: number, old: IommuDomain | null): 0 | KError {
  const done: Device[] = [];
  const unfinalised = domain.iommu === null;
  for (const d of pasidMembers(group)) {
    const ret = domain.ops.setDevPasid!(domain, d, pasid, old);
    if (ret === 0) {
      done.push(d);
      continue;
    }
    if (unfinalised) attachFinalised(k, domain, ret);
    // Undo: back to the old domain (replace) or off the PASID (attach); an old domain that
    // worked before and now fails is a driver bug (WARN), and the PASID is removed instead.
    for (const u of done) {
      if (old !== null) {
        const r = old.ops.setDevPasid!(old, u, pasid, domain);
        if (r === 0) continue;
        k.warn("__iommu_set_group_pasid", u.name, `could not restore PASID ${pasid} to ${old}: ${r.errno}`);
      }
      iommuRemoveDevPasid(k, u, pasid, domain);
    }
    return ret;
  }
  return 0;
}

export const iommuAttachDevicePasid = kernelPath("iommu_attach_device_pasid", function* (k: IommuCore, domain: IommuDomain, dev: Device, pasid: number): Path<0 | KError> {
  const g = pasidPrecheck(dev, domain, pasid);
  if ("errno" in g) return g;
  const group = g;
  yield* mutexLock(k.sched, group.mutex);
  let ret: 0 | KError = 0;
  for (const d of pasidMembers(group)) {
    const max = devIommu(d)!.maxPasids;
    if (pasid >= max) {
      ret = kerr("EINVAL", `PASID ${pasid} is beyond ${d.name}'s max_pasids ${max}`);
      break;
    }
  }
  if (ret === 0 && group.pasidArray.has(pasid)) ret = kerr("EBUSY", `PASID ${pasid} of ${group} is already attached`);
  if (ret === 0) {
    ret = setPasidOnMembers(k, group, domain, pasid, null);
    if (ret === 0) group.pasidArray.set(pasid, { domain });
  }
  yield* mutexUnlock(k.sched, group.mutex);
  return ret;
}, { subject: (_k, _domain, dev) => dev.name, detail: (_k, domain, _dev, pasid) => `${domain}, pasid ${pasid}` });

/** Each member goes back through the blocked domain. */
export const iommuDetachDevicePasid = kernelPath("iommu_detach_device_pasid", function* (k: IommuCore, domain: IommuDomain, dev: Device, pasid: number): Path<0 | KError> {
  const group = devGroup(dev);
  if (group === null) return kerr("ENODEV", `${dev.name} is not in an IOMMU group`);
  yield* mutexLock(k.sched, group.mutex);
  let ret: 0 | KError = 0;
  // The kernel trusts the caller here; the model refuses a detach of what is not attached.
  if (!group.hasPasids || group.pasidArray.get(pasid)?.domain !== domain) {
    ret = kerr("ENOENT", `${domain} is not attached at PASID ${pasid} of ${group}`);
  } else {
    for (const d of pasidMembers(group)) {
      const blocked = devIommuOps(d)!.blockedDomain!;
      const r = blocked.ops.setDevPasid!(blocked, d, pasid, domain);
      if (r !== 0) k.warn("iommu_detach_device_pasid", d.name, `blocking PASID ${pasid} failed: ${r.errno}`);
    }
    group.pasidArray.delete(pasid);
  }
  yield* mutexUnlock(k.sched, group.mutex);
  return ret;
}, { subject: (_k, _domain, dev) => dev.name, detail: (_k, domain, _dev, pasid) => `${domain}, pasid ${pasid}` });

export const iommuReplaceDevicePasid = kernelPath("iommu_replace_device_pasid", function* (k: IommuCore, domain: IommuDomain, dev: Device, pasid: number): Path<0 | KError> {
  const g = pasidPrecheck(dev, domain, pasid);
  if ("errno" in g) return g;
  const group = g;
  yield* mutexLock(k.sched, group.mutex);
  let ret: 0 | KError = 0;
  const cur = group.hasPasids ? group.pasidArray.get(pasid) : undefined;
  if (cur === undefined) ret = kerr("EINVAL", `PASID ${pasid} of ${group} is not attached: nothing to replace`);
  else if (cur.domain !== domain) {
    ret = setPasidOnMembers(k, group, domain, pasid, cur.domain);
    if (ret === 0) group.pasidArray.set(pasid, { domain });
  }
  yield* mutexUnlock(k.sched, group.mutex);
  return ret;
}, { subject: (_k, _domain, dev) => dev.name, detail: (_k, domain, _dev, pasid) => `${domain}, pasid ${pasid}` });
