/**
 * Two runs of one scenario compared: the trace divergence, the snapshot
 * differences by key path, and the events whose results differ.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { diffRuns, renderRunDiff, snapshotChanges, traceDivergence } from "../../src/sim/diff.ts";
import { runScenario, type RunResult } from "../../src/sim/runner.ts";
import { withStrategy } from "../../src/sim/scenario/schema.ts";
import { scenario } from "../helpers.ts";

const WRONG_OPS = scenario(readFileSync("scenarios/x86-mock-wrong-ops.yaml", "utf8"));
const view = (r: RunResult) => ({ snapshot: r.snapshot, trace: r.machine.ctx.trace.records });
const under = (ops_resolution: "upstream" | "ask-each") => view(runScenario(withStrategy(WRONG_OPS, { ops_resolution }), { trace: true }));

describe("diff of two runs", () => {
  it("two runs of one design are alike", () => {
    const d = diffRuns(under("upstream"), under("upstream"));
    expect(d).toEqual({ equal: true, trace: null, snapshot: [], events: [] });
    expect(renderRunDiff(d, "upstream", "upstream")).toBe("a (upstream) and b (upstream) run alike: same trace, same snapshot, same event results");
  });

  it("upstream against ask-each on the x86 mock machine: the mock device's ops, from the point the traces part", () => {
    const a = under("upstream");
    const b = under("ask-each");
    const d = diffRuns(a, b, 2);
    expect(d.equal).toBe(false);
    // The traces part at the first device probed without a fwspec: upstream takes the first instance
    // without a fwnode, ask-each asks each such instance in turn.
    expect(d.trace!.a[0]).toMatch(/iommu_fwspec_ops: 0000:00:02\.0: no fwspec: first instance without a fwnode -> intel-iommu/);
    expect(d.trace!.b[0]).toMatch(/probe_device: 0000:00:02\.0: asked dmar0 \(intel-iommu\): accepted/);
    expect(d.trace!.before.length).toBe(2);
    // The mock device ends with the mock's ops under ask-each, in a group of its own.
    expect(d.snapshot).toContainEqual({ path: "devices[iommufd_mock0].iommu", a: null, b: "mock-iommu" });
    expect(d.snapshot).toContainEqual({ path: "devices[iommufd_mock0].ops", a: null, b: "mock" });
    expect(d.snapshot).toContainEqual({ path: "iommus[mock-iommu].devices", a: [], b: ["iommufd_mock0"] });
    expect(d.snapshot.some((c) => c.path === "groups[iommufd_mock0]" && c.a === undefined)).toBe(true);
    // Groups are known by their devices, so the groups both runs share compare equal whatever their ids.
    expect(d.snapshot.filter((c) => c.path.startsWith("groups[0000:"))).toEqual([]);
    // The strategies in force are not a difference.
    expect(d.snapshot.some((c) => c.path.startsWith("strategy"))).toBe(false);
    const text = renderRunDiff(d, "ops_resolution=upstream", "ops_resolution=ask-each");
    expect(text).toContain("a: ops_resolution=upstream");
    expect(text).toContain('  devices[iommufd_mock0].ops: null -> "mock"');
  });

  it("events whose results differ, and a trace that is a prefix of the other", () => {
    // Claiming the mock device's group works only where it has one.
    const claim = { ...WRONG_OPS, events: [...WRONG_OPS.events, { claim_dma_owner: { device: "iommufd_mock0", owner: "iommufd" } }] };
    const run = (ops_resolution: "upstream" | "ask-each") => view(runScenario(withStrategy(claim, { ops_resolution }), { trace: true }));
    const d = diffRuns(run("upstream"), run("ask-each"));
    const last = `event ${claim.events.filter((e) => e.expect === undefined).length}`;
    expect(d.events).toEqual([{ step: last, event: "claim_dma_owner", arg: "iommufd_mock0 iommufd", a: "ENODEV", b: "ok" }]);
    expect(renderRunDiff(d, "upstream", "ask-each")).toContain(`  ${last} claim_dma_owner iommufd_mock0 iommufd: a ENODEV, b ok`);
    // A trace that only adds records at the end parts where the shorter one ends.
    const t = run("upstream").trace;
    const div = traceDivergence(t.slice(0, 5), t, 1)!;
    expect(div.index).toBe(5);
    expect(div.a).toEqual([]);
    expect(div.b.length).toBe(2);
  });

  it("lists of names compare as sets, other values as a whole", () => {
    const base = under("upstream").snapshot;
    const shuffled = structuredClone(base);
    shuffled.iommus[0]!.devices.reverse();
    shuffled.devices[0]!.fwspec = { iommu: "x", ids: [1, 2] };
    expect(snapshotChanges(base, shuffled)).toEqual([{ path: `devices[${base.devices[0]!.name}].fwspec`, a: base.devices[0]!.fwspec, b: { iommu: "x", ids: [1, 2] } }]);
  });
});
