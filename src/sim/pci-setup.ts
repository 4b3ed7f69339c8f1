/**
 * What PCI enumeration does to a function before anything probes it, as
 * far as groups care: the header fixups of the quirk tables (DMA aliases,
 * bridge alias flags) and, with an IOMMU present (pci_request_acs),
 * pci_enable_acs with its device-specific enable quirks.
 */
import { pciEnableAcs } from "../base/pci/pci-acs.ts";
import type { PciDev } from "../base/pci/pci-dev.ts";
import { pciFixupDmaAliases } from "../base/pci/quirks/dma-alias-fixups.ts";

export interface PciFixupRecord {
  device: string;
  /** The kernel function that ran it. */
  fn: "pci_fixup_device" | "pci_enable_acs";
  quirk: string;
}

// @kernel: pci_setup_device (the fixups and ACS set-up the model needs)
export function pciSetupDevice(p: PciDev, name: string, stdAcs: boolean, acsRequested: boolean): PciFixupRecord[] {
  const out: PciFixupRecord[] = [];
  for (const q of pciFixupDmaAliases(p)) out.push({ device: name, fn: "pci_fixup_device", quirk: q });
  if (acsRequested) {
    const q = pciEnableAcs(p, stdAcs);
    if (q !== null) out.push({ device: name, fn: "pci_enable_acs", quirk: q });
  }
  return out;
}
