/**
 * DMA ownership (iommu.c, reference §10): kernel drivers using the DMA API
 * count in `owner_cnt` through iommu_device_use_default_domain, called from
 * the bus dma_configure step at driver bind; user space (VFIO, iommufd)
 * claims a group with an owner cookie and parks it on the blocking domain.
 * The dma_ownership design in force (`k.strategy.dmaOwnership`) decides
 * whether binds are counted at all (bus-dma.ts) and adds its own check to
 * a claim (under the notifier design, VFIO's viability; then owner_cnt
 * counts the claims only).
 */
import type { Device } from "../base/device.ts";
import { mutexLock, mutexUnlock } from "../base/mutex.ts";
import type { Path } from "../base/path.ts";
import { kernelPath } from "../base/traced.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { iommuGroupSetDomain, iommuGroupSetDomainNofail } from "./attach.ts";
import { devGroup } from "./dev-iommu.ts";
import { iommuGroupAllocBlockingDomain } from "./domain-alloc.ts";
import type { IommuGroup } from "./group.ts";
import type { IommuCore } from "./iommu-core.ts";

export const iommuDeviceUseDefaultDomain = kernelPath("iommu_device_use_default_domain", function* (k: IommuCore, dev: Device): Path<0 | KError> {
  const group = devGroup(dev);
  if (group === null) return 0;
  yield* mutexLock(k.sched, group.mutex);
  let ret: 0 | KError = 0;
  if (group.defaultDomain === null) {
    // We may race against bus_iommu_probe finalising the group.
    ret = kerr("EPROBE_DEFER", `${group} has no default domain yet`);
  } else if (
    group.ownerCnt > 0 &&
    (group.domain !== group.defaultDomain || group.owner !== null || group.hasPasids)
  ) {
    ret = kerr(
      "EBUSY",
      group.owner !== null
        ? `${group} is owned by user space; a kernel DMA driver cannot bind ${dev.name}`
        : `${group} is not on its default domain or has PASID attachments`,
    );
  }
  if (ret === 0) group.ownerCnt++;
  yield* mutexUnlock(k.sched, group.mutex);
  return ret;
}, (_k, dev) => dev.name);

// @kernel: iommu_device_unuse_default_domain
export function* iommuDeviceUnuseDefaultDomain(k: IommuCore, dev: Device): Path {
  const group = devGroup(dev);
  if (group === null) return;
  yield* mutexLock(k.sched, group.mutex);
  if (group.ownerCnt === 0 || group.hasPasids) {
    k.warn("iommu_device_unuse_default_domain", dev.name, `owner_cnt=${group.ownerCnt}, ${group.hasPasids ? group.pasidArray.size : 0} PASIDs attached; not decremented`);
    group.ownerCntStale = true;
    if (group.ownerCnt > 0) k.effect("unuse-keeps-owner-count", dev.name, `${group} keeps owner_cnt ${group.ownerCnt}: the PASIDs attached stop the decrement`);
  } else {
    group.ownerCnt--;
  }
  yield* mutexUnlock(k.sched, group.mutex);
}

// @kernel: __iommu_take_dma_ownership
function takeDmaOwnership(k: IommuCore, group: IommuGroup, owner: unknown): 0 | KError {
  if ((group.domain !== null && group.domain !== group.defaultDomain) || group.hasPasids) {
    return kerr("EBUSY", `${group} is not on its default domain or has PASID attachments`);
  }
  const fresh = group.blockingDomain === null;
  const blk = iommuGroupAllocBlockingDomain(k, group);
  if (blk !== 0) return blk;
  const ret = iommuGroupSetDomain(k, group, group.blockingDomain!);
  if (ret !== 0) {
    // The blocking domain stays allocated in group->blocking_domain until the group goes.
    if (fresh) k.effect("claim-keeps-blocking-domain", group.toString(), `the switch to ${group.blockingDomain} failed with ${ret.errno}; it stays ${group}'s blocking domain`);
    return ret;
  }
  group.owner = owner;
  group.ownerCnt++;
  return 0;
}

// @kernel: iommu_group_claim_dma_owner
export function* iommuGroupClaimDmaOwner(k: IommuCore, group: IommuGroup, owner: unknown): Path<0 | KError> {
  if (owner === null) return kerr("EINVAL", "a NULL owner cookie cannot claim DMA ownership");
  yield* mutexLock(k.sched, group.mutex);
  // The dma_ownership design's own check first (VFIO's viability under the notifier design).
  const pre = k.strategy.dmaOwnership.claim(k, group);
  const ret =
    pre !== 0
      ? pre
      : group.ownerCnt !== 0
        ? kerr("EPERM", `${group} is already in use (owner_cnt=${group.ownerCnt})`)
        : takeDmaOwnership(k, group, owner);
  yield* mutexUnlock(k.sched, group.mutex);
  return ret;
}

// @kernel: iommu_device_claim_dma_owner
export function* iommuDeviceClaimDmaOwner(k: IommuCore, dev: Device, owner: unknown): Path<0 | KError> {
  if (owner === null) return kerr("EINVAL", "a NULL owner cookie cannot claim DMA ownership");
  const group = devGroup(dev);
  if (group === null) return kerr("ENODEV", `${dev.name} is not in an IOMMU group`);
  yield* mutexLock(k.sched, group.mutex);
  // The dma_ownership design's own check first (VFIO's viability under the notifier design).
  let ret: 0 | KError = k.strategy.dmaOwnership.claim(k, group);
  if (ret === 0 && group.ownerCnt !== 0) {
    if (group.owner !== owner) ret = kerr("EPERM", `${group} is owned by someone else (owner_cnt=${group.ownerCnt})`);
    else group.ownerCnt++;
  } else if (ret === 0) {
    ret = takeDmaOwnership(k, group, owner);
  }
  yield* mutexUnlock(k.sched, group.mutex);
  return ret;
}

// @kernel: __iommu_release_dma_ownership
function releaseDmaOwnership(k: IommuCore, group: IommuGroup): void {
  if (group.ownerCnt === 0 || group.owner === null || group.hasPasids) {
    k.warn("__iommu_release_dma_ownership", group.toString(), "releasing ownership that is not held, or with PASIDs attached");
    return;
  }
  group.ownerCnt = 0;
  group.owner = null;
  iommuGroupSetDomainNofail(k, group, group.defaultDomain);
}

// @kernel: iommu_group_release_dma_owner
export function* iommuGroupReleaseDmaOwner(k: IommuCore, group: IommuGroup): Path {
  yield* mutexLock(k.sched, group.mutex);
  releaseDmaOwnership(k, group);
  yield* mutexUnlock(k.sched, group.mutex);
}

// @kernel: iommu_device_release_dma_owner
export function* iommuDeviceReleaseDmaOwner(k: IommuCore, dev: Device): Path {
  const group = devGroup(dev);
  if (group === null) return;
  yield* mutexLock(k.sched, group.mutex);
  if (group.ownerCnt > 1) group.ownerCnt--;
  else releaseDmaOwnership(k, group);
  yield* mutexUnlock(k.sched, group.mutex);
}
