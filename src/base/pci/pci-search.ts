/**
 * pci_for_each_dma_alias (drivers/pci/search.c): every requester ID the
 * IOMMU may see for a function — its own, its quirked aliases, and the ones
 * bridges on the way up substitute for it.
 */
import type { Device } from "../device.ts";
import type { PciDev } from "./pci-dev.ts";

/** Calls `fn(pdev, rid)` per alias; stops at, and returns, the first result that is not `ok`. */
export function pciForEachDmaAlias<T>(dev: Device, fn: (pdev: Device, rid: number) => T, ok: T): T {
  const pdev = dev.pci!;
  let ret = fn(dev, pdev.rid);
  if (ret !== ok) return ret;
  for (const devfn of pdev.dmaAliasDevfns) {
    ret = fn(dev, (pdev.bus.number << 8) | devfn);
    if (ret !== ok) return ret;
  }
  for (let bus = pdev.bus; !bus.isRoot; bus = bus.parent!) {
    const tmpDev = bus.self;
    if (tmpDev === null) continue;
    const tmp: PciDev = tmpDev.pci!;
    // @kernel: pci_for_each_dma_alias (a translation root ends the walk)
    if (tmp.bridgeXlateRoot) break;
    if (tmp.isPcie) {
      switch (tmp.type) {
        case "root-port":
        case "switch-up":
        case "switch-down":
          continue;
        case "pcie-pci-bridge":
          ret = fn(tmpDev, (tmp.subordinate!.number << 8) | 0);
          if (ret !== ok) return ret;
          continue;
        default:
          continue;
      }
    } else {
      const rid = tmp.pcieBridgeAlias ? (tmp.subordinate!.number << 8) | 0 : tmp.rid;
      ret = fn(tmpDev, rid);
      if (ret !== ok) return ret;
    }
  }
  return ret;
}
