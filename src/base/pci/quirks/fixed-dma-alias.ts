/**
 * fixed_dma_alias_tbl[] (drivers/pci/quirks.c, PCI_QUIRKS_KERNEL_VERSION):
 * devices that DMA with a fixed devfn on their bus, matched with their
 * subsystem IDs, for quirk_fixed_dma_alias.
 */
import type { PciIds } from "../pci-dev.ts";
import { PCI_VENDOR_ID_ADAPTEC2 } from "./pci-ids.ts";

interface FixedDmaAlias {
  readonly vendor: number;
  readonly device: number;
  readonly subsystemVendor: number;
  readonly subsystemDevice: number;
  /** The alias devfn (`driver_data`). */
  readonly devfn: number;
}

export const FIXED_DMA_ALIAS_TBL: readonly FixedDmaAlias[] = [
  { vendor: PCI_VENDOR_ID_ADAPTEC2, device: 0x0285, subsystemVendor: PCI_VENDOR_ID_ADAPTEC2, subsystemDevice: 0x02bb, devfn: 1 << 3 }, // Adaptec 3405
  { vendor: PCI_VENDOR_ID_ADAPTEC2, device: 0x0285, subsystemVendor: PCI_VENDOR_ID_ADAPTEC2, subsystemDevice: 0x02bc, devfn: 1 << 3 }, // Adaptec 3805
];

/** The alias devfn pci_match_id finds for these IDs, or null. */
export function fixedDmaAlias(ids: PciIds): number | null {
  const m = FIXED_DMA_ALIAS_TBL.find(
    (x) => x.vendor === ids.vendor && x.device === ids.device && x.subsystemVendor === ids.subsystemVendor && x.subsystemDevice === ids.subsystemDevice,
  );
  return m === undefined ? null : m.devfn;
}
