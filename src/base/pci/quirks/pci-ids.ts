/**
 * Vendor IDs the quirk tables name (include/linux/pci_ids.h), and
 * PCI_ANY_ID as the tables' wildcard.
 */
export const PCI_ANY_ID = 0xffff;

export const PCI_VENDOR_ID_ATI = 0x1002;
export const PCI_VENDOR_ID_AMD = 0x1022;
export const PCI_VENDOR_ID_INTEL = 0x8086;
export const PCI_VENDOR_ID_SOLARFLARE = 0x1924;
export const PCI_VENDOR_ID_QCOM = 0x17cb;
export const PCI_VENDOR_ID_HXT = 0x1dbf;
export const PCI_VENDOR_ID_CAVIUM = 0x177d;
export const PCI_VENDOR_ID_AMCC = 0x10e8;
export const PCI_VENDOR_ID_AMPERE = 0x1def;
export const PCI_VENDOR_ID_BROADCOM = 0x14e4;
export const PCI_VENDOR_ID_LOONGSON = 0x0014;
export const PCI_VENDOR_ID_AMAZON_ANNAPURNA_LABS = 0x1c36;
export const PCI_VENDOR_ID_ZHAOXIN = 0x1d17;
export const PCI_VENDOR_ID_NXP = 0x1957;
export const PCI_VENDOR_ID_WANGXUN = 0x8088;
export const PCI_VENDOR_ID_RICOH = 0x1180;
export const PCI_VENDOR_ID_GLENFLY = 0x6766;
export const PCI_VENDOR_ID_MARVELL_EXT = 0x1b4b;
export const PCI_VENDOR_ID_TTI = 0x1103;
export const PCI_VENDOR_ID_JMICRON = 0x197b;
export const PCI_DEVICE_ID_JMICRON_JMB388_ESD = 0x2393;
export const PCI_VENDOR_ID_ADAPTEC2 = 0x9005;
export const PCI_VENDOR_ID_ASMEDIA = 0x1b21;

/** Whether a table entry's vendor/device pair matches a function's IDs (PCI_ANY_ID matches any). */
export function idMatches(entryVendor: number, entryDevice: number, vendor: number, device: number): boolean {
  return (entryVendor === vendor || entryVendor === PCI_ANY_ID) && (entryDevice === device || entryDevice === PCI_ANY_ID);
}
