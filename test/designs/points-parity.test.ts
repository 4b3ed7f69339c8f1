/**
 * A run with points on (each path yielding at every lock and shared-state
 * access, one task stepped to its end) reaches exactly the states of the
 * default run without points: the stepped forms of the paths (the OF
 * parse, iommu_fwspec_init, the frees) do what their one-step forms do, on
 * every scenario and under every probe_serialisation, and record no
 * violation with one task.
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runPath } from "../../src/base/path.ts";
import { resultName } from "../../src/base/traced.ts";
import { Machine } from "../../src/sim/machine.ts";
import { bootPath, eventPath, runScenario } from "../../src/sim/runner.ts";
import { loadScenarioFile } from "../../src/sim/scenario/load.ts";
import { withStrategy, type Scenario } from "../../src/sim/scenario/schema.ts";
import { takeSnapshot } from "../../src/sim/snapshot.ts";

/** Boots and plays `s` with points on, every path run to its end on the main task. */
function runWithPoints(s: Scenario) {
  const m = new Machine(s, {});
  m.dc.sched.points = true;
  runPath(bootPath(m, []));
  const results: string[] = [];
  for (const e of s.events) {
    if (e.expect !== undefined) continue;
    const r = resultName(runPath(eventPath(m, e).path));
    results.push(r === "0" ? "ok" : r);
  }
  return { m, results };
}

describe("points on, one task: the same states as without points", () => {
  const files = readdirSync("scenarios").filter((f) => f.endsWith(".yaml"));
  it.each(files)("%s", (file) => {
    for (const ser of ["none", "probe-lock", "global-lock", "global-lock+ready"] as const) {
      const s = withStrategy(loadScenarioFile(`scenarios/${file}`), { probe_serialisation: ser });
      const plain = runScenario(s, { trace: false, invariants: false });
      const { m, results } = runWithPoints(s);
      const { boot: _b, violations, events: _e, ...stepped } = takeSnapshot(m, []);
      const { boot: _b2, violations: _v, events, ...want } = plain.snapshot;
      expect(stepped, `${file} ${ser}`).toEqual(want);
      expect(results, `${file} ${ser}`).toEqual(events.map((r) => r.result));
      expect(violations, `${file} ${ser}`).toEqual([]);
    }
  });
});
