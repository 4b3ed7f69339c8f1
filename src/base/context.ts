/**
 * The machine context: what every layer's paths share on one machine. The
 * scheduling state (`Sched`), the trace, and the diagnostics sink (kernel
 * WARNs and BUGs, findings, failure effects, isolation breaches, invariant
 * violations). The driver core and the IOMMU core are handed it; nothing
 * else of a machine is global.
 */
import { Diagnostics } from "../lib/diagnostics.ts";
import type { FailureEffectId } from "../lib/failure-effects.ts";
import { Trace } from "../lib/trace.ts";
import { Sched } from "./path.ts";

export class MachineContext {
  readonly sched = new Sched();
  readonly trace = new Trace();
  readonly diag = new Diagnostics();

  constructor() {
    // The model's own rule checks (locks, tasks) record into this machine's diagnostics as they happen.
    this.sched.violation = (message) => {
      this.diag.violation(message);
    };
  }

  /** Whether the trace records; build note strings only then. */
  get tracing(): boolean {
    return this.trace.enabled;
  }

  /** A kernel WARN (or dev_warn): kept in the diagnostics, traced when tracing. */
  warn(fn: string, subject: string, message: string): void {
    this.diag.warning({ fn, subject, message });
    this.trace.warn(this.sched.current.id, fn, subject, message);
  }

  /** A kernel BUG (BUG_ON): kept in the diagnostics, traced when tracing; the model carries on where the kernel would stop. */
  bug(fn: string, subject: string, message: string): void {
    this.diag.bug({ fn, subject, message });
    this.trace.bug(this.sched.current.id, fn, subject, message);
  }

  /** A failure left state behind as the kernel's does (lib/failure-effects.ts): kept in the diagnostics, traced when tracing. */
  effect(id: FailureEffectId, subject: string, message: string): void {
    this.diag.effect({ id, subject, message });
    this.trace.effect(this.sched.current.id, id, subject, message);
  }

  /** A trace note from the running task. */
  note(fn: string, subject: string, detail: string): void {
    this.trace.note(this.sched.current.id, fn, subject, detail);
  }
}
