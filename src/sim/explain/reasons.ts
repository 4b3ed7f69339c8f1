/**
 * Why a PCI function is in the group it is in, rule by rule, as
 * pci_device_group decides it: the requester IDs bridges substitute
 * (pci_for_each_dma_alias), the first port up the path that does not
 * isolate (pci_acs_path_enabled) and what it lacks, multifunction siblings
 * without ACS (get_pci_function_alias_group), quirked DMA aliases
 * (get_pci_alias_group), and the quirk-table entries that isolated a port.
 */
import type { Device } from "../../base/device.ts";
import { pciAcsDecider, pciAcsEnabled, pciAcsPathEnabled, pciDevsAreDmaAliases, REQ_ACS_FLAGS } from "../../base/pci/pci-acs.ts";
import { ACS_BITS, PCI_ACS_EC, type AcsName, type PciDev } from "../../base/pci/pci-dev.ts";
import { pciForEachDmaAlias } from "../../base/pci/pci-search.ts";
import type { Machine } from "../machine.ts";

export type Rule = "pci_for_each_dma_alias" | "pci_acs_path_enabled" | "get_pci_function_alias_group" | "get_pci_alias_group" | "pci_dev_specific_acs_enabled" | "pcie_acs_overrides";

export interface Reason {
  rule: Rule;
  /** The device the rule is about (a bridge, a port, a sibling). */
  device: string;
  text: string;
}

const REQ_NAMES: AcsName[] = ["SV", "RR", "CR", "UF"];

/** Why pci_acs_enabled says no for a function (or yes, for a quirk). */
export function acsVerdict(p: PciDev): { enabled: boolean; why: string; quirk: string | null } {
  const d = pciAcsDecider(p, REQ_ACS_FLAGS);
  if (d.quirk === "pcie_acs_overrides") return { enabled: true, why: "the out-of-tree pcie_acs_override patch claims it isolates", quirk: d.quirk };
  if (d.quirk !== null) return { enabled: d.enabled, why: `${d.quirk} (pci_dev_acs_enabled[]) says it ${d.enabled ? "isolates" : "does not isolate"}`, quirk: d.quirk };
  if (d.enabled) return { enabled: true, why: "ACS isolates it", quirk: null };
  if (!p.isPcie) return { enabled: false, why: "conventional PCI (no PCI Express capability): never isolated", quirk: null };
  if (p.type === "pcie-pci-bridge" || p.type === "rc-event-collector") return { enabled: false, why: `a ${p.type}: ACS never applies`, quirk: null };
  if (p.acsCap === null) return { enabled: false, why: "no ACS capability", quirk: null };
  const want = REQ_ACS_FLAGS & (p.acsCap | PCI_ACS_EC);
  const missing = REQ_NAMES.filter((n) => (want & ACS_BITS[n]) !== 0 && (p.acsCtl & ACS_BITS[n]) === 0);
  return { enabled: false, why: `ACS ${missing.join(", ")} implemented but not enabled`, quirk: null };
}

/** The first function from `start` up to the root whose ACS does not isolate (what pci_acs_path_enabled stops at). */
function firstNonIsolating(start: Device): Device | null {
  for (let d: Device | null = start; d !== null && d.pci !== null; d = d.pci.bus.isRoot ? null : d.pci.bus.self) {
    if (!pciAcsEnabled(d.pci, REQ_ACS_FLAGS)) return d;
  }
  return null;
}

/** Which quirk a DMA alias of `a` came from (machine.pciFixups), if one did. */
function aliasQuirk(m: Machine, a: string, b: string): string | null {
  const f = m.pciFixups.find((x) => (x.device === a || x.device === b) && x.fn === "pci_fixup_device" && x.quirk !== "quirk_bridge_cavm_thrx2_pcie_root" && x.quirk !== "quirk_use_pcie_bridge_dma_alias");
  return f?.quirk ?? null;
}

export interface Placement {
  /** The function the group is looked up from after the alias and ACS walks (pci_device_group's `pdev`). */
  base: Device;
  reasons: Reason[];
}

// @kernel: pci_device_group (its decisions, each with the rule that made it)
export function placement(m: Machine, dev: Device): Placement {
  const reasons: Reason[] = [];
  let last = dev;
  pciForEachDmaAlias(
    dev,
    (pdev, rid) => {
      if (pdev !== dev) {
        const pp = pdev.pci!;
        const kind = pp.isPcie ? "a PCIe-to-PCI bridge" : pp.pcieBridgeAlias ? "a PCIe-to-PCI bridge without a PCI Express capability (quirk_use_pcie_bridge_dma_alias)" : "a conventional PCI bridge";
        reasons.push({
          rule: "pci_for_each_dma_alias",
          device: pdev.name,
          text: `${pdev.name} is ${kind}: ${dev.name}'s DMA reaches the IOMMU with requester ID ${(rid >> 8).toString(16).padStart(2, "0")}:${((rid >> 3) & 31).toString(16).padStart(2, "0")}.${rid & 7}, so it shares ${pdev.name}'s group`,
        });
      }
      last = pdev;
      return true;
    },
    true,
  );
  let base: Device = last;
  for (let bus = base.pci!.bus; !bus.isRoot; bus = bus.parent!) {
    if (bus.self === null) continue;
    if (pciAcsPathEnabled(bus.self, null, REQ_ACS_FLAGS)) break;
    const f = firstNonIsolating(bus.self)!;
    const v = acsVerdict(f.pci!);
    reasons.push({
      rule: "pci_acs_path_enabled",
      device: f.name,
      text:
        f === bus.self
          ? `${f.name} above it does not isolate the devices below it (${v.why}), so everything below ${f.name} shares its group`
          : `${f.name}, further up the path, does not isolate (${v.why}), so ${bus.self.name} and everything below it share a group`,
    });
    base = bus.self;
  }
  const p = base.pci!;
  if (p.multifunction && !pciAcsEnabled(p, REQ_ACS_FLAGS)) {
    const sibs = [...m.devices.values()].map((r) => r.dev).filter((d) => d !== base && d.pci !== null && d.pci.bus === p.bus && d.pci.slot === p.slot && !pciAcsEnabled(d.pci, REQ_ACS_FLAGS));
    if (sibs.length > 0) {
      reasons.push({
        rule: "get_pci_function_alias_group",
        device: base.name,
        text: `${base === dev ? "it" : base.name} is a function of a multifunction device and does not isolate (${acsVerdict(p).why}); neither do its sibling functions ${sibs.map((d) => d.name).join(", ")}: they share one group`,
      });
    }
  }
  for (const r of m.devices.values()) {
    const o = r.dev;
    if (o === base || o.pci === null || o.pci.bus !== p.bus || !pciDevsAreDmaAliases(p, o.pci)) continue;
    const q = aliasQuirk(m, base.name, o.name);
    reasons.push({ rule: "get_pci_alias_group", device: o.name, text: `${o.name} and ${base.name} are DMA aliases of each other${q === null ? " (dma-alias)" : ` (${q})`}` });
  }
  return { base, reasons };
}

/** Quirk-table entries that isolated the function or a port on its path (they explain a group being small). */
export function isolatingQuirks(dev: Device): Reason[] {
  const out: Reason[] = [];
  for (let d: Device | null = dev; d !== null && d.pci !== null; d = d.pci.bus.isRoot ? null : d.pci.bus.self) {
    const v = acsVerdict(d.pci);
    if (v.quirk !== null && v.enabled) {
      out.push({ rule: v.quirk === "pcie_acs_overrides" ? "pcie_acs_overrides" : "pci_dev_specific_acs_enabled", device: d.name, text: `${d.name} is isolated by ${v.quirk}${v.quirk === "pcie_acs_overrides" ? " (the out-of-tree ACS override patch)" : " (pci_dev_acs_enabled[])"}` });
    }
  }
  return out;
}
