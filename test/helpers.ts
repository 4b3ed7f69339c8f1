/** Shared helpers for tests: inline scenarios and quick machine runs. */
import { parseScenario } from "../src/sim/scenario/load.ts";
import type { Scenario } from "../src/sim/scenario/schema.ts";
import { runScenario, type RunOptions, type RunResult } from "../src/sim/runner.ts";
import type { DeviceSnap, Snapshot } from "../src/sim/snapshot.ts";

export function scenario(yaml: string): Scenario {
  return parseScenario(yaml, "inline.yaml");
}

export function run(yaml: string, opts: RunOptions = {}): RunResult {
  return runScenario(scenario(yaml), opts);
}

export function dev(snap: Snapshot, name: string): DeviceSnap {
  const d = snap.devices.find((x) => x.name === name);
  if (d === undefined) throw new Error(`no device ${name} in the snapshot`);
  return d;
}

/** The snapshot without the event log, for before/after comparisons. */
export function state(snap: Snapshot): Omit<Snapshot, "events"> {
  const { events: _events, ...rest } = snap;
  return rest;
}
