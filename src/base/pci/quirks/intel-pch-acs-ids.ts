/**
 * The Intel root ports two ACS quirks match (drivers/pci/quirks.c,
 * PCI_QUIRKS_KERNEL_VERSION): pci_quirk_intel_pch_acs_ids[] (PCH root ports
 * without an ACS capability whose equivalent the kernel switches on through
 * the chipset, pci_quirk_enable_intel_pch_acs) and the Sunrise Point /
 * Union Point / 7th-8th gen mobile root ports whose ACS control register
 * sits at a non-standard offset (pci_quirk_intel_spt_pch_acs_match).
 */
import type { PciDev } from "../pci-dev.ts";

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** pci_quirk_intel_pch_acs_ids[] */
export const INTEL_PCH_ACS_IDS: ReadonlySet<number> = new Set([
  ...range(0x3b42, 0x3b51), // Ibexpeak
  ...range(0x1c10, 0x1c1f), // Cougarpoint
  ...range(0x1e10, 0x1e1f), // Pantherpoint
  ...range(0x8c10, 0x8c1f), // Lynxpoint-H
  ...range(0x9c10, 0x9c1b), // Lynxpoint-LP
  ...range(0x9c90, 0x9c9b), // Wildcat
  0x1d10, 0x1d12, 0x1d14, 0x1d16, 0x1d18, 0x1d1a, 0x1d1c, 0x1d1e, // Patsburg (X79)
  ...range(0x8d10, 0x8d1e), // Wellsburg (X99)
  0x8c90, 0x8c92, 0x8c94, 0x8c96, 0x8c98, 0x8c9a, 0x8c9c, 0x8c9e, // Lynx Point (9 series)
]);

// @kernel: pci_quirk_intel_spt_pch_acs_match
export function intelSptPchAcsMatch(p: PciDev): boolean {
  if (!p.isPcie || p.type !== "root-port" || p.ids.vendor !== 0x8086) return false;
  const d = p.ids.device;
  return (
    (d >= 0xa110 && d <= 0xa11f) || (d >= 0xa167 && d <= 0xa16a) || // Sunrise Point
    (d >= 0xa290 && d <= 0xa29f) || (d >= 0xa2e7 && d <= 0xa2ee) || // Union Point
    (d >= 0x9d10 && d <= 0x9d1b) // 7th and 8th gen mobile
  );
}
