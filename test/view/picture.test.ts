/**
 * `run --format dot|mermaid` and `groups --format dot`: the clusters the
 * graph text draws hold exactly the devices of the snapshot's groups, the
 * tree edges are the scenario's parents, and a bad format is refused.
 */
import { describe, expect, it } from "vitest";
import { cli } from "../cli-run.ts";

interface Snap {
  groups: { id: number; devices: string[]; type: string; owner: string }[];
  devices: { name: string; iommu: string | null }[];
}

async function snapshot(file: string): Promise<Snap> {
  const r = await cli("run", file, "--json");
  return JSON.parse(r.out) as Snap;
}

/** Cluster id -> its label and the node ids inside it, read from DOT text. */
function dotClusters(text: string): Map<number, { label: string; nodes: string[] }> {
  const out = new Map<number, { label: string; nodes: string[] }>();
  for (const m of text.matchAll(/subgraph "cluster_group_(\d+)" \{\n([\s\S]*?)\n {2}\}/g)) {
    const body = m[2]!;
    const label = /label="([^"]*)";/.exec(body)![1]!;
    const nodes = [...body.matchAll(/^ {4}"([^"]+)" \[/gm)].map((x) => x[1]!);
    out.set(Number(m[1]), { label, nodes });
  }
  return out;
}

/** Subgraph id -> the device names inside it, read from Mermaid text (a node's first label line is its name). */
function mermaidClusters(text: string): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const m of text.matchAll(/^ {2}subgraph g(\d+)\[.*\]\n([\s\S]*?)\n {2}end$/gm)) {
    out.set(Number(m[1]), [...m[2]!.matchAll(/^ {4}n\d+\W+"([^<"]+)/gm)].map((x) => x[1]!));
  }
  return out;
}

const SCENARIOS = ["scenarios/default.yaml", "scenarios/pci-acs.yaml", "scenarios/mixed-drivers.yaml"];

describe("run --format dot", () => {
  for (const file of SCENARIOS) {
    it(`${file}: one cluster per group, holding the group's devices, labelled with id, type and owner`, async () => {
      const snap = await snapshot(file);
      const r = await cli("run", file, "--format", "dot");
      expect(r.code).toBe(0);
      expect(r.out.startsWith("digraph ")).toBe(true);
      const clusters = dotClusters(r.out);
      expect([...clusters.keys()]).toEqual(snap.groups.map((g) => g.id));
      for (const g of snap.groups) {
        expect(clusters.get(g.id)!.nodes.sort()).toEqual([...g.devices].sort());
        expect(clusters.get(g.id)!.label).toBe(`group ${g.id}: ${g.type}, owner ${g.owner}`);
      }
      // Every device the snapshot has is drawn once, and each served one has a dashed edge from its instance.
      for (const d of snap.devices) {
        expect(r.out.match(new RegExp(`^ +"${d.name.replace(/[.]/g, "\\.")}" \\[label=`, "gm"))).toHaveLength(1);
        if (d.iommu !== null) expect(r.out).toContain(`"iommu:${d.iommu}" -> "${d.name}" [style=dashed`);
      }
    });
  }

  it("draws the scenario's tree and marks the ports and functions where ACS does not isolate", async () => {
    const r = await cli("run", "scenarios/default.yaml", "--format", "dot");
    expect(r.out).toContain(`"0000:01:00.0" -> "0000:02:01.0";`);
    expect(r.out).toContain(`"bus:pci" -> "0000:00:1c.0";`);
    // The multifunction ixgbe functions have no ACS capability: that is why they share group 7.
    expect(r.out).toMatch(/"0000:04:00\.0" \[label="0000:04:00\.0\\ndriver: ixgbe\\nACS missing: no ACS capability", shape=box, color=red\]/);
    expect(r.out).not.toMatch(/"0000:02:01\.0" \[[^\]]*ACS missing/);
  });
});

describe("run --format mermaid", () => {
  for (const file of SCENARIOS) {
    it(`${file}: one subgraph per group with the group's devices`, async () => {
      const snap = await snapshot(file);
      const r = await cli("run", file, "--format", "mermaid");
      expect(r.code).toBe(0);
      expect(r.out.split("\n")[0]).toBe("flowchart TD");
      const sub = mermaidClusters(r.out);
      expect([...sub.keys()]).toEqual(snap.groups.map((g) => g.id));
      for (const g of snap.groups) expect(sub.get(g.id)!.sort()).toEqual([...g.devices].sort());
    });
  }
});

describe("groups --format dot", () => {
  it("draws the groups `groups --json` lists", async () => {
    const j = JSON.parse((await cli("groups", "scenarios/pci-acs.yaml", "--json")).out) as { groups: { id: number; devices: { name: string }[] }[] };
    const r = await cli("groups", "scenarios/pci-acs.yaml", "--format", "dot");
    expect(r.code).toBe(0);
    const clusters = dotClusters(r.out);
    expect([...clusters.keys()].sort((a, b) => a - b)).toEqual(j.groups.map((g) => g.id).sort((a, b) => a - b));
    for (const g of j.groups) expect(clusters.get(g.id)!.nodes.sort()).toEqual(g.devices.map((d) => d.name).sort());
  });
});

describe("--format refusals", () => {
  it("an unknown format exits 2 and lists the valid ones", async () => {
    const r = await cli("run", "scenarios/default.yaml", "--format", "svg");
    expect(r.code).toBe(2);
    expect(r.err).toContain("Allowed choices are dot, mermaid");
    const g = await cli("groups", "scenarios/default.yaml", "--format", "mermaid");
    expect(g.code).toBe(2);
    expect(g.err).toContain("Allowed choices are dot");
  });

  it("--format with --json is refused (exit 2)", async () => {
    const r = await cli("run", "scenarios/default.yaml", "--format", "dot", "--json");
    expect(r.code).toBe(2);
    expect(r.err).toContain("--format dot prints a graph");
    expect(r.out).toBe("");
  });

  it("groups --format dot with --json or --what-if is refused (exit 2)", async () => {
    for (const extra of [["--json"], ["--what-if", "0000:00:1c.0:acs=on"]]) {
      const r = await cli("groups", "scenarios/default.yaml", "--format", "dot", ...extra);
      expect(r.code).toBe(2);
      expect(r.err).toBe("--format dot prints the groups as a graph: it goes without --json and --what-if");
      expect(r.out).toBe("");
    }
  });
});
