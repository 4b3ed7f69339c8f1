/**
 * pci_dev_acs_enabled[] (drivers/pci/quirks.c, PCI_QUIRKS_KERNEL_VERSION):
 * functions whose isolation the kernel knows from their vendor:device
 * rather than from an ACS capability, every entry in the kernel's order,
 * each naming the quirk function it calls; and those functions' rules.
 *
 * pci_dev_specific_acs_enabled walks the table; the first entry that
 * matches and answers (not -ENOTTY / -ENODEV) decides: 1 isolated for the
 * controls asked, 0 not. Functions whose IDs no entry answers for fall
 * back to their ACS capability (pci_acs_enabled).
 */
import { PCI_ACS_CR, PCI_ACS_DT, PCI_ACS_EC, PCI_ACS_RR, PCI_ACS_SV, PCI_ACS_TB, PCI_ACS_UF, PCI_DEV_FLAGS_ACS_ENABLED_QUIRK, type PciDev } from "../pci-dev.ts";
import {
  PCI_ANY_ID,
  PCI_VENDOR_ID_AMAZON_ANNAPURNA_LABS,
  PCI_VENDOR_ID_AMCC,
  PCI_VENDOR_ID_AMD,
  PCI_VENDOR_ID_AMPERE,
  PCI_VENDOR_ID_ATI,
  PCI_VENDOR_ID_BROADCOM,
  PCI_VENDOR_ID_CAVIUM,
  PCI_VENDOR_ID_HXT,
  PCI_VENDOR_ID_INTEL,
  PCI_VENDOR_ID_LOONGSON,
  PCI_VENDOR_ID_NXP,
  PCI_VENDOR_ID_QCOM,
  PCI_VENDOR_ID_SOLARFLARE,
  PCI_VENDOR_ID_WANGXUN,
  PCI_VENDOR_ID_ZHAOXIN,
} from "./pci-ids.ts";
import { INTEL_PCH_ACS_IDS, intelSptPchAcsMatch } from "./intel-pch-acs-ids.ts";

/** The kernel's "no quirk applies" answers. */
export const QUIRK_ENOTTY = -25;
export const QUIRK_ENODEV = -19;

export const ACS_QUIRK_NAMES = [
  "pci_quirk_amd_sb_acs",
  "pci_quirk_mf_endpoint_acs",
  "pci_quirk_rciep_acs",
  "pci_quirk_qcom_rp_acs",
  "pci_quirk_intel_pch_acs",
  "pci_quirk_intel_spt_pch_acs",
  "pci_quirk_cavium_acs",
  "pci_quirk_xgene_acs",
  "pci_quirk_brcm_acs",
  "pci_quirk_loongson_acs",
  "pci_quirk_al_acs",
  "pci_quirk_nxp_rp_acs",
  "pci_quirk_zhaoxin_pcie_ports_acs",
  "pci_quirk_wangxun_nic_acs",
] as const;
export type AcsQuirkName = (typeof ACS_QUIRK_NAMES)[number];

export interface AcsQuirkEntry {
  readonly vendor: number;
  readonly device: number;
  readonly quirk: AcsQuirkName;
}

const SV_RR_CR_UF = PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF;

// @kernel: pci_acs_ctrl_enabled
function pciAcsCtrlEnabled(req: number, ena: number): number {
  return (req & ena) === req ? 1 : 0;
}

/** PCI_EXP_TYPE_ROOT_PORT behind pci_is_pcie. */
function isRootPort(p: PciDev): boolean {
  return p.isPcie && p.type === "root-port";
}

const QUIRKS: Record<AcsQuirkName, (p: PciDev, flags: number) => number> = {
  // @kernel: pci_quirk_amd_sb_acs
  pci_quirk_amd_sb_acs(p, flags) {
    if (!p.multifunction || !p.bus.isRoot) return QUIRK_ENODEV;
    // The IVRS table describes the AMD IOMMU: without it, no answer.
    if (!p.bus.host.acpiIvrs) return QUIRK_ENODEV;
    return pciAcsCtrlEnabled(flags & (PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_EC | PCI_ACS_DT), PCI_ACS_RR | PCI_ACS_CR);
  },
  // @kernel: pci_quirk_mf_endpoint_acs
  pci_quirk_mf_endpoint_acs: (_p, flags) => pciAcsCtrlEnabled(flags, SV_RR_CR_UF | PCI_ACS_TB | PCI_ACS_DT),
  // @kernel: pci_quirk_rciep_acs
  pci_quirk_rciep_acs: (p, flags) => (p.isPcie && p.type === "rc-endpoint" ? pciAcsCtrlEnabled(flags, SV_RR_CR_UF) : QUIRK_ENOTTY),
  // @kernel: pci_quirk_qcom_rp_acs
  pci_quirk_qcom_rp_acs: (_p, flags) => pciAcsCtrlEnabled(flags, SV_RR_CR_UF),
  // @kernel: pci_quirk_intel_pch_acs
  pci_quirk_intel_pch_acs(p, flags) {
    if (!isRootPort(p) || !INTEL_PCH_ACS_IDS.has(p.ids.device)) return QUIRK_ENOTTY;
    // Only once pci_quirk_enable_intel_pch_acs has done its work does the port count as isolated.
    return pciAcsCtrlEnabled(flags, (p.devFlags & PCI_DEV_FLAGS_ACS_ENABLED_QUIRK) !== 0 ? SV_RR_CR_UF : 0);
  },
  // @kernel: pci_quirk_intel_spt_pch_acs
  pci_quirk_intel_spt_pch_acs(p, flags) {
    if (!intelSptPchAcsMatch(p) || p.acsCap === null) return QUIRK_ENOTTY;
    // The controls sit in a dword at cap + 8, not the standard word at cap + 6.
    return pciAcsCtrlEnabled(flags & (p.acsCap | PCI_ACS_EC), p.sptAcsCtl);
  },
  // @kernel: pci_quirk_cavium_acs
  pci_quirk_cavium_acs(p, flags) {
    const d = p.ids.device;
    const match = isRootPort(p) && ((d >= 0xa000 && d <= 0xa7ff) || d === 0xaf84 || d === 0xb884);
    return match ? pciAcsCtrlEnabled(flags, SV_RR_CR_UF) : QUIRK_ENOTTY;
  },
  // @kernel: pci_quirk_xgene_acs
  pci_quirk_xgene_acs: (_p, flags) => pciAcsCtrlEnabled(flags, SV_RR_CR_UF),
  // @kernel: pci_quirk_brcm_acs
  pci_quirk_brcm_acs: (_p, flags) => pciAcsCtrlEnabled(flags, SV_RR_CR_UF),
  // @kernel: pci_quirk_loongson_acs
  pci_quirk_loongson_acs: (_p, flags) => pciAcsCtrlEnabled(flags, SV_RR_CR_UF),
  // @kernel: pci_quirk_al_acs
  pci_quirk_al_acs(p, flags) {
    if (!isRootPort(p)) return QUIRK_ENOTTY;
    return (flags & ~SV_RR_CR_UF) !== 0 ? 0 : 1;
  },
  // @kernel: pci_quirk_nxp_rp_acs
  pci_quirk_nxp_rp_acs: (_p, flags) => pciAcsCtrlEnabled(flags, SV_RR_CR_UF),
  // @kernel: pci_quirk_zhaoxin_pcie_ports_acs
  pci_quirk_zhaoxin_pcie_ports_acs(p, flags) {
    if (!p.isPcie || (p.type !== "root-port" && p.type !== "switch-down")) return QUIRK_ENOTTY;
    const d = p.ids.device;
    if ((d >= 0x0710 && d <= 0x071e) || d === 0x0721 || (d >= 0x0723 && d <= 0x0752)) return pciAcsCtrlEnabled(flags, SV_RR_CR_UF);
    // Other Zhaoxin ports: not isolated, whatever their ACS capability says.
    return 0;
  },
  // @kernel: pci_quirk_wangxun_nic_acs
  pci_quirk_wangxun_nic_acs(p, flags) {
    const d = p.ids.device;
    const listed = (d >= 0x0100 && d <= 0x010f) || [0x1001, 0x2001, 0x5010, 0x5025, 0x5040, 0x5110, 0x5125, 0x5140].includes(d);
    // Other Wangxun functions: not isolated.
    return listed ? pciAcsCtrlEnabled(flags, SV_RR_CR_UF) : 0;
  },
};

const e = (vendor: number, device: number, quirk: AcsQuirkName): AcsQuirkEntry => ({ vendor, device, quirk });
const mf = (vendor: number, ...devices: number[]) => devices.map((d) => e(vendor, d, "pci_quirk_mf_endpoint_acs"));
const each = (vendor: number, quirk: AcsQuirkName, ...devices: number[]) => devices.map((d) => e(vendor, d, quirk));

/** pci_dev_acs_enabled[], in the kernel's order. */
export const PCI_DEV_ACS_ENABLED: readonly AcsQuirkEntry[] = [
  ...each(PCI_VENDOR_ID_ATI, "pci_quirk_amd_sb_acs", 0x4385, 0x439c, 0x4383, 0x439d, 0x4384, 0x4399),
  ...each(PCI_VENDOR_ID_AMD, "pci_quirk_amd_sb_acs", 0x780f, 0x7809),
  ...mf(PCI_VENDOR_ID_SOLARFLARE, 0x0903, 0x0923, 0x0a03),
  ...mf(PCI_VENDOR_ID_INTEL, 0x10c6, 0x10db, 0x10dd, 0x10e1, 0x10f1, 0x10f7, 0x10f8, 0x10f9, 0x10fa, 0x10fb, 0x10fc, 0x1507, 0x1514, 0x151c, 0x1529, 0x152a, 0x154d, 0x154f, 0x1551, 0x1558),
  // 82580
  ...mf(PCI_VENDOR_ID_INTEL, 0x1509, 0x150e, 0x150f, 0x1510, 0x1511, 0x1516, 0x1527),
  // 82576
  ...mf(PCI_VENDOR_ID_INTEL, 0x10c9, 0x10e6, 0x10e7, 0x10e8, 0x150a, 0x150d, 0x1518, 0x1526),
  // 82575
  ...mf(PCI_VENDOR_ID_INTEL, 0x10a7, 0x10a9, 0x10d6),
  // I350
  ...mf(PCI_VENDOR_ID_INTEL, 0x1521, 0x1522, 0x1523, 0x1524),
  // 82571
  ...mf(PCI_VENDOR_ID_INTEL, 0x105e, 0x105f, 0x1060, 0x10d9),
  // I219
  ...mf(PCI_VENDOR_ID_INTEL, 0x15b7, 0x15b8),
  e(PCI_VENDOR_ID_INTEL, PCI_ANY_ID, "pci_quirk_rciep_acs"),
  // QCOM QDF2xxx and SA8775P root ports, HXT SD4800 root ports
  ...each(PCI_VENDOR_ID_QCOM, "pci_quirk_qcom_rp_acs", 0x0400, 0x0401, 0x0115),
  e(PCI_VENDOR_ID_HXT, 0x0401, "pci_quirk_qcom_rp_acs"),
  // Intel PCH root ports
  e(PCI_VENDOR_ID_INTEL, PCI_ANY_ID, "pci_quirk_intel_pch_acs"),
  e(PCI_VENDOR_ID_INTEL, PCI_ANY_ID, "pci_quirk_intel_spt_pch_acs"),
  e(0x19a2, 0x0710, "pci_quirk_mf_endpoint_acs"), // Emulex BE3-R
  e(0x10df, 0x0720, "pci_quirk_mf_endpoint_acs"), // Emulex Skyhawk-R
  e(PCI_VENDOR_ID_CAVIUM, PCI_ANY_ID, "pci_quirk_cavium_acs"),
  ...mf(PCI_VENDOR_ID_CAVIUM, 0xa026, 0xa059, 0xa060),
  // APM X-Gene, Ampere
  e(PCI_VENDOR_ID_AMCC, 0xe004, "pci_quirk_xgene_acs"),
  ...each(PCI_VENDOR_ID_AMPERE, "pci_quirk_xgene_acs", 0xe005, 0xe006, 0xe007, 0xe008, 0xe009, 0xe00a, 0xe00b, 0xe00c),
  ...mf(PCI_VENDOR_ID_BROADCOM, 0x16d7, 0x1750, 0x1751, 0x1752, 0x1760, 0x1761, 0x1762, 0x1763),
  e(PCI_VENDOR_ID_BROADCOM, 0xd714, "pci_quirk_brcm_acs"),
  ...each(PCI_VENDOR_ID_LOONGSON, "pci_quirk_loongson_acs", 0x3c09, 0x3c19, 0x3c29, 0x7a09, 0x7a19, 0x7a29, 0x7a39, 0x7a49, 0x7a59, 0x7a69),
  e(PCI_VENDOR_ID_AMAZON_ANNAPURNA_LABS, 0x0031, "pci_quirk_al_acs"),
  ...mf(PCI_VENDOR_ID_ZHAOXIN, 0x3038, 0x3104, 0x9083),
  // NXP LX2xx0/LX2xx2 root ports
  ...each(PCI_VENDOR_ID_NXP, "pci_quirk_nxp_rp_acs", 0x8d81, 0x8da1, 0x8d83, 0x8d80, 0x8da0, 0x8d82, 0x8d90, 0x8db0, 0x8d92, 0x8d91, 0x8db1, 0x8d93),
  ...each(PCI_VENDOR_ID_NXP, "pci_quirk_nxp_rp_acs", 0x8d89, 0x8da9, 0x8d8b, 0x8d88, 0x8da8, 0x8d8a, 0x8d98, 0x8db8, 0x8d9a, 0x8d99, 0x8db9, 0x8d9b),
  e(PCI_VENDOR_ID_ZHAOXIN, PCI_ANY_ID, "pci_quirk_zhaoxin_pcie_ports_acs"),
  e(PCI_VENDOR_ID_WANGXUN, PCI_ANY_ID, "pci_quirk_wangxun_nic_acs"),
];

/** The table's entries by vendor, in table order (no entry has a wildcard vendor). */
const BY_VENDOR = new Map<number, AcsQuirkEntry[]>();
for (const x of PCI_DEV_ACS_ENABLED) {
  let l = BY_VENDOR.get(x.vendor);
  if (l === undefined) BY_VENDOR.set(x.vendor, (l = []));
  l.push(x);
}
const NONE: readonly AcsQuirkEntry[] = [];

/** The entries whose IDs match a function, in table order (computed once per function). */
export function acsQuirkEntries(p: PciDev): readonly AcsQuirkEntry[] {
  if (p.acsQuirkEntries !== null) return p.acsQuirkEntries;
  const l = BY_VENDOR.get(p.ids.vendor);
  const m = l === undefined ? NONE : l.filter((x) => x.device === PCI_ANY_ID || x.device === p.ids.device);
  p.acsQuirkEntries = m;
  return m;
}

/** What pci_dev_specific_acs_enabled answered and which quirk answered it (null: none applies, -ENOTTY). */
export interface AcsQuirkAnswer {
  ret: number;
  quirk: AcsQuirkName | null;
}

// @kernel: pci_dev_specific_acs_enabled
export function pciDevSpecificAcsEnabled(p: PciDev, flags: number): number {
  const entries = acsQuirkEntries(p);
  for (let i = 0; i < entries.length; i++) {
    const ret = QUIRKS[entries[i]!.quirk](p, flags);
    if (ret >= 0) return ret;
  }
  return QUIRK_ENOTTY;
}

/** pci_dev_specific_acs_enabled with the name of the quirk that answered, for the trace and `explain`. */
export function pciDevSpecificAcsAnswer(p: PciDev, flags: number): AcsQuirkAnswer {
  for (const x of acsQuirkEntries(p)) {
    const ret = QUIRKS[x.quirk](p, flags);
    if (ret >= 0) return { ret, quirk: x.quirk };
  }
  return { ret: QUIRK_ENOTTY, quirk: null };
}
