/**
 * The order PCI enumeration adds functions in (pci_bus_add_devices): every
 * function of a bus by devfn, then the bus behind each bridge, bridge by
 * bridge. With `boot.order: devices-first` (VT-d and AMD-Vi initialise
 * after PCI enumeration) the IOMMU probes the functions in that order, so
 * group numbers (ida_alloc in iommu_group_alloc) follow it, whatever order
 * the file lists them in.
 */
import type { PciBus } from "../base/pci/pci-dev.ts";
import type { DeviceRec } from "./machine.ts";

// @kernel: pci_bus_add_devices
function addBus(bus: PciBus, onBus: Map<PciBus, DeviceRec[]>, out: DeviceRec[]): void {
  const recs = onBus.get(bus);
  if (recs === undefined) return;
  recs.sort((a, b) => a.dev.pci!.devfn - b.dev.pci!.devfn);
  for (const r of recs) out.push(r);
  for (const r of recs) if (r.dev.pci!.subordinate !== null) addBus(r.dev.pci!.subordinate, onBus, out);
}

/** The records with the PCI functions put in enumeration order, in the places PCI functions held; other devices stay where they were. */
export function pciEnumerationOrder(recs: readonly DeviceRec[]): DeviceRec[] {
  const onBus = new Map<PciBus, DeviceRec[]>();
  const roots: PciBus[] = [];
  const seenRoot = new Set<PciBus>();
  let n = 0;
  for (const r of recs) {
    const p = r.dev.pci;
    if (p === null) continue;
    n++;
    const l = onBus.get(p.bus);
    if (l === undefined) onBus.set(p.bus, [r]);
    else l.push(r);
    let b = p.bus;
    while (b.parent !== null) b = b.parent;
    if (!seenRoot.has(b)) {
      seenRoot.add(b);
      roots.push(b);
    }
  }
  if (n === 0) return [...recs];
  const ordered: DeviceRec[] = [];
  for (const b of roots) addBus(b, onBus, ordered);
  if (ordered.length !== n) return [...recs];
  let i = 0;
  return recs.map((r) => (r.dev.pci === null ? r : ordered[i++]!));
}
