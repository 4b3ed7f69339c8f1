/**
 * pci_dev_acs_ops[] (drivers/pci/quirks.c, PCI_QUIRKS_KERNEL_VERSION): the
 * enable side of the Intel root-port ACS quirks. pci_enable_acs asks these
 * first; when one handles the port (returns 0), the standard enable
 * (pci_std_enable_acs) is skipped for it.
 */
import { PCI_ACS_CR, PCI_ACS_RR, PCI_ACS_SV, PCI_ACS_TB, PCI_ACS_UF, PCI_DEV_FLAGS_ACS_ENABLED_QUIRK, type PciDev } from "../pci-dev.ts";
import { QUIRK_ENOTTY } from "./acs-dev-specific.ts";
import { INTEL_PCH_ACS_IDS, intelSptPchAcsMatch } from "./intel-pch-acs-ids.ts";
import { idMatches, PCI_ANY_ID, PCI_VENDOR_ID_INTEL } from "./pci-ids.ts";

export type AcsEnableQuirkName = "pci_quirk_enable_intel_pch_acs" | "pci_quirk_enable_intel_spt_pch_acs";

interface AcsOpsEntry {
  readonly vendor: number;
  readonly device: number;
  readonly enable: AcsEnableQuirkName;
  readonly disableRedir: "pci_quirk_disable_intel_spt_pch_acs_redir" | null;
}

/** pci_dev_acs_ops[], in the kernel's order. */
export const PCI_DEV_ACS_OPS: readonly AcsOpsEntry[] = [
  { vendor: PCI_VENDOR_ID_INTEL, device: PCI_ANY_ID, enable: "pci_quirk_enable_intel_pch_acs", disableRedir: null },
  { vendor: PCI_VENDOR_ID_INTEL, device: PCI_ANY_ID, enable: "pci_quirk_enable_intel_spt_pch_acs", disableRedir: "pci_quirk_disable_intel_spt_pch_acs_redir" },
];

const ENABLE: Record<AcsEnableQuirkName, (p: PciDev) => number> = {
  // @kernel: pci_quirk_enable_intel_pch_acs
  pci_quirk_enable_intel_pch_acs(p) {
    if (!p.isPcie || p.type !== "root-port" || !INTEL_PCH_ACS_IDS.has(p.ids.device)) return QUIRK_ENOTTY;
    // The model takes the chipset's RCBA as enabled, so the LPC peer-decode and MPC writes succeed.
    p.devFlags |= PCI_DEV_FLAGS_ACS_ENABLED_QUIRK;
    return 0;
  },
  // @kernel: pci_quirk_enable_intel_spt_pch_acs
  pci_quirk_enable_intel_spt_pch_acs(p) {
    if (!intelSptPchAcsMatch(p) || p.acsCap === null) return QUIRK_ENOTTY;
    const cap = p.acsCap;
    let ctrl = p.sptAcsCtl | (cap & (PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF));
    if (p.untrusted) ctrl |= cap & PCI_ACS_TB;
    p.sptAcsCtl = ctrl;
    return 0;
  },
};

// @kernel: pci_dev_specific_enable_acs
export function pciDevSpecificEnableAcs(p: PciDev): { ret: number; quirk: AcsEnableQuirkName | null } {
  for (const x of PCI_DEV_ACS_OPS) {
    if (!idMatches(x.vendor, x.device, p.ids.vendor, p.ids.device)) continue;
    const ret = ENABLE[x.enable](p);
    if (ret >= 0) return { ret, quirk: x.enable };
  }
  return { ret: QUIRK_ENOTTY, quirk: null };
}
