/**
 * struct pci_dev and struct pci_bus, as far as DMA aliasing, ACS isolation
 * and IOMMU ids need them. A PCI function is a `Device` on the PCI bus with
 * a `PciDev` attached; buses form the tree that pci_for_each_dma_alias and
 * pci_device_group walk.
 */
import type { Device } from "../device.ts";
import type { FwnodeHandle } from "../fwnode.ts";
import type { AcsQuirkEntry } from "./quirks/acs-dev-specific.ts";
import type { AcsOverride } from "./quirks/acs-override.ts";

/** PCIe port types (PCI_EXP_TYPE_*) plus the conventional kinds the model needs. */
export const PCI_DEV_TYPES = [
  "root-port", // PCI_EXP_TYPE_ROOT_PORT
  "switch-up", // PCI_EXP_TYPE_UPSTREAM
  "switch-down", // PCI_EXP_TYPE_DOWNSTREAM
  "pcie-pci-bridge", // PCI_EXP_TYPE_PCI_BRIDGE (PCIe-to-PCI/PCI-X)
  "pci-bridge", // conventional PCI-to-PCI bridge (no PCIe capability)
  "endpoint", // PCI_EXP_TYPE_ENDPOINT, RC_END on a root bus, conventional behind a PCI bridge
  "rc-endpoint", // PCI_EXP_TYPE_RC_END: a Root Complex Integrated Endpoint
  "legacy-endpoint", // PCI_EXP_TYPE_LEG_END
  "rc-event-collector", // PCI_EXP_TYPE_RC_EC
  "pci-endpoint", // conventional PCI: no PCI Express capability (pci_is_pcie false)
] as const;
export type PciDevType = (typeof PCI_DEV_TYPES)[number];

export const PCI_BRIDGE_TYPES: ReadonlySet<PciDevType> = new Set([
  "root-port",
  "switch-up",
  "switch-down",
  "pcie-pci-bridge",
  "pci-bridge",
]);

// include/uapi/linux/pci_regs.h: ACS control bits
export const PCI_ACS_SV = 0x01;
export const PCI_ACS_TB = 0x02;
export const PCI_ACS_RR = 0x04;
export const PCI_ACS_CR = 0x08;
export const PCI_ACS_UF = 0x10;
export const PCI_ACS_EC = 0x20;
export const PCI_ACS_DT = 0x40;

export const ACS_BITS = {
  SV: PCI_ACS_SV,
  TB: PCI_ACS_TB,
  RR: PCI_ACS_RR,
  CR: PCI_ACS_CR,
  UF: PCI_ACS_UF,
  EC: PCI_ACS_EC,
  DT: PCI_ACS_DT,
} as const;
export type AcsName = keyof typeof ACS_BITS;
export const ACS_NAMES = Object.keys(ACS_BITS) as [AcsName, ...AcsName[]];

/** struct pci_bus */
export class PciBus {
  readonly devices: Device[] = [];
  constructor(
    readonly number: number,
    /** The bridge leading to this bus (`bus->self`); null for a root bus. */
    readonly self: Device | null,
    readonly parent: PciBus | null,
    readonly host: PciHostBridge,
  ) {}

  get isRoot(): boolean {
    return this.parent === null;
  }
}

/** struct pci_host_bridge: one per root bus; its firmware node carries `iommu-map`. */
export class PciHostBridge {
  /** The firmware has an IVRS table (an AMD IOMMU): pci_quirk_amd_sb_acs answers only then. */
  acpiIvrs = false;
  /** The out-of-tree pcie_acs_override= patch's settings (quirks/acs-override.ts), or null: mainline. */
  acsOverride: AcsOverride | null = null;
  constructor(
    readonly segment: number,
    /** The host bridge's DT node (with `iommu-map`), or null for an ACPI host bridge. */
    readonly fwnode: FwnodeHandle | null,
  ) {}
}

/** The IDs config space carries; -1 where the scenario does not say. */
export interface PciIds {
  vendor: number;
  device: number;
  subsystemVendor: number;
  subsystemDevice: number;
  /** 24-bit class code (class, subclass, prog-if), as `pdev->class`. */
  classCode: number;
  revision: number;
}

export const NO_PCI_IDS: PciIds = { vendor: -1, device: -1, subsystemVendor: -1, subsystemDevice: -1, classCode: -1, revision: -1 };

/** PCI_DEV_FLAGS_ACS_ENABLED_QUIRK (include/linux/pci.h) */
export const PCI_DEV_FLAGS_ACS_ENABLED_QUIRK = 1 << 9;

export interface PciDevSpec {
  type: PciDevType;
  /** The ACS capability register (the controls implemented), or null without an ACS capability (`pdev->acs_cap == 0`). */
  acsCap: number | null;
  /** The ACS control register (the controls enabled), as firmware or the scenario left it before pci_enable_acs. */
  acsCtl: number;
  ids: PciIds;
  multifunction: boolean;
  /** Extra requester IDs on the same bus (quirked DMA aliases, `dma_alias_mask`). */
  dmaAliasDevfns: number[];
  /** PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT */
  bridgeXlateRoot: boolean;
  /** PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS */
  pcieBridgeAlias: boolean;
  /** `pdev->untrusted`: behind an external-facing port. */
  untrusted: boolean;
  /** PASID capability: the number of PASIDs it supports (`pci_max_pasids`), 0 if none. */
  maxPasids: number;
}

/** struct pci_dev (the parts the model uses). */
export class PciDev implements PciDevSpec {
  type: PciDevType;
  acsCap: number | null;
  acsCtl: number;
  /**
   * Intel Sunrise/Union Point root ports: the control dword at ACS cap + 8
   * where their hardware keeps the controls (pci_quirk_intel_spt_pch_acs);
   * the standard control word (acsCtl) is then not what the port enforces.
   */
  sptAcsCtl = 0;
  ids: PciIds;
  /** `pdev->dev_flags` (PCI_DEV_FLAGS_ACS_ENABLED_QUIRK is the one the model uses). */
  devFlags = 0;
  /** The function's name (`pci_name`), for the what-if override by name. */
  name = "";
  /** The pci_dev_acs_enabled[] entries matching this function's IDs, once looked up. */
  acsQuirkEntries: readonly AcsQuirkEntry[] | null = null;
  multifunction: boolean;
  dmaAliasDevfns: number[];
  bridgeXlateRoot: boolean;
  pcieBridgeAlias: boolean;
  untrusted: boolean;
  maxPasids: number;
  /** The bus this bridge leads to (`pdev->subordinate`), once a child names it. */
  subordinate: PciBus | null = null;
  /** PASID enabled by a driver (`pci_enable_pasid`). */
  pasidEnabled = false;

  constructor(
    readonly bus: PciBus,
    readonly devfn: number,
    spec: PciDevSpec,
  ) {
    this.type = spec.type;
    this.acsCap = spec.acsCap;
    this.acsCtl = spec.acsCtl;
    this.ids = spec.ids;
    this.multifunction = spec.multifunction;
    this.dmaAliasDevfns = spec.dmaAliasDevfns;
    this.bridgeXlateRoot = spec.bridgeXlateRoot;
    this.pcieBridgeAlias = spec.pcieBridgeAlias;
    this.untrusted = spec.untrusted;
    this.maxPasids = spec.maxPasids;
  }

  /** The PCI segment (`pci_domain_nr`): its host bridge's. */
  get segment(): number {
    return this.bus.host.segment;
  }
  get slot(): number {
    return this.devfn >> 3;
  }
  get func(): number {
    return this.devfn & 7;
  }
  /** Requester ID: bus number and devfn (`pci_dev_id`). */
  get rid(): number {
    return (this.bus.number << 8) | this.devfn;
  }
  get isBridge(): boolean {
    return PCI_BRIDGE_TYPES.has(this.type);
  }
  /** Has a PCI Express capability (`pci_is_pcie`). */
  get isPcie(): boolean {
    if (this.type === "pci-bridge" || this.type === "pci-endpoint") return false;
    if (this.type !== "endpoint") return true;
    // An endpoint below a conventional bus segment is conventional PCI.
    return !belowConventionalBridge(this);
  }
}

function belowConventionalBridge(p: PciDev): boolean {
  const up = p.bus.self?.pci;
  return up !== undefined && up !== null && (up.type === "pcie-pci-bridge" || up.type === "pci-bridge");
}

/** Parses `SSSS:BB:DD.F` (segment, bus, device, function), or returns null. */
export function parsePciName(name: string): { segment: number; bus: number; devfn: number } | null {
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/i.exec(name);
  if (m === null) return null;
  const slot = parseInt(m[3]!, 16);
  if (slot > 31) return null;
  return { segment: parseInt(m[1]!, 16), bus: parseInt(m[2]!, 16), devfn: (slot << 3) | parseInt(m[4]!, 10) };
}

