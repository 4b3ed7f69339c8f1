/**
 * ACS isolation checks (drivers/pci/pci.c) and DMA alias relations
 * (drivers/pci/search.c, quirks.c). The model treats every ACS control as
 * implemented by a function with an ACS capability; the scenario lists the
 * controls that are enabled.
 */
import type { Device } from "../device.ts";
import { PCI_ACS_CR, PCI_ACS_RR, PCI_ACS_SV, PCI_ACS_UF, type PciDev } from "./pci-dev.ts";

/** Isolation needs Source Validation, Request and Completion Redirect, Upstream Forwarding. */
export const REQ_ACS_FLAGS = PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF;

// @kernel: pci_acs_flags_enabled
function pciAcsFlagsEnabled(p: PciDev, flags: number): boolean {
  if (p.acs === null) return false;
  return (p.acs & flags) === flags;
}

// @kernel: pci_acs_enabled
export function pciAcsEnabled(p: PciDev, flags: number): boolean {
  // Conventional PCI never isolates: any device on the bus can see DMA.
  if (!p.isPcie) return false;
  switch (p.type) {
    case "pcie-pci-bridge":
      return false;
    case "switch-down":
    case "root-port":
      return pciAcsFlagsEnabled(p, flags);
    case "endpoint":
    case "switch-up":
      // Only multifunction devices need ACS to isolate their functions.
      if (!p.multifunction) return true;
      return pciAcsFlagsEnabled(p, flags);
    default:
      return true;
  }
}

// @kernel: pci_acs_path_enabled (from `start` up to the root, when `end` is null)
export function pciAcsPathEnabled(start: Device, end: Device | null, flags: number): boolean {
  let parent: Device = start;
  for (;;) {
    const pdev = parent;
    if (!pciAcsEnabled(pdev.pci!, flags)) return false;
    if (pdev.pci!.bus.isRoot) return end === null;
    parent = pdev.pci!.bus.self!;
    if (pdev === end) return true;
  }
}

// @kernel: pci_devs_are_dma_aliases (either lists the other's devfn in its dma_alias_mask)
export function pciDevsAreDmaAliases(a: PciDev, b: PciDev): boolean {
  return a.dmaAliasDevfns.includes(b.devfn) || b.dmaAliasDevfns.includes(a.devfn);
}
