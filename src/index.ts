/**
 * The library API: `import { boot } from "iommu-sim"`.
 */
import { parseScenario, loadScenarioFile } from "./sim/scenario/load.ts";
import type { Scenario } from "./sim/scenario/schema.ts";
import { runScenario, type RunOptions, type RunResult } from "./sim/runner.ts";

/** Boots a scenario (an object, or YAML/JSON text) and plays its events. */
export function boot(scenario: Scenario | string, opts: RunOptions = {}): RunResult {
  const s = typeof scenario === "string" ? parseScenario(scenario, "(inline)") : scenario;
  return runScenario(s, opts);
}

export { loadScenarioFile, parseScenario, runScenario };
export type { RunOptions, RunResult, Scenario };
export { ScenarioError } from "./sim/scenario/load.ts";
export type { Snapshot } from "./sim/snapshot.ts";
export { renderSnapshot } from "./sim/view.ts";
export { renderTrace } from "./sim/trace-view.ts";
export { checkInvariants } from "./sim/invariants.ts";
