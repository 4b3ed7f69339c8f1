/**
 * `--format dot|mermaid`: the machine's final state as a graph text,
 * Graphviz's or Mermaid's. The topology tree (instances, buses, bridges,
 * ports, endpoints, platform devices) with each IOMMU group as a cluster
 * labelled with its id, domain type and owner; dashed edges from an
 * instance to the devices it serves; drivers, deferred probes and missing
 * ACS written on the devices.
 */
import type { Snapshot } from "../sim/snapshot.ts";
import type { TopoNode, Topology } from "./topology.ts";

export const PICTURE_FORMATS = ["dot", "mermaid"] as const;
export type PictureFormat = (typeof PICTURE_FORMATS)[number];

/** Fill colours of the groups, in turn (light enough for black text). */
const PALETTE = ["#cfe8fc", "#d7f5d0", "#fde2c8", "#eadcf8", "#fdf3b5", "#d0f0ef", "#f9d3e0", "#e3e3e3"];

/** The lines a device's box carries: its name, its driver or probe state, why ACS does not isolate it. */
function deviceLines(n: TopoNode, snap: Snapshot, byName: Map<string, Snapshot["devices"][number]>): string[] {
  const lines = [n.label];
  if (n.kind === "iommu") {
    const i = snap.iommus.find((x) => `iommu:${x.name}` === n.id);
    if (i !== undefined) lines.push(`${i.driver}${i.registered ? "" : " (not registered)"}`);
    return lines;
  }
  if (n.kind === "bus") return lines;
  if (n.pci_type !== null && n.pci_type !== "endpoint") lines.push(n.pci_type);
  const d = byName.get(n.id);
  if (d !== undefined) {
    if (!d.registered) lines.push("not added");
    else if (d.probe === "bound") lines.push(`driver: ${d.driver}`);
    else if (d.probe === "deferred") lines.push("probe deferred");
    else if (d.probe === "failed") lines.push(`probe failed: ${d.probe_error}`);
  }
  if (n.acs_missing !== null) lines.push(`ACS missing: ${n.acs_missing}`);
  return lines;
}

function groupLabel(g: Snapshot["groups"][number]): string {
  return `group ${g.id}: ${g.type}, owner ${g.owner}`;
}

interface Layout {
  byName: Map<string, Snapshot["devices"][number]>;
  /** The group of each device in one, and the devices of each group in order. */
  members: Map<number, TopoNode[]>;
  loose: TopoNode[];
}

function layout(topo: Topology, snap: Snapshot): Layout {
  const byName = new Map(snap.devices.map((d) => [d.name, d] as const));
  const groupOf = new Map<string, number>();
  for (const g of snap.groups) for (const d of g.devices) groupOf.set(d, g.id);
  const members = new Map<number, TopoNode[]>(snap.groups.map((g) => [g.id, []]));
  const loose: TopoNode[] = [];
  for (const n of topo.nodes) {
    const g = groupOf.get(n.id);
    if (g === undefined) loose.push(n);
    else members.get(g)!.push(n);
  }
  return { byName, members, loose };
}

/** A DOT double-quoted string; lines joined by DOT's \\n. */
function dq(...lines: string[]): string {
  return `"${lines.map((s) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')).join("\\n")}"`;
}

const DOT_SHAPE: Record<TopoNode["kind"], string> = {
  iommu: "hexagon",
  bus: "ellipse",
  host: "box3d",
  bridge: "box",
  endpoint: "box",
  platform: "box",
};

export function renderDot(topo: Topology, snap: Snapshot): string {
  const l = layout(topo, snap);
  const node = (n: TopoNode, ind: string) => {
    const attrs = [`label=${dq(...deviceLines(n, snap, l.byName))}`, `shape=${DOT_SHAPE[n.kind]}`];
    if (n.kind === "bridge") attrs.push("style=rounded");
    if (n.acs_missing !== null) attrs.push("color=red");
    if (l.byName.get(n.id)?.probe === "deferred") attrs.push("color=orange", "penwidth=2");
    return `${ind}${dq(n.id)} [${attrs.join(", ")}];`;
  };
  const out = [`digraph ${dq(`iommu-sim: ${snap.name}`)} {`, "  rankdir=TB;", '  node [fontname="Helvetica", fontsize=10];', "  compound=true;"];
  for (const n of l.loose) out.push(node(n, "  "));
  snap.groups.forEach((g, i) => {
    out.push(`  subgraph ${dq(`cluster_group_${g.id}`)} {`);
    out.push(`    label=${dq(groupLabel(g))};`, "    style=filled;", `    fillcolor=${dq(PALETTE[i % PALETTE.length]!)};`);
    for (const n of l.members.get(g.id)!) out.push(node(n, "    "));
    out.push("  }");
  });
  for (const n of topo.nodes) if (n.parent !== null) out.push(`  ${dq(n.parent)} -> ${dq(n.id)};`);
  for (const d of snap.devices) {
    if (d.iommu !== null) out.push(`  ${dq(`iommu:${d.iommu}`)} -> ${dq(d.name)} [style=dashed, color=gray40, constraint=false, arrowhead=none];`);
  }
  out.push("}");
  return out.join("\n");
}

/** Mermaid label text: quotes as entities, lines as <br/>. */
function mq(lines: string[]): string {
  return `"${lines.map((s) => s.replace(/"/g, "#quot;").replace(/</g, "#lt;").replace(/>/g, "#gt;")).join("<br/>")}"`;
}

const MERMAID_SHAPE: Record<TopoNode["kind"], [string, string]> = {
  iommu: ["{{", "}}"],
  bus: ["([", "])"],
  host: ["[[", "]]"],
  bridge: ["(", ")"],
  endpoint: ["[", "]"],
  platform: ["[", "]"],
};

export function renderMermaid(topo: Topology, snap: Snapshot): string {
  const l = layout(topo, snap);
  const ids = new Map(topo.nodes.map((n, i) => [n.id, `n${i}`] as const));
  const node = (n: TopoNode, ind: string) => {
    const [a, b] = MERMAID_SHAPE[n.kind];
    return `${ind}${ids.get(n.id)!}${a}${mq(deviceLines(n, snap, l.byName))}${b}`;
  };
  const out = ["flowchart TD"];
  for (const n of l.loose) out.push(node(n, "  "));
  snap.groups.forEach((g) => {
    out.push(`  subgraph g${g.id}[${mq([groupLabel(g)])}]`);
    for (const n of l.members.get(g.id)!) out.push(node(n, "    "));
    out.push("  end");
  });
  for (const n of topo.nodes) if (n.parent !== null) out.push(`  ${ids.get(n.parent)!} --> ${ids.get(n.id)!}`);
  for (const d of snap.devices) {
    const from = ids.get(`iommu:${d.iommu}`);
    if (d.iommu !== null && from !== undefined) out.push(`  ${from} -.- ${ids.get(d.name)!}`);
  }
  snap.groups.forEach((g, i) => out.push(`  style g${g.id} fill:${PALETTE[i % PALETTE.length]!}`));
  for (const n of topo.nodes) if (n.acs_missing !== null) out.push(`  style ${ids.get(n.id)!} stroke:#d00,stroke-width:2px`);
  return out.join("\n");
}

export function renderPicture(format: PictureFormat, topo: Topology, snap: Snapshot): string {
  return format === "dot" ? renderDot(topo, snap) : renderMermaid(topo, snap);
}
