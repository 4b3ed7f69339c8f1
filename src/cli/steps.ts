/**
 * `run FILE --steps --json`: the snapshot after every boot event, every
 * event and every scheduler step of a `concurrently:` block, each with the
 * trace records of its step. The first step carries its whole snapshot,
 * every later one only what changed from the step before (a delta,
 * docs/view.md): whole snapshots of a 2,000-device machine are 1 MB each.
 * src/view-page/delta.ts applies the deltas.
 */
import type { TraceRecord } from "../lib/trace.ts";
import { runScenario, type RunOptions, type RunResult } from "../sim/runner.ts";
import type { Scenario } from "../sim/scenario/schema.ts";
import { takeSnapshot, type Snapshot } from "../sim/snapshot.ts";
import { machineTopology, type Topology } from "./topology.ts";

/** The version of the steps document's step and delta format (docs/view.md). */
export const STEPS_FORMAT = 1;

/** How one key of the snapshot changed: a new value, entries added at the end, or entries of a keyed list replaced, added or removed. */
export type Change =
  | { set: unknown }
  | { append: unknown[] }
  | {
      /** Entries new or changed, whole. */
      upsert: unknown[];
      /** Keys of entries gone. */
      remove: (string | number)[];
      /** Every key in order, when the order is not the old one with new entries at the end. */
      order?: (string | number)[];
    };

/** The keys of the snapshot that changed, and how; keys not named are as they were. */
export type Delta = Record<string, Change>;

export interface Step {
  /** `boot: device_add NAME`, `events[3]`, `events[5] step 2` (a scheduler step of that block), or `end`. */
  label: string;
  kind: "boot" | "event" | "step" | "end";
  /** The trace records the step made. */
  trace: TraceRecord[];
  /** The whole snapshot (the first step only). */
  snapshot?: Snapshot;
  /** What changed since the step before (every step but the first). */
  delta?: Delta;
}

export interface StepsRun {
  result: RunResult;
  topology: Topology;
  steps: Step[];
}

/** Lists whose entries are objects with a key: changed entries only (src/view-page/delta.ts has its copy). */
const KEYED: Record<string, string> = { devices: "name", iommus: "name", groups: "id", domains: "id" };
/** Lists that only grow at the end while a scenario runs. */
const APPENDED = new Set(["boot", "events", "warnings", "bugs", "findings", "violations"]);

type Row = Record<string, unknown>;

/** Whether two JSON values (a snapshot's parts) are equal, deeply. */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!jsonEqual((a as Row)[k], (b as Row)[k])) return false;
  return true;
}

function keyedChange(before: Row[], after: Row[], key: string): Change | null {
  const old = new Map<unknown, Row>();
  for (const r of before) old.set(r[key], r);
  const upsert: unknown[] = [];
  const now = new Set<unknown>();
  for (const r of after) {
    now.add(r[key]);
    const o = old.get(r[key]);
    if (o === undefined || !jsonEqual(o, r)) upsert.push(r);
  }
  const remove: (string | number)[] = [];
  for (const r of before) if (!now.has(r[key])) remove.push(r[key] as string | number);
  // The order applying upsert and remove gives: the old order less the removed, new entries at the end.
  let j = 0;
  let sameOrder = true;
  for (const r of before) {
    if (!now.has(r[key])) continue;
    if (after[j]?.[key] !== r[key]) {
      sameOrder = false;
      break;
    }
    j++;
  }
  if (sameOrder) for (; j < after.length; j++) if (old.has(after[j]![key])) sameOrder = false;
  if (upsert.length === 0 && remove.length === 0 && sameOrder) return null;
  return sameOrder ? { upsert, remove } : { upsert, remove, order: after.map((r) => r[key] as string | number) };
}

/**
 * What changed from `a` to `b`, key by key (an empty object when nothing
 * did). The lists of APPENDED only grow during a run: one whose length grew
 * and whose old last entry is unchanged is sent as the entries added.
 */
export function snapshotDelta(a: Snapshot, b: Snapshot): Delta {
  const delta: Delta = {};
  const ra = a as unknown as Row;
  const rb = b as unknown as Row;
  for (const k of Object.keys(rb)) {
    const x = ra[k];
    const y = rb[k];
    const key = KEYED[k];
    if (key !== undefined) {
      const c = keyedChange(x as Row[], y as Row[], key);
      if (c !== null) delta[k] = c;
      continue;
    }
    if (APPENDED.has(k) && Array.isArray(x) && Array.isArray(y) && y.length >= x.length) {
      const n = x.length;
      if (n === 0 || jsonEqual(x[n - 1], y[n - 1])) {
        if (y.length > n) delta[k] = { append: y.slice(n) };
        continue;
      }
    }
    if (!jsonEqual(x, y)) delta[k] = { set: y };
  }
  return delta;
}

/**
 * Machines with more devices than this are snapshotted after each phase of
 * the boot (instances registered, devices added, drivers registered), not
 * after each boot event: a snapshot of 2,000 devices takes milliseconds,
 * and there are as many boot events as devices (docs/view.md).
 */
export const BOOT_EACH_LIMIT = 256;

/** The boot events' counts after which a phase of the boot ends, in the order bootPath runs them. */
function bootPhaseEnds(s: Scenario): Map<number, string> {
  const reg = s.iommus.filter((i) => i.registered !== false).length;
  const add = s.devices.filter((d) => d.added !== false).length;
  const drv = s.drivers.filter((d) => d.registered !== false).length;
  const phases: [string, number][] = [
    ["iommu_register", reg],
    ["device_add", add],
  ];
  if (s.boot?.order === "devices-first") phases.reverse();
  phases.push(["driver_register", drv]);
  const ends = new Map<number, string>();
  let n = 0;
  for (const [what, count] of phases) {
    n += count;
    if (count > 0) ends.set(n, `boot: ${what} (${count})`);
  }
  return ends;
}

/**
 * Runs the scenario as `run` does, with the trace on, taking the snapshot
 * after every step (after every phase of the boot on a machine of more than
 * BOOT_EACH_LIMIT devices), and at the end if the invariants checked there added anything.
 */
export function runSteps(s: Scenario, opts: RunOptions): StepsRun {
  const phaseEnds = s.devices.length > BOOT_EACH_LIMIT ? bootPhaseEnds(s) : null;
  const steps: Step[] = [];
  let last: Snapshot | null = null;
  let traced = 0;
  const take = (label: string, kind: Step["kind"], snap: Snapshot, records: readonly TraceRecord[]) => {
    const trace = records.slice(traced);
    traced = records.length;
    if (last === null) steps.push({ label, kind, trace, snapshot: snap });
    else {
      const delta = snapshotDelta(last, snap);
      if (kind === "end" && Object.keys(delta).length === 0 && trace.length === 0) return;
      steps.push({ label, kind, trace, delta });
    }
    last = snap;
  };
  const result = runScenario(s, {
    ...opts,
    trace: true,
    onStep: (label, kind, m, boot) => {
      if (phaseEnds !== null && kind === "boot" && !label.startsWith("boot: late_initcall")) {
        const phase = phaseEnds.get(boot.length);
        if (phase === undefined) return;
        label = phase;
      }
      take(label, kind, takeSnapshot(m, boot), m.ctx.trace.records);
    },
  });
  take("end", "end", result.snapshot, result.machine.ctx.trace.records);
  return { result, topology: machineTopology(result.machine), steps };
}
