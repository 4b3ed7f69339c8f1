/**
 * pci_device_group (iommu.c): a PCI function shares a group with whatever
 * it cannot be isolated from — functions it aliases or that alias it, the
 * bridges that substitute their requester ID for it, everything below a
 * port without ACS isolation, and sibling functions of a multifunction
 * device without ACS. Only groups of already probed devices are found.
 */
import type { Device } from "../base/device.ts";
import { pciAcsDecider, pciAcsEnabled, pciAcsPathEnabled, pciDevsAreDmaAliases, REQ_ACS_FLAGS } from "../base/pci/pci-acs.ts";
import { pciForEachDmaAlias } from "../base/pci/pci-search.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { devGroup } from "./dev-iommu.ts";
import { iommuGroupAlloc, iommuGroupRefGet, type IommuGroup } from "./group.ts";
import type { IommuCore } from "./iommu-core.ts";

// @kernel: get_pci_function_alias_group
function getPciFunctionAliasGroup(dev: Device, devfns: Set<number>): IommuGroup | null {
  const p = dev.pci!;
  if (!p.multifunction || pciAcsEnabled(p, REQ_ACS_FLAGS)) return null;
  for (const tmp of p.bus.devices) {
    const t = tmp.pci!;
    if (tmp === dev || t.slot !== p.slot || pciAcsEnabled(t, REQ_ACS_FLAGS)) continue;
    const g = getPciAliasGroup(tmp, devfns);
    if (g !== null) return g;
  }
  return null;
}

// @kernel: get_pci_alias_group (devfns: the loop guard bitmap)
function getPciAliasGroup(dev: Device, devfns: Set<number>): IommuGroup | null {
  const p = dev.pci!;
  if (devfns.has(p.devfn)) return null;
  devfns.add(p.devfn);
  const own = devGroup(dev);
  if (own !== null) return own;
  for (const tmp of p.bus.devices) {
    if (tmp === dev) continue;
    if (!pciDevsAreDmaAliases(p, tmp.pci!)) continue;
    const g = getPciAliasGroup(tmp, devfns) ?? getPciFunctionAliasGroup(tmp, devfns);
    if (g !== null) return g;
  }
  return null;
}

/** Trace notes: which device-specific ACS quirk answered for the function and the bridges above it. */
function noteAcsQuirks(k: IommuCore, dev: Device): void {
  for (let d: Device | null = dev; d !== null && d.pci !== null; d = d.pci.bus.self) {
    const r = pciAcsDecider(d.pci, REQ_ACS_FLAGS);
    if (r.quirk !== null) k.note("pci_dev_specific_acs_enabled", d.name, `${r.quirk}: ${r.enabled ? "isolated" : "not isolated"}`);
  }
}

// @kernel: pci_device_group
export function pciDeviceGroup(k: IommuCore, dev: Device): IommuGroup | KError {
  if (dev.pci === null) return kerr("EINVAL", `${dev.name} is not a PCI device`);
  if (k.tracing) noteAcsQuirks(k, dev);
  // The upstream DMA alias: stop at the first alias that already has a group.
  const seen: { last: Device; group: IommuGroup | null } = { last: dev, group: null };
  pciForEachDmaAlias<boolean>(
    dev,
    (pdev) => {
      seen.last = pdev;
      seen.group = devGroup(pdev);
      return seen.group !== null;
    },
    false,
  );
  if (seen.group !== null) return iommuGroupRefGet(seen.group);

  // Continue upstream to the point where ACS protects against peer-to-peer DMA.
  let pdev: Device = seen.last;
  for (let bus = pdev.pci!.bus; !bus.isRoot; bus = bus.parent!) {
    if (bus.self === null) continue;
    if (pciAcsPathEnabled(bus.self, null, REQ_ACS_FLAGS)) break;
    pdev = bus.self;
    const g = devGroup(pdev);
    if (g !== null) return iommuGroupRefGet(g);
  }

  const devfns = new Set<number>();
  const alias = getPciAliasGroup(pdev, devfns) ?? getPciFunctionAliasGroup(pdev, devfns);
  if (alias !== null) return iommuGroupRefGet(alias);
  return iommuGroupAlloc(k);
}
