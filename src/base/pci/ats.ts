/**
 * PASID enabling (drivers/pci/ats.c). A function may enable PASID only when
 * the path to the root enforces ACS Request Redirect and Upstream
 * Forwarding: switches route by address, not PASID, so without them one
 * function's PASID traffic could reach a peer.
 */
import { kerr, type KError } from "../../lib/errno.ts";
import type { Device } from "../device.ts";
import { pciAcsPathEnabled } from "./pci-acs.ts";
import { PCI_ACS_RR, PCI_ACS_UF } from "./pci-dev.ts";

// @kernel: pci_enable_pasid
export function pciEnablePasid(dev: Device): 0 | KError {
  const p = dev.pci;
  if (p === null || p.maxPasids === 0) return kerr("EINVAL", `${dev.name} has no PASID capability`);
  if (p.pasidEnabled) return kerr("EBUSY", `${dev.name} has PASID enabled already`);
  if (!pciAcsPathEnabled(dev, null, PCI_ACS_RR | PCI_ACS_UF)) {
    return kerr("EINVAL", `${dev.name}: ACS Request Redirect and Upstream Forwarding are not enforced on the path to the root`);
  }
  p.pasidEnabled = true;
  return 0;
}

// @kernel: pci_disable_pasid
export function pciDisablePasid(dev: Device): void {
  if (dev.pci !== null) dev.pci.pasidEnabled = false;
}
