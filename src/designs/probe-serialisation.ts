/**
 * The probe_serialisation axis (docs/design-axes.md): how the three ways
 * into __iommu_probe_device (the bus notifier, an instance's bus walk, the
 * OF/ACPI replay at a client bind) are kept from treading on each other.
 * Without concurrency the strategies behave alike except for `ready`; a
 * scheduler (sim/scheduler.ts) interleaving the paths shows the rest.
 */
import type { ProbeSerialisation } from "../iommu/strategy-types.ts";
import { axis } from "./axis.ts";

/**
 * Up to the v6.1 release (6.1.2 stable has the lock): no
 * iommu_probe_device_lock at all. __iommu_probe_device and the fwspec
 * creation in of_iommu_configure run unlocked, so two probers can both get
 * through (a double probe, a group initialised twice), as Brian Norris
 * reported; 01657bc14a39 describes the race.
 */
export const noneProbeSerialisation: ProbeSerialisation = {
  name: "none",
  lockProbe: "none",
  lockFwspec: false,
  checkReady: false,
};

/**
 * v6.2 to v6.6 (6.1.2+ stable): a function-static mutex inside
 * __iommu_probe_device, held from dev_iommu_get through the group
 * bookkeeping; fwspec creation in of_iommu_configure and
 * acpi_iommu_configure_id is not covered. 01657bc14a39 "iommu: Avoid races
 * around device probe" (v6.2-rc1).
 */
export const probeLockProbeSerialisation: ProbeSerialisation = {
  name: "probe-lock",
  lockProbe: "inside",
  lockFwspec: false,
  checkReady: false,
};

/**
 * v6.7 to v6.15 (6.6.5+ stable): the lock is global; iommu_probe_device and
 * probe_iommu_group take it around __iommu_probe_device (which asserts it),
 * and of_iommu_configure and acpi_iommu_configure_id around fwspec lookup and
 * creation, so a failed probe's dev_iommu_free cannot pull a fwspec from
 * under its builder. A client bind during an instance's bus walk is served
 * at once: its replay probes the device before the walk reaches it.
 * a2e7e59a9426 "iommu: Avoid more races around device probe" (v6.7-rc4).
 */
export const globalLockProbeSerialisation: ProbeSerialisation = {
  name: "global-lock",
  lockProbe: "callers",
  lockFwspec: true,
  checkReady: false,
};

/**
 * v6.16 and later (6.15.1 stable): the global lock, and
 * iommu_device.ready, set once iommu_device_register's bus walks succeeded:
 * iommu_fwspec_init returns EPROBE_DEFER for a device without dev->iommu
 * while its instance is listed but not ready, so an instance serves client
 * binds only after its bus walk. da33e87bd2bf "iommu: Handle yet another
 * race around registration".
 */
export const globalLockReadyProbeSerialisation: ProbeSerialisation = {
  name: "global-lock+ready",
  lockProbe: "callers",
  lockFwspec: true,
  checkReady: true,
};

/** The probe_serialisation axis. */
export const PROBE_SERIALISATION = axis({
  field: "probeSerialisation",
  doc: "how probe is serialised: no lock (<= v6.1), a lock inside __iommu_probe_device (v6.2-v6.6), the global lock (v6.7-v6.15), or the global lock and the instance's ready flag (default, v6.16+)",
  implementations: {
    none: noneProbeSerialisation,
    "probe-lock": probeLockProbeSerialisation,
    "global-lock": globalLockProbeSerialisation,
    "global-lock+ready": globalLockReadyProbeSerialisation,
  },
  default: "global-lock+ready",
});
