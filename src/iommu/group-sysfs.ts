/**
 * /sys/kernel/iommu_groups/N/type writes (iommu_group_store_type): switch
 * a group's default domain type at run time.
 */
import { mutexLock, mutexUnlock } from "../base/mutex.ts";
import type { Path } from "../base/path.ts";
import { kernelPath } from "../base/traced.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { iommuSetupDefaultDomain, iommuSetupDmaOps } from "./default-domain.ts";
import { IOMMU_DOMAIN_DMA, IOMMU_DOMAIN_DMA_FQ, IOMMU_DOMAIN_IDENTITY } from "./domain.ts";
import type { IommuGroup } from "./group.ts";
import type { IommuCore } from "./iommu-core.ts";

const TYPES: Readonly<Record<string, number>> = {
  identity: IOMMU_DOMAIN_IDENTITY,
  DMA: IOMMU_DOMAIN_DMA,
  "DMA-FQ": IOMMU_DOMAIN_DMA_FQ,
  auto: 0,
};

/** The writer has CAP_SYS_ADMIN and CAP_SYS_RAWIO. */
export const iommuGroupStoreType = kernelPath("iommu_group_store_type", function* (k: IommuCore, group: IommuGroup, buf: string): Path<0 | KError> {
  if (group.defaultDomain === null) return kerr("EINVAL", `${group} has no default domain`);
  const reqType = TYPES[buf];
  if (reqType === undefined) return kerr("EINVAL", `'${buf}' is not one of identity, DMA, DMA-FQ, auto`);
  yield* mutexLock(k.sched, group.mutex);
  let ret: 0 | KError = 0;
  if (reqType === IOMMU_DOMAIN_DMA_FQ && group.defaultDomain.type === IOMMU_DOMAIN_DMA) {
    // A flush queue comes up without tearing the domain down; if it cannot, the domain stays strict.
    // @kernel: iommu_dma_init_fq
    ret = k.dmaInitFq?.(group.defaultDomain) ?? 0;
    if (ret === 0) group.defaultDomain.type = IOMMU_DOMAIN_DMA_FQ;
  } else if (group.devices.length === 0 || group.ownerCnt > 0) {
    ret = kerr("EPERM", `${group} has a driver bound or an owner (owner_cnt=${group.ownerCnt}); unbind first`);
  } else {
    ret = iommuSetupDefaultDomain(k, group, reqType);
    if (ret === 0) for (const gdev of group.devices) iommuSetupDmaOps(gdev.dev, group.defaultDomain!);
  }
  yield* mutexUnlock(k.sched, group.mutex);
  return ret;
}, { subject: (_k, group) => group.toString(), detail: (_k, _group, buf) => buf });
