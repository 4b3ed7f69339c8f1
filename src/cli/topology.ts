/**
 * The machine as a tree, for pictures (`run --format dot|mermaid`, `groups
 * --format dot`, `view`): IOMMU instances, one node per bus, and every device
 * under its parent (a PCI bridge, a port, a host-bridge platform device) or
 * under its bus. What changes as the machine runs (serving instance, group,
 * driver) is in the snapshot; this is what does not, plus where ACS fails
 * to isolate (pci_acs_enabled's verdict, which the grouping follows).
 */
import { PCI_BRIDGE_TYPES } from "../base/pci/pci-dev.ts";
import { acsVerdict } from "../sim/explain/reasons.ts";
import type { Machine } from "../sim/machine.ts";

export type TopoKind = "iommu" | "bus" | "host" | "bridge" | "endpoint" | "platform";

export interface TopoNode {
  /** A device's name; `bus:NAME` for a bus, `iommu:NAME` for an instance. */
  id: string;
  label: string;
  kind: TopoKind;
  /** The node above it in the tree (null for instances and buses). */
  parent: string | null;
  /** PCI functions: the type (root-port, switch-down, endpoint, ...). */
  pci_type: string | null;
  /** Why ACS does not isolate this port or multifunction device (pci_acs_enabled says no), else null. */
  acs_missing: string | null;
}

export interface Topology {
  nodes: TopoNode[];
}

export function machineTopology(m: Machine): Topology {
  const nodes: TopoNode[] = [];
  for (const rec of m.instances.values()) {
    nodes.push({ id: `iommu:${rec.spec.name}`, label: rec.spec.name, kind: "iommu", parent: null, pci_type: null, acs_missing: null });
  }
  const buses = new Set<string>();
  const devs: TopoNode[] = [];
  for (const rec of m.devices.values()) {
    const spec = rec.spec;
    const p = rec.dev.pci;
    let kind: TopoKind = spec.bus === "platform" ? "platform" : "endpoint";
    if (spec["pci-host"] !== undefined) kind = "host";
    else if (p !== null && PCI_BRIDGE_TYPES.has(p.type)) kind = "bridge";
    let acs: string | null = null;
    // A function pci_acs_enabled says does not isolate (a port or a multifunction device without the controls, a
    // PCIe-to-PCI bridge, conventional PCI); a single-function endpoint or an upstream port it passes.
    // @kernel: pci_acs_enabled
    if (p !== null) {
      const v = acsVerdict(p);
      if (!v.enabled) acs = v.why;
    }
    const parent = spec.parent !== undefined && m.devices.has(spec.parent) ? spec.parent : `bus:${spec.bus}`;
    if (parent.startsWith("bus:")) buses.add(spec.bus);
    devs.push({ id: spec.name, label: spec.name, kind, parent, pci_type: p?.type ?? null, acs_missing: acs });
  }
  for (const b of buses) nodes.push({ id: `bus:${b}`, label: `${b} bus`, kind: "bus", parent: null, pci_type: null, acs_missing: null });
  nodes.push(...devs);
  return { nodes };
}
