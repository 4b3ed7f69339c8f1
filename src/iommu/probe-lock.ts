/**
 * iommu_probe_device_lock, taken where the probe_serialisation strategy in
 * force takes it (iommu/strategy-types.ts): around __iommu_probe_device by
 * its callers, and around fwspec lookup and creation. Where the strategy
 * takes no lock the path has no point there at all, so an exploring
 * scheduler sees exactly the locks that design takes.
 */
import { mutexLock, mutexUnlock } from "../base/mutex.ts";
import { NO_POINT, type Path } from "../base/path.ts";
import type { IommuCore } from "./iommu-core.ts";

/** iommu_probe_device and probe_iommu_group: the lock around __iommu_probe_device (v6.7+), or nothing. */
export function probeCallerLock(k: IommuCore): Path {
  return k.strategy.probeSerialisation.lockProbe === "callers" ? mutexLock(k.sched, k.probeLock) : NO_POINT;
}

export function probeCallerUnlock(k: IommuCore): Path {
  return k.strategy.probeSerialisation.lockProbe === "callers" ? mutexUnlock(k.sched, k.probeLock) : NO_POINT;
}

/** of_iommu_configure, acpi_iommu_configure_id, iommu_mock_device_add: the lock around fwspec lookup and creation (v6.7+), or nothing. */
export function fwspecLock(k: IommuCore): Path {
  return k.strategy.probeSerialisation.lockFwspec ? mutexLock(k.sched, k.probeLock) : NO_POINT;
}

export function fwspecUnlock(k: IommuCore): Path {
  return k.strategy.probeSerialisation.lockFwspec ? mutexUnlock(k.sched, k.probeLock) : NO_POINT;
}
