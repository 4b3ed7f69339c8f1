/**
 * The kernel release the PCI quirk tables in this folder reflect
 * (drivers/pci/quirks.c and drivers/pci/pci.c of that release). A table
 * that changes in a later release is updated here, with this version.
 */
export const PCI_QUIRKS_KERNEL_VERSION = "v6.18";
