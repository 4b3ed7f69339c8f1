/**
 * The design scenarios compared as their descriptions say: each
 * scenarios/designs/kernel-*.yaml against the next preset of the table
 * (the in-process `iommu-sim diff`), and the variants of the x86 mock
 * device (mock-ops-*.yaml) and of two IOMMU drivers on one machine
 * (two-drivers-*.yaml) by their key outcome. That each file passes its own
 * expectations is test/sim/scenarios.test.ts's.
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PRESET_NAMES, type PresetName } from "../../src/designs/presets.ts";
import { diffRuns, type RunDiff } from "../../src/sim/diff.ts";
import { runScenario, type RunResult } from "../../src/sim/runner.ts";
import { loadScenarioFile } from "../../src/sim/scenario/load.ts";
import { withDesign, type Scenario, type StrategyChoice } from "../../src/sim/scenario/schema.ts";
import { dev } from "../helpers.ts";

const DIR = "scenarios/designs";
const load = (file: string): Scenario => loadScenarioFile(`${DIR}/${file}`);

/** The scenario under a design (a preset replaces its own; strategies override on top of its own), with its trace. */
function under(s: Scenario, d: { kernel?: PresetName; strategy?: StrategyChoice }): RunResult {
  return runScenario(withDesign(s, d), { trace: true });
}

function diff(a: RunResult, b: RunResult): RunDiff {
  return diffRuns({ snapshot: a.snapshot, trace: a.machine.ctx.trace.records }, { snapshot: b.snapshot, trace: b.machine.ctx.trace.records });
}

/** The result of the event `kind arg` in a run's event log. */
function eventResult(r: RunResult, kind: string, arg: string): string {
  const e = r.snapshot.events.find((x) => x.event === kind && x.arg === arg);
  if (e === undefined) throw new Error(`no event ${kind} ${arg} in the run`);
  return e.result;
}

/** The presets whose scenario the next preset runs alike without concurrency: they differ only in probe_serialisation (v6.1, v6.6, v6.15) or in no axis (v6.16). */
const ALIKE_WITH_NEXT = new Set<PresetName>(["v6.1", "v6.6", "v6.15", "v6.16"]);

describe("scenarios/designs/kernel-*.yaml against the next preset", () => {
  const files = readdirSync(DIR).filter((f) => /^kernel-.*\.yaml$/.test(f));

  it("there is one for every preset, each booting its own", () => {
    expect(files.map((f) => f.slice("kernel-".length, -".yaml".length)).sort()).toEqual([...PRESET_NAMES].sort());
    for (const f of files) expect(load(f).boot?.kernel, f).toBe(f.slice("kernel-".length, -".yaml".length));
  });

  for (const [i, preset] of PRESET_NAMES.entries()) {
    const next = PRESET_NAMES[i + 1];
    const file = `kernel-${preset}.yaml`;
    if (next === undefined) {
      it(`${file}: the last preset, its description says so`, () => {
        expect(load(file).description).toMatch(/no later preset/);
      });
      continue;
    }
    const alike = ALIKE_WITH_NEXT.has(preset);
    it(`${file}: ${alike ? "alike" : "differs"} under ${next}, as its description says`, () => {
      const s = load(file);
      const d = diff(under(s, { kernel: preset }), under(s, { kernel: next }));
      // The description names the comparison and says whether it prints a difference.
      expect(s.description).toContain(`--a ${preset} --b ${next}`);
      expect(/prints no\s+difference/.test(s.description ?? ""), "the description says 'prints no difference'").toBe(alike);
      if (alike) {
        expect(d).toEqual({ equal: true, trace: null, snapshot: [], events: [] });
      } else {
        expect(d.equal).toBe(false);
        // Not the trace alone: where the machine ends, or what an event returns.
        expect(d.snapshot.length + d.events.length).toBeGreaterThan(0);
      }
    });
  }
});

describe("scenarios/designs/mock-ops-*.yaml: the x86 iommufd mock device's ops", () => {
  const own = (f: string) => under(load(f), {});
  const WRONG = "mock-ops-upstream-v6.8-wiring.yaml";
  const RIGHT = ["mock-ops-ask-each.yaml", "mock-ops-fwspec-carries-ops.yaml", "mock-ops-current-wiring.yaml"];

  it("the v6.8 wiring under upstream: VT-d's ops refuse it, no IOMMU, and iommufd cannot bind it", () => {
    const r = own(WRONG);
    expect(r.failures).toEqual([]);
    expect(dev(r.snapshot, "iommufd_mock0")).toMatchObject({ iommu: null, ops: null, group: null });
    expect(eventResult(r, "claim_dma_owner", "iommufd_mock0 iommufd")).toBe("ENODEV");
  });

  it.each(RIGHT)("%s: the mock's ops, and iommufd binds it", (f) => {
    const r = own(f);
    expect(r.failures).toEqual([]);
    expect(dev(r.snapshot, "iommufd_mock0")).toMatchObject({ iommu: "mock-iommu", ops: "mock" });
    expect(eventResult(r, "claim_dma_owner", "iommufd_mock0 iommufd")).toBe("ok");
  });

  it("each fix undone on its own axis gives the mock device no IOMMU again (the diffs the descriptions name)", () => {
    const cases: [string, StrategyChoice, StrategyChoice][] = [
      [WRONG, { ops_resolution: "upstream" }, { ops_resolution: "ask-each" }],
      ["mock-ops-ask-each.yaml", { ops_resolution: "ask-each" }, { ops_resolution: "upstream" }],
      ["mock-ops-fwspec-carries-ops.yaml", { fwspec_ops: "fwspec-carries-ops" }, { fwspec_ops: "from-fwnode" }],
    ];
    for (const [f, a, b] of cases) {
      const s = load(f);
      const d = diff(under(s, { strategy: a }), under(s, { strategy: b }));
      const ops = d.snapshot.find((c) => c.path === "devices[iommufd_mock0].ops");
      expect(ops, f).toBeDefined();
      expect([ops!.a, ops!.b].sort(), f).toEqual(["mock", null].sort());
      expect(d.events.map((e) => `${e.event} ${e.a}/${e.b}`).sort(), f).toEqual([`claim_dma_owner ${ops!.a === "mock" ? "ok/ENODEV" : "ENODEV/ok"}`]);
    }
    // The v1 fix holds only while fwspecs carry ops: v6.8 against v6.12.
    const v1 = load("mock-ops-fwspec-carries-ops.yaml");
    expect(dev(under(v1, { kernel: "v6.12" }).snapshot, "iommufd_mock0")).toMatchObject({ iommu: null, ops: null });
  });

  it("the current wiring ends the same under v6.8 as under current: only the traces part", () => {
    const s = load("mock-ops-current-wiring.yaml");
    const d = diff(under(s, { kernel: "v6.8" }), under(s, { kernel: "current" }));
    expect(d.trace).not.toBeNull();
    expect(d.snapshot).toEqual([]);
    expect(d.events).toEqual([]);
  });
});

describe("scenarios/designs/two-drivers-*.yaml: arm-smmu registered, then arm-smmu-v3", () => {
  const own = (f: string) => under(load(f), {});
  /** Where smmu3's registration failed in the trace: the call that returned EBUSY. */
  const ebusyAt = (r: RunResult) =>
    r.machine.ctx.trace.records.filter((t) => t.kind === "call" && t.result === "EBUSY" && (t.fn === "bus_set_iommu" || t.fn === "iommu_device_register")).map((t) => `${t.fn}(${t.subject})`);

  it("bus-set-iommu: arm-smmu-v3's bus_set_iommu(pci) is EBUSY, its probe fails, arm-smmu keeps every bus", () => {
    const r = own("two-drivers-bus-set-iommu.yaml");
    expect(r.failures).toEqual([]);
    expect(eventResult(r, "iommu_register", "smmu3")).toBe("EBUSY");
    expect(ebusyAt(r)).toEqual(["bus_set_iommu(pci)"]);
    expect(r.snapshot.iommus.find((i) => i.name === "smmu3")).toMatchObject({ registered: false, devices: [] });
    expect(r.snapshot.bus_ops).toEqual({ amba: "arm-smmu", pci: "arm-smmu", platform: "arm-smmu" });
    expect(dev(r.snapshot, "ufs")).toMatchObject({ iommu: null, probe: "deferred" });
  });

  it("bus-ops: iommu_device_register itself is EBUSY, the same end", () => {
    const r = own("two-drivers-bus-ops.yaml");
    expect(r.failures).toEqual([]);
    expect(eventResult(r, "iommu_register", "smmu3")).toBe("EBUSY");
    expect(ebusyAt(r)).toEqual(["iommu_device_register(smmu3)"]);
    expect(r.snapshot.iommus.find((i) => i.name === "smmu3")).toMatchObject({ registered: false, devices: [] });
    expect(r.snapshot.bus_ops).toEqual({ amba: "arm-smmu", pci: "arm-smmu", platform: "arm-smmu" });
    expect(dev(r.snapshot, "ufs")).toMatchObject({ iommu: null, probe: "deferred" });
  });

  it("upstream: both registered, each device on its own SMMU, no bus ops", () => {
    const r = own("two-drivers-upstream.yaml");
    expect(r.failures).toEqual([]);
    expect(eventResult(r, "iommu_register", "smmu3")).toBe("ok");
    expect(ebusyAt(r)).toEqual([]);
    expect(r.snapshot.bus_ops).toEqual({});
    expect(dev(r.snapshot, "ufs")).toMatchObject({ iommu: "smmu3", ops: "arm-smmu-v3", probe: "bound" });
    expect(dev(r.snapshot, "gpu")).toMatchObject({ iommu: "smmu2", ops: "arm-smmu", probe: "bound" });
  });

  it("the release diffs the descriptions name: v5.15 against v6.1 the same results, v6.7 against v6.8 the registration's", () => {
    const old = load("two-drivers-bus-set-iommu.yaml");
    const d1 = diff(under(old, { kernel: "v5.15" }), under(old, { kernel: "v6.1" }));
    expect(d1.events).toEqual([]);
    // Only the DMA ownership the driver core counts since v5.19.
    expect(d1.snapshot.map((c) => c.path).sort()).toEqual(["groups[gpu].owner", "groups[gpu].owner_cnt"]);
    const mid = load("two-drivers-bus-ops.yaml");
    const d2 = diff(under(mid, { kernel: "v6.7" }), under(mid, { kernel: "v6.8" }));
    expect(d2.events.map((e) => `${e.event} ${e.arg}: ${e.a} -> ${e.b}`)).toEqual(["iommu_register smmu3: EBUSY -> ok"]);
    expect(d2.snapshot).toContainEqual({ path: "devices[ufs].iommu", a: null, b: "smmu3" });
  });
});
