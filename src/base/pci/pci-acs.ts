/**
 * ACS isolation checks (drivers/pci/pci.c) and DMA alias relations
 * (drivers/pci/search.c, quirks.c). A function's ACS capability register
 * says which controls it implements, its control register which are
 * enabled; a control the hardware does not implement counts as enabled
 * (pci_acs_flags_enabled). Device-specific quirks (quirks/) answer first.
 */
import type { Device } from "../device.ts";
import { PCI_ACS_CR, PCI_ACS_EC, PCI_ACS_RR, PCI_ACS_SV, PCI_ACS_TB, PCI_ACS_UF, type PciDev } from "./pci-dev.ts";
import { pciDevSpecificEnableAcs, type AcsEnableQuirkName } from "./quirks/acs-dev-ops.ts";
import { pciDevSpecificAcsAnswer, pciDevSpecificAcsEnabled, type AcsQuirkName } from "./quirks/acs-dev-specific.ts";
import { pcieAcsOverrides } from "./quirks/acs-override.ts";

/** Isolation needs Source Validation, Request and Completion Redirect, Upstream Forwarding. */
export const REQ_ACS_FLAGS = PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF;

// @kernel: pci_acs_flags_enabled
export function pciAcsFlagsEnabled(p: PciDev, flags: number): boolean {
  if (p.acsCap === null) return false;
  // Except for egress control, a control the capability does not list is taken as hard-wired enabled.
  const want = flags & (p.acsCap | PCI_ACS_EC);
  return (p.acsCtl & want) === want;
}

/** pci_acs_enabled without the device-specific quirks: what the capability and the port type say. */
function pciAcsEnabledStd(p: PciDev, flags: number): boolean {
  // Conventional PCI never isolates: any device on the bus can see DMA.
  if (!p.isPcie) return false;
  switch (p.type) {
    case "pcie-pci-bridge":
    case "rc-event-collector":
      return false;
    case "switch-down":
    case "root-port":
      return pciAcsFlagsEnabled(p, flags);
    case "endpoint":
    case "switch-up":
    case "legacy-endpoint":
    case "rc-endpoint":
      // Only multifunction devices need ACS to isolate their functions.
      if (!p.multifunction) return true;
      return pciAcsFlagsEnabled(p, flags);
    default:
      return true;
  }
}

// @kernel: pci_acs_enabled
export function pciAcsEnabled(p: PciDev, flags: number): boolean {
  if (p.acsQuirkEntries === null || p.acsQuirkEntries.length > 0) {
    const ret = pciDevSpecificAcsEnabled(p, flags);
    if (ret >= 0) return ret > 0;
  }
  // The out-of-tree override patch adds the table's last entry.
  const o = p.bus.host.acsOverride;
  if (o !== null) {
    const ret = pcieAcsOverrides(p, p.name, o);
    if (ret >= 0) return ret > 0;
  }
  return pciAcsEnabledStd(p, flags);
}

/** What decided pci_acs_enabled for a function: the quirk that answered (or the override patch), or null (the ACS capability and port type did). */
export function pciAcsDecider(p: PciDev, flags: number): { enabled: boolean; quirk: AcsQuirkName | "pcie_acs_overrides" | null } {
  const a = pciDevSpecificAcsAnswer(p, flags);
  if (a.ret >= 0) return { enabled: a.ret > 0, quirk: a.quirk };
  const o = p.bus.host.acsOverride;
  if (o !== null && pcieAcsOverrides(p, p.name, o) >= 0) return { enabled: true, quirk: "pcie_acs_overrides" };
  return { enabled: pciAcsEnabledStd(p, flags), quirk: null };
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

// @kernel: pci_std_enable_acs
function pciStdEnableAcs(p: PciDev): void {
  const cap = p.acsCap!;
  p.acsCtl |= cap & (PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF);
  // Translation Blocking for devices behind external-facing ports.
  if (p.untrusted) p.acsCtl |= cap & PCI_ACS_TB;
}

/**
 * pci_enable_acs at enumeration, with an IOMMU present (pci_acs_enable):
 * a device-specific enable first; the standard one for functions it does
 * not handle. `std` false leaves the control register as the scenario gave
 * it (a dump of a running machine shows the registers after this step).
 */
// @kernel: pci_enable_acs
export function pciEnableAcs(p: PciDev, std: boolean): AcsEnableQuirkName | null {
  const q = pciDevSpecificEnableAcs(p);
  if (q.ret >= 0) return q.quirk;
  if (p.acsCap === null || !std) return null;
  pciStdEnableAcs(p);
  return null;
}

// @kernel: pci_devs_are_dma_aliases (either lists the other's devfn in its dma_alias_mask)
export function pciDevsAreDmaAliases(a: PciDev, b: PciDev): boolean {
  return a.dmaAliasDevfns.includes(b.devfn) || b.dmaAliasDevfns.includes(a.devfn);
}
