/**
 * pcie_acs_override=: the OUT-OF-TREE ACS override patch (carried by some
 * distributions and VFIO users, never merged into Linux). It adds a last
 * entry to pci_dev_acs_enabled[] that claims isolation for PCIe functions
 * without an ACS capability: every downstream/root port (`downstream`),
 * every multifunction endpoint or upstream port (`multifunction`), or the
 * functions whose vendor:device it names (`id:vvvv:dddd`). The model adds
 * `id:SSSS:BB:DD.F` (one function treated as isolated, unconditionally)
 * for what-if questions; the real patch has no such form.
 */
import type { PciDev } from "../pci-dev.ts";
import { QUIRK_ENOTTY } from "./acs-dev-specific.ts";

export interface AcsOverride {
  downstream: boolean;
  multifunction: boolean;
  /** vendor:device pairs (the patch's id:). */
  ids: ReadonlyArray<readonly [number, number]>;
  /** Function names treated as isolated (the model's what-if). */
  functions: ReadonlySet<string>;
}

/** The patch's override (pcie_acs_overrides), with the model's per-function form first. */
export function pcieAcsOverrides(p: PciDev, name: string, o: AcsOverride): number {
  if (o.functions.has(name)) return 1;
  // The patch never overrides conventional PCI or a function with an ACS capability.
  if (!p.isPcie || p.acsCap !== null) return QUIRK_ENOTTY;
  if (o.ids.some(([v, d]) => v === p.ids.vendor && d === p.ids.device)) return 1;
  switch (p.type) {
    case "switch-down":
    case "root-port":
      if (o.downstream) return 1;
      break;
    case "endpoint":
    case "switch-up":
    case "legacy-endpoint":
    case "rc-endpoint":
      if (o.multifunction && p.multifunction) return 1;
      break;
    default:
      break;
  }
  return QUIRK_ENOTTY;
}
