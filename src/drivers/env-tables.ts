/**
 * What a driver answers from the scenario's tables (DriverEnv): the
 * reserved regions firmware reports for a device, the driver's own
 * def_domain_type quirks, and the probe_device faults a scenario injects.
 */
import type { Device } from "../base/device.ts";
import type { IommuResvRegion } from "../iommu/resv-region.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../pgtable/index.ts";
import { isErr, kerr } from "../lib/errno.ts";
import type { DriverEnv, DriverQuirks, IommuDriver } from "./driver.ts";

/** Reserved regions firmware reports for a device (RMRR, IORT RMR, DT iommu-addresses). */
// @kernel: iommu_dma_get_resv_regions (the firmware part)
export function firmwareResvRegions(env: DriverEnv, dev: Device): IommuResvRegion[] {
  const fw = env.firmware.resvRegions.get(dev.name);
  if (fw === undefined) return [];
  return fw.map((r) => ({ start: r.start, length: r.length, prot: IOMMU_READ | IOMMU_WRITE, type: r.kind }));
}

/** The driver's def_domain_type answer from its quirk table (0: no preference). */
export function quirkDefDomainType(env: DriverEnv, dev: Device): number {
  return env.quirks.defDomainType.get(dev.name) ?? 0;
}

/**
 * Fault injection (`fail_probe`): the first N times a driver's probe_device
 * would take a listed device, it fails instead, having undone what it did
 * (its release_device, as a probe_device failing at its end cleans up).
 * A refusal is not counted: the fault is the device's own driver failing,
 * not another driver's answer changing. Installed only on a machine that
 * injects such faults.
 */
export function injectProbeFaults(driver: IommuDriver, quirks: DriverQuirks): void {
  const ops = driver.ops;
  const probe = ops.probeDevice.bind(ops);
  ops.probeDevice = (dev) => {
    const r = probe(dev);
    const f = quirks.failProbe.get(dev.name);
    if (isErr(r) || f === undefined || f.left === 0) return r;
    ops.releaseDevice?.(dev);
    f.left--;
    return kerr(f.errno, `${ops.name}: probe_device of ${dev.name} failed (injected fault, ${f.left} more to come)`);
  };
}
