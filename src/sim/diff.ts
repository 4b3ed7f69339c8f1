/**
 * Two runs of one scenario compared (`iommu-sim diff`): where their traces
 * part, every difference between their snapshots as a key path, and the
 * events whose results differ. Pure: it reads two runs' snapshots and
 * trace records and changes nothing.
 */
import type { TraceRecord } from "../lib/trace.ts";
import type { EventRecord } from "./machine.ts";
import type { Snapshot } from "./snapshot.ts";
import { renderTraceLine } from "./trace-view.ts";

/** What a comparison needs of one run. */
export interface RunView {
  readonly snapshot: Snapshot;
  readonly trace: readonly TraceRecord[];
}

/** One value that differs: its key path in the snapshot and the two values (undefined: absent). */
export interface SnapshotChange {
  path: string;
  a: unknown;
  b: unknown;
}

/** An event (or boot step) whose result or returned value differs. */
export interface EventChange {
  /** "boot 3" or "event 5": its place among the boot steps or the events that ran (numbered from 1, as the text view numbers them; expectations are not counted). */
  step: string;
  event: string;
  arg: string;
  a: string;
  b: string;
}

/** Where the traces part: the first record that differs, with the lines around it on each side. */
export interface TraceDivergence {
  /** Index of the first differing record (equal to the shorter trace's length when one trace is a prefix of the other). */
  index: number;
  /** Lines before the divergence, common to both runs. */
  before: string[];
  /** Each run's lines from the divergence on (at most `context` + 1). */
  a: string[];
  b: string[];
}

export interface RunDiff {
  equal: boolean;
  trace: TraceDivergence | null;
  snapshot: SnapshotChange[];
  events: EventChange[];
}

/** Snapshot keys not compared: the design in force differs by construction, and events are compared as events. */
const SKIP_KEYS = new Set(["strategy", "kernel", "events", "boot"]);

function sameRecord(x: TraceRecord, y: TraceRecord): boolean {
  return x.kind === y.kind && x.fn === y.fn && x.subject === y.subject && x.detail === y.detail && x.result === y.result && x.depth === y.depth && x.task === y.task;
}

/** The first point where two traces differ, with `context` lines around it; null when they are the same. */
export function traceDivergence(a: readonly TraceRecord[], b: readonly TraceRecord[], context = 3): TraceDivergence | null {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && sameRecord(a[i]!, b[i]!)) i++;
  if (i === a.length && i === b.length) return null;
  const multiTask = a.some((r) => r.task !== 0) || b.some((r) => r.task !== 0);
  const lines = (t: readonly TraceRecord[], from: number, to: number) => t.slice(from, to).map((r) => renderTraceLine(r, multiTask));
  return { index: i, before: lines(a, Math.max(0, i - context), i), a: lines(a, i, i + context + 1), b: lines(b, i, i + context + 1) };
}

/** The key an element of a snapshot list is known by across runs, or null to compare by position. */
function elementKey(listKey: string, x: unknown): string | null {
  if (x === null || typeof x !== "object") return null;
  const o = x as Record<string, unknown>;
  // A group is its devices (ids are the kernel's allocation order, which a design may change).
  if (listKey === "groups" && Array.isArray(o.devices)) return [...(o.devices as string[])].sort().join(",");
  if (typeof o.name === "string") return o.name;
  if (typeof o.id === "number") return String(o.id);
  return null;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function compare(a: unknown, b: unknown, path: string, listKey: string, out: SnapshotChange[]): void {
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      if (path === "" && SKIP_KEYS.has(k)) continue;
      compare(a[k], b[k], path === "" ? k : `${path}.${k}`, k, out);
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const keyed = a.length + b.length > 0 && [...a, ...b].every((x) => elementKey(listKey, x) !== null);
    if (keyed) {
      const am = new Map(a.map((x) => [elementKey(listKey, x)!, x] as const));
      const bm = new Map(b.map((x) => [elementKey(listKey, x)!, x] as const));
      for (const k of new Set([...am.keys(), ...bm.keys()])) compare(am.get(k), bm.get(k), `${path}[${k}]`, "", out);
      return;
    }
    // Lists of names compare as sets; other lists as a whole.
    const names = [...a, ...b].every((x) => typeof x === "string");
    if (names ? !sameValue([...a].sort(), [...b].sort()) : !sameValue(a, b)) out.push({ path, a, b });
    return;
  }
  if (!sameValue(a, b)) out.push({ path, a, b });
}

/** Every difference between two snapshots, as key paths (devices and iommus by name, groups by their devices, domains by id). */
export function snapshotChanges(a: Snapshot, b: Snapshot): SnapshotChange[] {
  const out: SnapshotChange[] = [];
  compare(a, b, "", "", out);
  return out;
}

function outcome(e: EventRecord | undefined): string {
  if (e === undefined) return "(not run)";
  return e.value === undefined ? e.result : `${e.result} (0x${e.value.toString(16)})`;
}

/** The boot steps and events whose result or value differs. */
export function eventChanges(a: Snapshot, b: Snapshot): EventChange[] {
  const out: EventChange[] = [];
  const each = (step: string, xs: readonly EventRecord[], ys: readonly EventRecord[]) => {
    for (let i = 0; i < Math.max(xs.length, ys.length); i++) {
      const x = xs[i];
      const y = ys[i];
      const oa = outcome(x);
      const ob = outcome(y);
      if (oa !== ob) out.push({ step: `${step} ${i + 1}`, event: (x ?? y)!.event, arg: (x ?? y)!.arg, a: oa, b: ob });
    }
  };
  each("boot", a.boot, b.boot);
  each("event", a.events, b.events);
  return out;
}

/** Two runs of one scenario compared. */
export function diffRuns(a: RunView, b: RunView, context = 3): RunDiff {
  const trace = traceDivergence(a.trace, b.trace, context);
  const snapshot = snapshotChanges(a.snapshot, b.snapshot);
  const events = eventChanges(a.snapshot, b.snapshot);
  return { equal: trace === null && snapshot.length === 0 && events.length === 0, trace, snapshot, events };
}

function show(v: unknown): string {
  if (v === undefined) return "(absent)";
  const s = JSON.stringify(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** The comparison as text, naming the two runs. */
export function renderRunDiff(d: RunDiff, aName: string, bName: string): string {
  if (d.equal) return `a (${aName}) and b (${bName}) run alike: same trace, same snapshot, same event results`;
  const L: string[] = [`a: ${aName}`, `b: ${bName}`, ""];
  if (d.trace === null) L.push("traces: the same");
  else {
    L.push(`traces part at record ${d.trace.index}:`);
    for (const l of d.trace.before) L.push(`    ${l}`);
    for (const l of d.trace.a) L.push(`  a ${l}`);
    if (d.trace.a.length === 0) L.push("  a (ends here)");
    for (const l of d.trace.b) L.push(`  b ${l}`);
    if (d.trace.b.length === 0) L.push("  b (ends here)");
  }
  L.push("");
  if (d.events.length === 0) L.push("event results: the same");
  else {
    L.push(`event results that differ (${d.events.length}):`);
    for (const e of d.events) L.push(`  ${e.step} ${e.event} ${e.arg}: a ${e.a}, b ${e.b}`);
  }
  L.push("");
  if (d.snapshot.length === 0) L.push("snapshots: the same");
  else {
    L.push(`snapshot differences (${d.snapshot.length}):`);
    for (const c of d.snapshot) L.push(`  ${c.path}: ${show(c.a)} -> ${show(c.b)}`);
  }
  return L.join("\n");
}
