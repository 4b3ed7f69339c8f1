/**
 * The buses' `dma_configure` / `dma_cleanup` callbacks
 * (drivers/base/platform.c, drivers/pci/pci-driver.c, drivers/amba/bus.c):
 * firmware configuration first (OF or ACPI), then, only when a driver is
 * binding and does not manage DMA itself, DMA-API ownership of the group
 * (unless the dma_ownership design counts no kernel DMA: before v5.19).
 * The IOMMU core calls the same callback with no driver bound
 * (iommu_init_device), which is how it tells the two callers apart.
 */
import type { BusType } from "../base/bus.ts";
import type { Device } from "../base/device.ts";
import { FwnodeHandle } from "../base/fwnode.ts";
import { deviceAdd } from "../base/core.ts";
import type { Path } from "../base/path.ts";
import { kernelPath } from "../base/traced.ts";
import type { KError } from "../lib/errno.ts";
import { devIommu, devIommuFwspecGet } from "./dev-iommu.ts";
import { devIommuFreePath } from "./lifetime.ts";
import type { IommuCore } from "./iommu-core.ts";
import { ofIommuConfigure } from "./of-iommu.ts";
import { fwspecLock, fwspecUnlock } from "./probe-lock.ts";
import { iommuDeviceUnuseDefaultDomain, iommuDeviceUseDefaultDomain } from "./ownership.ts";

// @kernel: acpi_dma_configure_id (acpi_iommu_configure_id: IORT, RIMT, VIOT)
function* acpiDmaConfigure(k: IommuCore, dev: Device): Path<0 | KError> {
  yield* fwspecLock(k);
  // No IORT/VIOT table in this model: DMAR/IVRS-described devices get no fwspec.
  if (k.tracing && devIommuFwspecGet(dev) === null) k.note("acpi_iommu_configure_id", dev.name, "no IORT/VIOT mapping: ENODEV (ignored)");
  yield* fwspecUnlock(k);
  return 0;
}

/**
 * The firmware part of dma_configure: of_dma_configure_id (only a deferral
 * fails it; other IOMMU errors leave the device without one) or
 * acpi_dma_configure_id.
 */
function* firmwareDmaConfigure(k: IommuCore, dev: Device, np: FwnodeHandle | null): Path<0 | KError> {
  if (np !== null && np.kind === "of") {
    const ret = yield* ofIommuConfigure(k, dev, np);
    if (ret !== 0 && ret.errno === "EPROBE_DEFER") return ret;
  } else if (np !== null && np.kind === "acpi") {
    yield* acpiDmaConfigure(k, dev);
  }
  return 0;
}

/**
 * The bus callbacks' shared body: firmware first (unless the fwspec_owner
 * strategy has the bus code do it before device_add), then, only with a
 * driver bound that is not driver_managed_dma, iommu_device_use_default_domain.
 */
function* dmaConfigureBody(k: IommuCore, dev: Device, np: FwnodeHandle | null): Path<0 | KError> {
  if (k.strategy.fwspecOwner.firmwareAtDmaConfigure) {
    const ret = yield* firmwareDmaConfigure(k, dev, np);
    if (ret !== 0) return ret;
  }
  const drv = dev.driver;
  // Before v5.19 (dma_ownership=notifier) dma_configure counted no kernel DMA.
  if (drv === null || drv.driverManagedDma || !k.strategy.dmaOwnership.useDefaultDomainAtBind) return 0;
  const ret = yield* iommuDeviceUseDefaultDomain(k, dev);
  // The bind fails here; only the arch DMA ops are torn down (arch_teardown_dma_ops).
  if (ret !== 0) bindKeepsIommuProbe(k, dev, `iommu_device_use_default_domain refused the bind with ${ret.errno}`);
  return ret;
}

/** A bind that fails after its dma_configure step probed the device into its IOMMU leaves the probe in place (a failure effect). */
function bindKeepsIommuProbe(k: IommuCore, dev: Device, why: string): void {
  const p = devIommu(dev);
  if (p === null || !p.probedAtBind) return;
  p.probedAtBind = false;
  k.effect("bind-keeps-iommu-probe", dev.name, `${why}; the device stays probed into ${p.iommuDev?.name ?? "its IOMMU"} by the bind's dma_configure step`);
}

const platformDmaConfigure = kernelPath("platform_dma_configure", (k: IommuCore, dev: Device) => dmaConfigureBody(k, dev, dev.fwnode), (_k, dev) => dev.name);

const ambaDmaConfigure = kernelPath("amba_dma_configure", (k: IommuCore, dev: Device) => dmaConfigureBody(k, dev, dev.fwnode), (_k, dev) => dev.name);

/** The firmware is the host bridge's: its DT node or ACPI companion. */
const pciDmaConfigure = kernelPath("pci_dma_configure", (k: IommuCore, dev: Device) => dmaConfigureBody(k, dev, dmaFirmwareNode(dev)), (_k, dev) => dev.name);

/** The firmware node dma_configure reads for a device: its own, or for PCI its host bridge's. */
function dmaFirmwareNode(dev: Device): FwnodeHandle | null {
  return dev.pci !== null ? (dev.pci.bus.host.fwnode ?? ACPI_HOST) : dev.fwnode;
}

/** An ACPI host bridge's companion, for PCI segments no DT host bridge describes. */
const ACPI_HOST = new FwnodeHandle("\\_SB.PCI0", "acpi");

// @kernel: platform_dma_cleanup / pci_dma_cleanup / amba_dma_cleanup
function* dmaCleanup(k: IommuCore, dev: Device): Path {
  // Not bound: really_probe's probe_failed path, after the driver's probe failed.
  if (!dev.bound) bindKeepsIommuProbe(k, dev, "the driver's probe failed");
  const p = devIommu(dev);
  if (p !== null) p.probedAtBind = false;
  const drv = dev.driver;
  if (drv !== null && !drv.driverManagedDma && k.strategy.dmaOwnership.useDefaultDomainAtBind) yield* iommuDeviceUnuseDefaultDomain(k, dev);
}

/** Installs the dma_configure / dma_cleanup callbacks on the buses that have them. */
export function installBusDmaOps(k: IommuCore, buses: { platform?: BusType; pci?: BusType; amba?: BusType }): void {
  if (buses.platform !== undefined) {
    buses.platform.dmaConfigure = (dev) => platformDmaConfigure(k, dev);
    buses.platform.dmaCleanup = (dev) => dmaCleanup(k, dev);
  }
  if (buses.amba !== undefined) {
    buses.amba.dmaConfigure = (dev) => ambaDmaConfigure(k, dev);
    buses.amba.dmaCleanup = (dev) => dmaCleanup(k, dev);
  }
  if (buses.pci !== undefined) {
    buses.pci.dmaConfigure = (dev) => pciDmaConfigure(k, dev);
    buses.pci.dmaCleanup = (dev) => dmaCleanup(k, dev);
  }
}

/** Before device_add (fwspec_owner bus-code): the IOMMU part of the device's DT configuration; its result is not looked at. */
const ofDmaConfigure = kernelPath("of_dma_configure", (k: IommuCore, dev: Device, np: FwnodeHandle) => ofIommuConfigure(k, dev, np), (_k, dev) => dev.name);

/**
 * fwspec_owner bus-code: the bus code configures a DT-described device,
 * fwspec included, before adding it, and undoes that if the add fails
 * (of_dma_deconfigure). A deferral or any other IOMMU error leaves the
 * device without a fwspec, added all the same.
 */
// @kernel: of_platform_device_create_pdata (<= v4.11: of_dma_configure, then of_device_add)
export function* deviceAddWithFirmwareDma(k: IommuCore, dev: Device): Path<0 | KError> {
  const np = dmaFirmwareNode(dev);
  // An added device is refused by device_add itself, before its firmware is looked at.
  if (dev.registered || np === null || np.kind !== "of") return yield* deviceAdd(k.dc, dev);
  yield* ofDmaConfigure(k, dev, np);
  const added = yield* deviceAdd(k.dc, dev);
  if (added !== 0) yield* devIommuFreePath(k, dev);
  return added;
}
