/**
 * The probe index's key for a device: the fwnode its fwspec names, or the
 * one its firmware names first (what of_iommu_configure would pass to
 * iommu_fwspec_init), or null when firmware names none (scope-based
 * drivers, ACPI without IORT, devices outside firmware).
 */
import type { Device } from "../base/device.ts";
import { isErr } from "../lib/errno.ts";
import { ofMapId, ofParsePhandleWithArgs } from "../firmware/of.ts";
import { devIommuFwspecGet } from "./dev-iommu.ts";
import type { ProbeKey } from "./probe-index.ts";

export function probeKey(dev: Device): ProbeKey {
  const fwspec = devIommuFwspecGet(dev);
  if (fwspec !== null) return fwspec.iommuFwnode;
  if (dev.pci !== null) {
    const host = dev.pci.bus.host.fwnode;
    if (host === null || host.kind !== "of") return null;
    const m = ofMapId(host, dev.pci.rid, "iommu-map", "iommu-map-mask");
    return isErr(m) ? null : m.target;
  }
  const np = dev.fwnode;
  if (np === null || np.kind !== "of") return null;
  const spec = ofParsePhandleWithArgs(np, "iommus", "#iommu-cells", 0);
  return spec === null || isErr(spec) ? null : spec.np;
}
