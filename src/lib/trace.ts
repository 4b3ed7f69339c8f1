/**
 * The trace: a record of the core calls the model made, by their kernel
 * names, nested as the calls were. Recording can be switched off (big
 * benchmarks). WARNs, BUGs and failure effects are traced here when it records,
 * and kept regardless in the machine's diagnostics (diagnostics.ts),
 * because the snapshot reports them.
 */

import { FAILURE_EFFECTS, type FailureEffectId } from "./failure-effects.ts";

export type TraceKind = "call" | "note" | "warn" | "bug" | "event" | "sched";

export interface TraceRecord {
  /** Which concurrent path (task) made the call; 0 for the main path. */
  task: number;
  depth: number;
  kind: TraceKind;
  /** Kernel function name, e.g. `__iommu_probe_device`. */
  fn: string;
  /** What it acted on: a device, an instance, a bus, a group. */
  subject: string;
  detail: string;
  /** For calls: "0" or an errno name once the call returned; null while running. */
  result: string | null;
}

export class Trace {
  enabled = true;
  readonly records: TraceRecord[] = [];
  private readonly depth: number[] = [];

  private d(task: number): number {
    return this.depth[task] ?? 0;
  }

  /** Opens a call record; returns it so `exit` can fill in the result. */
  enter(task: number, fn: string, subject: string, detail = ""): TraceRecord | null {
    if (!this.enabled) return null;
    const rec: TraceRecord = { task, depth: this.d(task), kind: "call", fn, subject, detail, result: null };
    this.records.push(rec);
    this.depth[task] = rec.depth + 1;
    return rec;
  }

  exit(task: number, rec: TraceRecord | null, result: string): void {
    if (rec === null) return;
    rec.result = result;
    this.depth[task] = rec.depth;
  }

  note(task: number, fn: string, subject: string, detail: string): void {
    if (!this.enabled) return;
    this.records.push({ task, depth: this.d(task), kind: "note", fn, subject, detail, result: null });
  }

  /** A kernel WARN/dev_warn, traced when enabled. */
  warn(task: number, fn: string, subject: string, message: string): void {
    if (!this.enabled) return;
    this.records.push({ task, depth: this.d(task), kind: "warn", fn, subject, detail: message, result: null });
  }

  /** A kernel BUG, traced when enabled. */
  bug(task: number, fn: string, subject: string, message: string): void {
    if (!this.enabled) return;
    this.records.push({ task, depth: this.d(task), kind: "bug", fn, subject, detail: message, result: null });
  }

  /** A failure left state behind as the kernel's does: traced as a "failure effect" note when enabled. */
  effect(task: number, id: FailureEffectId, subject: string, message: string): void {
    if (!this.enabled) return;
    this.records.push({ task, depth: this.d(task), kind: "note", fn: "failure effect", subject, detail: `${id} (${FAILURE_EFFECTS[id].kernel}): ${message}`, result: null });
  }

  /** A scheduling note of a concurrently block (a task starts an event, the block switches tasks), at no depth. */
  sched(task: number, detail: string): void {
    if (!this.enabled) return;
    this.records.push({ task, depth: 0, kind: "sched", fn: "", subject: "", detail, result: null });
  }

  event(label: string, detail: string): void {
    if (!this.enabled) return;
    this.records.push({ task: 0, depth: 0, kind: "event", fn: label, subject: "", detail, result: null });
    this.depth.length = 0;
  }
}
