/**
 * `run --steps --json`: the deltas rebuild every step's snapshot; the last
 * is the snapshot `run --json` prints; a race scenario has a step per
 * scheduler step of its concurrently block; each step's trace is the run's
 * trace cut at the steps.
 */
import { describe, expect, it } from "vitest";
import { cli } from "../cli-run.ts";
import { runSteps, snapshotDelta } from "../../src/cli/steps.ts";
import { loadScenarioFile } from "../../src/sim/scenario/load.ts";
import { runScenario } from "../../src/sim/runner.ts";
import { takeSnapshot } from "../../src/sim/snapshot.ts";
import { applyDelta, expandSteps } from "../../src/view-page/delta.ts";
import { lateSmmuMachine } from "../../bench/late-smmu-machine.ts";

interface StepsDoc {
  schema_version: number;
  steps_format: number;
  schedule: string;
  topology: { nodes: { id: string }[] };
  steps: { label: string; kind: string; trace: unknown[]; snapshot?: object; delta?: Record<string, unknown> }[];
}

describe("run --steps --json", () => {
  for (const [file, extra] of [
    ["scenarios/default.yaml", []],
    ["scenarios/arm64-late-smmu.yaml", []],
    ["scenarios/races/probe-race-none.yaml", ["--schedule", "a10b5a"]],
  ] as const) {
    it(`${file}: the last step's snapshot is run --json's; the traces put together are run --json --trace's`, async () => {
      const r = await cli("run", file, "--steps", "--json", ...extra);
      const doc = JSON.parse(r.out) as StepsDoc;
      expect(doc.schema_version).toBe(1);
      expect(doc.steps_format).toBe(1);
      expect(doc.steps[0]!.snapshot).toBeDefined();
      expect(doc.steps.slice(1).every((s) => s.snapshot === undefined && s.delta !== undefined)).toBe(true);
      const snaps = expandSteps(doc.steps as never[]);
      const whole = JSON.parse((await cli("run", file, "--json", "--trace", ...extra)).out) as Record<string, unknown>;
      const { schema_version: _v, trace, ...snap } = whole;
      expect(snaps[snaps.length - 1]).toEqual(snap);
      expect(doc.steps.flatMap((s) => s.trace)).toEqual(trace);
      expect(doc.topology.nodes.length).toBeGreaterThan(0);
    });
  }

  it("arm64-late-smmu: a step per boot event; iommu_register smmu0 turns both deferred devices bound", async () => {
    const doc = JSON.parse((await cli("run", "scenarios/arm64-late-smmu.yaml", "--steps", "--json")).out) as StepsDoc;
    const snaps = expandSteps(doc.steps as never[]) as { deferred: string[]; devices: { name: string; probe: string }[] }[];
    expect(doc.steps.map((s) => s.label)).toContain("boot: device_add ufs@1d84000");
    const i = doc.steps.findIndex((s) => s.label === "events[1]");
    expect(i).toBeGreaterThan(0);
    expect(snaps[i - 1]!.deferred).toEqual(["ufs@1d84000", "0000:01:00.0"]);
    expect(snaps[i]!.deferred).toEqual([]);
    expect(snaps[i]!.devices.find((d) => d.name === "ufs@1d84000")!.probe).toBe("bound");
  });

  it("a race: one step per scheduler step of the concurrently block, each a snapshot taken there", () => {
    const s = loadScenarioFile("scenarios/races/probe-race-none.yaml");
    const sr = runSteps(s, {});
    const blockSteps = sr.steps.filter((x) => x.kind === "step");
    expect(blockSteps.length).toBe(sr.result.steps);
    expect(blockSteps[0]!.label).toBe("events[0] step 1");
    // Each scheduler step's snapshot is the machine's at that step: replaying with a recorder gives the same.
    const seen: unknown[] = [];
    runScenario(s, { trace: true, onStep: (label, kind, m, boot) => kind === "step" && seen.push(takeSnapshot(m, boot)) });
    const snaps = expandSteps(sr.steps as never[]);
    const stepSnaps = sr.steps.map((x, i) => [x, snaps[i]] as const).filter(([x]) => x.kind === "step").map(([, sn]) => sn);
    expect(stepSnaps).toEqual(seen);
  });

  it("a delta names only what changed, and applying it gives the new snapshot", () => {
    const s = loadScenarioFile("scenarios/default.yaml");
    const a = runScenario({ ...s, events: [] }).snapshot;
    const b = runScenario(s).snapshot;
    const d = snapshotDelta(a, b);
    expect(applyDelta(a, d)).toEqual(b);
    expect(snapshotDelta(b, b)).toEqual({});
    // A group removed and the order changed are carried too.
    const c = { ...b, groups: [...b.groups.slice(2)].reverse() };
    expect(applyDelta(b, snapshotDelta(b, c))).toEqual(c);
  });

  it("a machine of 2,000 devices is snapshotted per boot phase, and the deltas are far smaller than the snapshots", () => {
    const m = lateSmmuMachine(2000);
    const sr = runSteps(m.scenario, {});
    const labels = sr.steps.map((x) => x.label);
    expect(labels.slice(0, 3)).toEqual([`boot: device_add (${m.scenario.devices.length})`, "boot: driver_register (4)", "boot: late_initcall deferred_probe_initcall"]);
    expect(labels.filter((l) => l.startsWith("events[")).length).toBe(m.scenario.events.length);
    const snaps = expandSteps(sr.steps as never[]);
    expect(snaps[snaps.length - 1]).toEqual(sr.result.snapshot);
    const deltas = sr.steps.slice(1).reduce((n, x) => n + JSON.stringify(x.delta).length, 0);
    const wholes = snaps.slice(1).reduce((n, x) => n + JSON.stringify(x).length, 0);
    expect(deltas * 10).toBeLessThan(wholes);
  });

  it("--steps without --json, or with --format, is refused (exit 2)", async () => {
    const alone = await cli("run", "scenarios/default.yaml", "--steps");
    expect(alone.code).toBe(2);
    expect(alone.err).toContain("--steps prints a JSON document of every step: it goes with --json");
    expect(alone.out).toBe("");
    const r = await cli("run", "scenarios/default.yaml", "--steps", "--json", "--format", "dot");
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
  });
});
