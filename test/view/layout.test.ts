/**
 * The page's layered layout (src/view-page/layout.ts): every node below
 * its parent, no two boxes overlapping on a layer, and each group's region
 * (its devices' bounding box) holding no device of another group, so the
 * regions the page draws do not mislead.
 */
import { describe, expect, it } from "vitest";
import { lateSmmuMachine } from "../../bench/late-smmu-machine.ts";
import { runSteps } from "../../src/cli/steps.ts";
import { loadScenarioFile } from "../../src/sim/scenario/load.ts";
import type { Scenario } from "../../src/sim/scenario/schema.ts";
import { NODE_H, NODE_W, treePositions } from "../../src/view-page/layout.ts";
import type { TopoNode } from "../../src/view-page/types.ts";

function check(s: Scenario): number {
  const sr = runSteps(s, {});
  const nodes = sr.topology.nodes as TopoNode[];
  const snap = sr.result.snapshot;
  const groupOf = new Map<string, number>();
  for (const g of snap.groups) for (const d of g.devices) groupOf.set(d, g.id);
  const pos = treePositions(nodes, groupOf);
  expect(pos.size).toBe(nodes.length);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  // A child below its parent.
  expect(nodes.filter((n) => n.parent !== null && !(pos.get(n.id)!.y > pos.get(n.parent)!.y)).map((n) => n.id)).toEqual([]);
  // No overlap on a layer.
  const layers = new Map<number, number[]>();
  for (const n of nodes) {
    const p = pos.get(n.id)!;
    let xs = layers.get(p.y);
    if (xs === undefined) layers.set(p.y, (xs = []));
    xs.push(p.x);
  }
  let overlaps = 0;
  for (const xs of layers.values()) {
    xs.sort((a, b) => a - b);
    for (let i = 1; i < xs.length; i++) if (xs[i]! - xs[i - 1]! < NODE_W) overlaps++;
  }
  expect(overlaps).toBe(0);
  // A group's region holds no device of another group (nor one in no group).
  let regions = 0;
  const foreign: string[] = [];
  for (const g of snap.groups) {
    const ps = g.devices.map((d) => pos.get(d)!);
    const x0 = Math.min(...ps.map((p) => p.x)) - NODE_W / 2;
    const x1 = Math.max(...ps.map((p) => p.x)) + NODE_W / 2;
    const y0 = Math.min(...ps.map((p) => p.y)) - NODE_H / 2;
    const y1 = Math.max(...ps.map((p) => p.y)) + NODE_H / 2;
    const members = new Set(g.devices);
    for (const n of nodes) {
      if (members.has(n.id) || byId.get(n.id)!.kind === "iommu") continue;
      const p = pos.get(n.id)!;
      if (p.x > x0 && p.x < x1 && p.y > y0 && p.y < y1) foreign.push(`${n.id} inside group ${g.id}'s region`);
    }
    regions++;
  }
  expect(foreign).toEqual([]);
  return regions;
}

describe("the page's layout", () => {
  for (const f of ["scenarios/default.yaml", "scenarios/pci-acs.yaml", "scenarios/arm64-late-smmu.yaml", "scenarios/mixed-drivers.yaml"]) {
    it(`${f}: layered, no overlap, no foreign device inside a group's region`, () => {
      expect(check(loadScenarioFile(f))).toBeGreaterThanOrEqual(0);
    });
  }
  it("2,000 devices under 64 late SMMUs, likewise", () => {
    expect(check(lateSmmuMachine(2000).scenario)).toBeGreaterThan(1000);
  });
});
