/**
 * A layered layout of the topology, made for a tree: each node on the layer
 * of its depth, leaves side by side in tree order, each parent centred over
 * its children; instances on the top layer. Siblings are ordered so the
 * devices of one IOMMU group sit together, with a wider gap between groups,
 * so that each group's region does not cover another's devices. Linear in
 * the nodes: 2,000 devices take a few milliseconds, where dagre's general
 * layered layout did not finish in 30 s (docs/view.md).
 */
import type { TopoNode } from "./types.ts";

export const NODE_W = 118;
export const NODE_H = 40;
const GAP = 14;
/** Between neighbours of different groups: room for the regions' padding. */
const GROUP_GAP = 34;
/** Between layers: room for a group's two-line label. */
const LAYER = NODE_H + 56;

export function treePositions(nodes: readonly TopoNode[], groupOf: ReadonlyMap<string, number>): Map<string, { x: number; y: number }> {
  const children = new Map<string, TopoNode[]>();
  const roots: TopoNode[] = [];
  for (const n of nodes) {
    if (n.parent === null) roots.push(n);
    else {
      let list = children.get(n.parent);
      if (list === undefined) children.set(n.parent, (list = []));
      list.push(n);
    }
  }
  // Devices of a group together, in the order their groups first appear; others keep their place.
  const groupKey = (n: TopoNode) => groupOf.get(n.id) ?? -1;
  for (const list of children.values()) {
    const first = new Map<number, number>();
    list.forEach((n, i) => {
      const g = groupKey(n);
      if (!first.has(g)) first.set(g, i);
    });
    list.sort((a, b) => (groupKey(a) === -1 ? 0 : first.get(groupKey(a))!) - (groupKey(b) === -1 ? 0 : first.get(groupKey(b))!));
  }
  const pos = new Map<string, { x: number; y: number }>();
  let cursor = 0;
  let lastGroup: number | undefined;
  const place = (n: TopoNode, depth: number): number => {
    const kids = children.get(n.id) ?? [];
    const g = groupOf.get(n.id);
    let x: number;
    if (kids.length === 0) {
      if (pos.size > 0) cursor += g !== lastGroup || g === undefined ? GROUP_GAP : GAP;
      x = cursor + NODE_W / 2;
      cursor += NODE_W;
      lastGroup = g;
    } else {
      // Iteratively deep trees would need no recursion; a machine's PCI tree is a few levels deep.
      const xs = kids.map((k) => place(k, depth + 1));
      x = (xs[0]! + xs[xs.length - 1]!) / 2;
    }
    pos.set(n.id, { x, y: depth * LAYER });
    return x;
  };
  const instances = roots.filter((r) => r.kind === "iommu");
  for (const r of roots) if (r.kind !== "iommu") place(r, 1);
  // The instances along the top layer, spread over the width the tree takes (or side by side if it is narrow).
  const width = Math.max(cursor, instances.length * (NODE_W + GAP));
  const step = instances.length <= 1 ? 0 : Math.min(width / instances.length, 4 * NODE_W);
  instances.forEach((n, i) => pos.set(n.id, { x: NODE_W / 2 + i * Math.max(step, NODE_W + GAP), y: 0 }));
  return pos;
}
