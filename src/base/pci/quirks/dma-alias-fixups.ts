/**
 * The header fixups that give functions DMA aliases or change how bridges
 * alias (DECLARE_PCI_FIXUP_HEADER entries of drivers/pci/quirks.c,
 * PCI_QUIRKS_KERNEL_VERSION): each entry names the quirk function the
 * kernel declares for that vendor:device. The aliases decide groups through
 * pci_for_each_dma_alias and pci_devs_are_dma_aliases.
 */
import type { PciDev } from "../pci-dev.ts";
import { fixedDmaAlias } from "./fixed-dma-alias.ts";
import {
  PCI_DEVICE_ID_JMICRON_JMB388_ESD,
  PCI_VENDOR_ID_ADAPTEC2,
  PCI_VENDOR_ID_ASMEDIA,
  PCI_VENDOR_ID_BROADCOM,
  PCI_VENDOR_ID_GLENFLY,
  PCI_VENDOR_ID_INTEL,
  PCI_VENDOR_ID_JMICRON,
  PCI_VENDOR_ID_MARVELL_EXT,
  PCI_VENDOR_ID_RICOH,
  PCI_VENDOR_ID_TTI,
} from "./pci-ids.ts";

export type DmaAliasQuirkName =
  | "quirk_dma_func0_alias"
  | "quirk_dma_func1_alias"
  | "quirk_fixed_dma_alias"
  | "quirk_use_pcie_bridge_dma_alias"
  | "quirk_mic_x200_dma_alias"
  | "quirk_pex_vca_alias"
  | "quirk_bridge_cavm_thrx2_pcie_root";

export interface DmaAliasFixup {
  readonly vendor: number;
  readonly device: number;
  readonly quirk: DmaAliasQuirkName;
}

const f = (quirk: DmaAliasQuirkName, vendor: number, ...devices: number[]): DmaAliasFixup[] => devices.map((device) => ({ vendor, device, quirk }));

/** The fixups, in the kernel's order. */
export const DMA_ALIAS_FIXUPS: readonly DmaAliasFixup[] = [
  ...f("quirk_dma_func0_alias", PCI_VENDOR_ID_RICOH, 0xe832, 0xe476),
  ...f("quirk_dma_func0_alias", PCI_VENDOR_ID_GLENFLY, 0x3d40, 0x3d41),
  ...f("quirk_dma_func1_alias", PCI_VENDOR_ID_MARVELL_EXT, 0x9120, 0x9123, 0x9125, 0x9128, 0x9130, 0x9170, 0x9172, 0x917a, 0x9182, 0x9183, 0x91a0, 0x9215, 0x9220, 0x9230, 0x9235),
  ...f("quirk_dma_func1_alias", PCI_VENDOR_ID_TTI, 0x0642, 0x0645),
  ...f("quirk_dma_func1_alias", PCI_VENDOR_ID_JMICRON, PCI_DEVICE_ID_JMICRON_JMB388_ESD),
  ...f("quirk_dma_func1_alias", 0x1c28, 0x0122), // Lite-On Plextor M6E (Marvell 88SS9183)
  ...f("quirk_fixed_dma_alias", PCI_VENDOR_ID_ADAPTEC2, 0x0285),
  ...f("quirk_use_pcie_bridge_dma_alias", PCI_VENDOR_ID_ASMEDIA, 0x1080), // ASM1083/1085
  ...f("quirk_use_pcie_bridge_dma_alias", 0x10e3, 0x8113), // Tundra 8113
  ...f("quirk_use_pcie_bridge_dma_alias", 0x1283, 0x8892, 0x8893), // ITE 8892, 8893
  ...f("quirk_use_pcie_bridge_dma_alias", PCI_VENDOR_ID_INTEL, 0x244e), // Intel 82801
  ...f("quirk_mic_x200_dma_alias", PCI_VENDOR_ID_INTEL, 0x2260, 0x2264),
  ...f("quirk_pex_vca_alias", PCI_VENDOR_ID_INTEL, 0x2954, 0x2955, 0x2956, 0x2958, 0x2959, 0x295a),
  ...f("quirk_bridge_cavm_thrx2_pcie_root", PCI_VENDOR_ID_BROADCOM, 0x9000, 0x9084),
];

const devfn = (slot: number, fn: number) => (slot << 3) | fn;

// @kernel: pci_add_dma_alias (nr_devfns aliases from devfn_from)
function pciAddDmaAlias(p: PciDev, from: number, nr: number): void {
  for (let d = from; d < from + nr && d < 256; d++) if (!p.dmaAliasDevfns.includes(d)) p.dmaAliasDevfns.push(d);
}

const APPLY: Record<DmaAliasQuirkName, (p: PciDev) => boolean> = {
  // @kernel: quirk_dma_func0_alias
  quirk_dma_func0_alias(p) {
    if (p.func === 0) return false;
    pciAddDmaAlias(p, devfn(p.slot, 0), 1);
    return true;
  },
  // @kernel: quirk_dma_func1_alias
  quirk_dma_func1_alias(p) {
    if (p.func === 1) return false;
    pciAddDmaAlias(p, devfn(p.slot, 1), 1);
    return true;
  },
  // @kernel: quirk_fixed_dma_alias
  quirk_fixed_dma_alias(p) {
    const alias = fixedDmaAlias(p.ids);
    if (alias === null) return false;
    pciAddDmaAlias(p, alias, 1);
    return true;
  },
  // @kernel: quirk_use_pcie_bridge_dma_alias
  quirk_use_pcie_bridge_dma_alias(p) {
    const up = p.bus.self?.pci ?? null;
    if (p.bus.isRoot || !p.isBridge || p.isPcie || up === null || !up.isPcie || up.type === "pcie-pci-bridge") return false;
    p.pcieBridgeAlias = true;
    return true;
  },
  // @kernel: quirk_mic_x200_dma_alias
  quirk_mic_x200_dma_alias(p) {
    pciAddDmaAlias(p, devfn(0x10, 0), 1);
    pciAddDmaAlias(p, devfn(0x11, 0), 1);
    pciAddDmaAlias(p, devfn(0x12, 3), 1);
    return true;
  },
  // @kernel: quirk_pex_vca_alias
  quirk_pex_vca_alias(p) {
    for (let slot = 0; slot < 0x20; slot++) pciAddDmaAlias(p, devfn(slot, 0), 5);
    return true;
  },
  // @kernel: quirk_bridge_cavm_thrx2_pcie_root
  quirk_bridge_cavm_thrx2_pcie_root(p) {
    p.bridgeXlateRoot = true;
    return true;
  },
};

/** Runs the fixups that match a function's IDs (pci_fixup_device, pci_fixup_header); returns the quirks that changed it. */
export function pciFixupDmaAliases(p: PciDev): DmaAliasQuirkName[] {
  if (p.ids.vendor < 0) return [];
  const applied: DmaAliasQuirkName[] = [];
  for (const x of DMA_ALIAS_FIXUPS) {
    if (x.vendor !== p.ids.vendor || x.device !== p.ids.device) continue;
    if (APPLY[x.quirk](p)) applied.push(x.quirk);
  }
  return applied;
}
