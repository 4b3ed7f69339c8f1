/**
 * The shared test harness: inline scenarios, machines built and booted as
 * the runner does it, events run one at a time, and snapshots to compare.
 */
import { runPath } from "../src/base/path.ts";
import type { KError } from "../src/lib/errno.ts";
import { Machine, type MachineOptions } from "../src/sim/machine.ts";
import { parseScenario } from "../src/sim/scenario/load.ts";
import type { EventSpec, Scenario } from "../src/sim/scenario/schema.ts";
import { bootPath, runEvent, runScenario, type EventOutcome, type RunOptions, type RunResult } from "../src/sim/runner.ts";
import { takeSnapshot, type DeviceSnap, type Snapshot } from "../src/sim/snapshot.ts";

export function scenario(yaml: string): Scenario {
  return parseScenario(yaml, "inline.yaml");
}

export function run(yaml: string, opts: RunOptions = {}): RunResult {
  return runScenario(scenario(yaml), opts);
}

/** The machine a scenario (YAML text, or parsed) describes, built but not booted. */
export function machine(s: string | Scenario, opts: MachineOptions = {}): Machine {
  return new Machine(typeof s === "string" ? scenario(s) : s, opts);
}

/** The machine a scenario describes, booted as the runner boots it (its events are not played). */
export function boot(s: string | Scenario, opts: MachineOptions = {}): Machine {
  const m = machine(s, opts);
  runPath(bootPath(m, []));
  return m;
}

/** Runs one event on `m` to its end, as the runner does: 0, or its errno. */
export function step(m: Machine, e: EventSpec): 0 | KError {
  return runEvent(m, e).ret;
}

/** Runs one event on `m` to its end: 0 or its errno, and the value it returned (unmap, dma_map, dma_unmap, device_dma). */
export function stepValue(m: Machine, e: EventSpec): EventOutcome {
  return runEvent(m, e);
}

/** An event's result as the event log writes it: "ok" or the errno. */
export function outcome(r: 0 | KError): string {
  return r === 0 ? "ok" : r.errno;
}

/** The machine's snapshot, with no boot records and the given invariant violations. */
export function snapshot(m: Machine, violations: string[] = []): Snapshot {
  return takeSnapshot(m, [], violations);
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
