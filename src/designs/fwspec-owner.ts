/**
 * The fwspec_owner axis (docs/design-axes.md): who builds a device's
 * iommu_fwspec from its firmware (DT `iommus`, `iommu-map`), and when. Scope
 * drivers (VT-d, AMD-Vi) use no fwspec, so the axis does not touch them; the
 * iommufd mock's iommu_mock_device_add installs its fwspec before
 * device_add whatever the axis says (it is the selftest's bus code).
 */
import type { FwspecOwner } from "../iommu/strategy-types.ts";
import { axis } from "./axis.ts";

/**
 * v6.15 and later: the probe path owns the fwspec. iommu_init_device calls
 * the bus dma_configure for a device with no fwspec and no driver (the probe
 * lock dropped around it, then a re-check that no other prober finished the
 * job), so a device is probed at device_add or at an instance's bus walk,
 * driver or not, in device order; a failed probe frees the fwspec and the
 * next probe parses the firmware again. of_iommu_configure replays
 * iommu_probe_device only when dev->iommu did not exist on entry, and a
 * probe with the driver set WARNs ("late IOMMU probe at driver bind").
 * bcb81ac6ae3c "iommu: Get DT/ACPI parsing into the proper probe path"
 * (v6.15); the re-check is 0c8e9c148e29 "iommu: Avoid introducing more
 * races" (v6.16, 6.15.1).
 */
export const probePathFwspecOwner: FwspecOwner = {
  name: "probe-path",
  fwspecAtInitDevice: true,
  firmwareAtDmaConfigure: true,
  replayAtBind: (hadDevIommu) => !hadDevIommu,
  installAtDeviceAdd: false,
  warnLateProbe: true,
};

/**
 * v4.12 to v6.14: the firmware is parsed only when a driver binds
 * (really_probe -> the bus dma_configure -> of_iommu_configure), which then
 * replays iommu_probe_device (`if (!err && dev->bus)`). A DT device with
 * `iommus` and no driver never gets a fwspec, so never a group; an
 * instance's bus walk probes only devices that already have one; groups
 * form in driver-bind order. 09515ef5ddad "of/acpi: Configure dma
 * operations at probe time for platform/amba/pci bus devices" (v4.12; title
 * and release unverified) until bcb81ac6ae3c (v6.15).
 */
export const driverProbeTimeFwspecOwner: FwspecOwner = {
  name: "driver-probe-time",
  fwspecAtInitDevice: false,
  firmwareAtDmaConfigure: true,
  replayAtBind: () => true,
  installAtDeviceAdd: false,
  warnLateProbe: false,
};

/**
 * The bus code builds the fwspec before device_add, once: up to v4.11,
 * of_platform_device_create_pdata called of_dma_configure before
 * of_device_add (the same for amba and PCI is unverified), and
 * iommu_mock_device_add does so for the iommufd mock today (2a918911ed3d,
 * v6.18). The bind's dma_configure and the probe path parse nothing. A
 * device whose instance is not registered at device_add gets no fwspec, and
 * iommu_init_device's error unwind frees the fwspec with dev->iommu
 * (dev_iommu_free), so a device whose first probe failed never probes again:
 * Jason Gunthorpe's objection in the mock-device thread (11 Jan 2024,
 * <20240111144840.GW50608@ziepe.ca>).
 */
export const busCodeFwspecOwner: FwspecOwner = {
  name: "bus-code",
  fwspecAtInitDevice: false,
  firmwareAtDmaConfigure: false,
  replayAtBind: () => false,
  installAtDeviceAdd: true,
  warnLateProbe: false,
};

/** The fwspec_owner axis. */
export const FWSPEC_OWNER = axis({
  field: "fwspecOwner",
  doc: "who builds a device's fwspec from firmware: the probe path (default, v6.15+), the driver bind's dma_configure (v4.12-v6.14), or the bus code before device_add (<= v4.11)",
  implementations: {
    "probe-path": probePathFwspecOwner,
    "driver-probe-time": driverProbeTimeFwspecOwner,
    "bus-code": busCodeFwspecOwner,
  },
  default: "probe-path",
});
