/**
 * Runs a scenario: boots the machine in the kernel's order, then plays its
 * events one by one, checking every invariant after each step and every
 * expectation where it stands. The result says what failed and where; a
 * violation an `expect.violations` entry names (at or after the step that
 * broke the rule) is expected, not a failure.
 */
import { deferredProbeInitcall } from "../base/dd.ts";
import { driverRegister } from "../base/dd.ts";
import { callPath, runPath, trackTouches, type Path } from "../base/path.ts";
import { isErr, type KError } from "../lib/errno.ts";
import { addDevice, iommuRegister } from "./actions.ts";
import type { EventDef } from "./event-kind.ts";
import { eventDef, type EventKind } from "./event-table.ts";
import { matchExpect } from "./expect.ts";
import { checkInvariants, formatViolation, scopeOfTouched, type InvariantScope } from "./invariants.ts";
import { Machine, type EventRecord, type MachineOptions } from "./machine.ts";
import { eventKey, type EventSpec, type Scenario } from "./scenario/schema.ts";
import { takeSnapshot, type Snapshot } from "./snapshot.ts";

export interface Failure {
  /** "boot", or the event's index in the file. */
  step: string;
  /**
   * expectation: an `expect` did not match; expect_error: an event did not fail (or return) as its
   * expect_error/expect_value said; unexpected_error: an event without expect_error failed;
   * invariant: a rule the kernel keeps was broken (and no `expect.violations` entry at or after the step
   * that broke it named the violation).
   */
  kind: "expectation" | "expect_error" | "unexpected_error" | "invariant";
  message: string;
}

export interface RunResult {
  machine: Machine;
  boot: EventRecord[];
  failures: Failure[];
  expectations: { passed: number; failed: number };
  /** Every distinct invariant violation seen, in the order first seen (expected ones included). */
  violations: string[];
  /**
   * The violations the scenario expected: each matched by an `expect.violations` entry at or after the
   * step that first broke the rule. They are not failures.
   */
  expectedViolations: string[];
  snapshot: Snapshot;
}

function resultName(r: 0 | KError): string {
  return r === 0 ? "ok" : r.errno;
}

/** How an event ended: 0 or its errno, and what an event that returns a value (unmap, dma_map, dma_unmap, device_dma) returned. */
export interface EventOutcome {
  readonly ret: 0 | KError;
  readonly value: number | undefined;
}

/** A scenario event looked up in the event table: its kind, its argument, and what it acts on. */
interface TableEvent {
  readonly key: EventKind;
  readonly def: EventDef;
  readonly a: unknown;
  readonly arg: string;
}

function tableEvent(e: EventSpec): TableEvent {
  const key = eventKey(e);
  if (key === "expect") throw new Error("an expectation is not a kernel entry point");
  const def = eventDef(key);
  const a = e[key];
  return { key, def, a, arg: def.label(a) };
}

/** Runs a looked-up event to its end: a path to completion, a plain function by a call. */
function runTableEvent(m: Machine, t: TableEvent): EventOutcome {
  const d = t.def;
  if (d.blocks) return { ret: runPath(d.run(m, t.a)), value: undefined };
  const r = d.run(m, t.a);
  if (isErr(r)) return { ret: r, value: undefined };
  return { ret: 0, value: d.returnsValue ? r : undefined };
}

/** Runs one event of a scenario to its end, as the runner does (without recording it). */
export function runEvent(m: Machine, e: EventSpec): EventOutcome {
  return runTableEvent(m, tableEvent(e));
}

/**
 * The path an event stands for, with the name of what it acts on, for a
 * scheduler: an event that cannot block runs in one step (`callPath`). The
 * path returns 0 or the errno; `runEvent` also gives an event's value.
 */
export function eventPath(m: Machine, e: EventSpec): { arg: string; path: Path<0 | KError> } {
  const t = tableEvent(e);
  const d = t.def;
  if (d.blocks) return { arg: t.arg, path: d.run(m, t.a) };
  return { arg: t.arg, path: callPath(() => runTableEvent(m, t).ret) };
}

/**
 * Boots the machine: built-in IOMMU drivers register, devices are added (or
 * the other way round with `boot.order: devices-first`), drivers register,
 * late_initcall retries deferrals.
 */
export function* bootPath(m: Machine, records: EventRecord[]): Path {
  const record = (event: string, arg: string, r: 0 | KError) => records.push({ event, arg, result: resultName(r) });
  function* registerInstances(): Path {
    for (const rec of m.instances.values()) {
      if (rec.spec.registered === false) continue;
      m.ctx.trace.event("boot", `iommu_register ${rec.spec.name}`);
      record("iommu_register", rec.spec.name, yield* iommuRegister(m, rec));
    }
  }
  const devicesFirst = m.scenario.boot?.order === "devices-first";
  if (!devicesFirst) yield* registerInstances();
  for (const rec of m.devices.values()) {
    if (rec.spec.added === false) continue;
    m.ctx.trace.event("boot", `device_add ${rec.spec.name}`);
    record("device_add", rec.spec.name, yield* addDevice(m, rec));
  }
  if (devicesFirst) yield* registerInstances();
  for (const spec of m.scenario.drivers) {
    if (spec.registered === false) continue;
    m.ctx.trace.event("boot", `driver_register ${spec.name}`);
    record("driver_register", spec.name, yield* driverRegister(m.dc, m.drivers.get(spec.name)!));
  }
  m.ctx.trace.event("boot", "late_initcall deferred_probe_initcall");
  yield* deferredProbeInitcall(m.dc);
}

export interface RunOptions extends MachineOptions {
  /** Check invariants after every step (default true). */
  invariants?: boolean;
}

export function runScenario(s: Scenario, opts: RunOptions = {}): RunResult {
  const m = new Machine(s, opts);
  const failures: Failure[] = [];
  const violations = m.ctx.diag.violations;
  // After boot and at the end the whole machine is checked; after each event, what the event touched.
  const checkAfter = (step: string, scope?: InvariantScope) => {
    if (opts.invariants === false) return;
    for (const v of checkInvariants(m, scope)) {
      const msg = formatViolation(v);
      if (m.ctx.diag.violation(msg)) failures.push({ step, kind: "invariant", message: msg });
    }
  };
  const boot: EventRecord[] = [];
  const touched = opts.invariants === false ? null : trackTouches(m.dc.sched);
  runPath(bootPath(m, boot));
  checkAfter("boot");

  let passed = 0;
  let failed = 0;
  // Violations an expect.violations entry matched when it ran: those seen so far, so at or before its step.
  const expected = new Set<string>();
  s.events.forEach((e, i) => {
    const step = `events[${i}]`;
    if (e.expect !== undefined) {
      m.ctx.trace.event(`${step}`, "expect");
      for (const want of e.expect.violations ?? []) for (const v of violations) if (v.includes(want)) expected.add(v);
      const diffs = matchExpect(e.expect, takeSnapshot(m, boot, violations));
      if (diffs.length === 0) passed++;
      else {
        failed++;
        for (const d of diffs) failures.push({ step, kind: "expectation", message: d });
      }
      return;
    }
    const t = tableEvent(e);
    const { key, arg } = t;
    m.ctx.trace.event(step, `${key} ${arg}`);
    if (touched !== null) trackTouches(m.dc.sched);
    const { ret: r, value } = runTableEvent(m, t);
    const rec: EventRecord = { event: key, arg, result: resultName(r) };
    if (value !== undefined) rec.value = value;
    m.events.push(rec);
    if (e.expect_value !== undefined && rec.value !== e.expect_value) {
      failed++;
      failures.push({ step, kind: "expect_error", message: `${key} ${arg}: expected value 0x${e.expect_value.toString(16)}, got ${rec.value === undefined ? "none" : "0x" + rec.value.toString(16)}` });
    } else if (e.expect_value !== undefined) {
      passed++;
    }
    if (e.expect_error === undefined && r !== 0) {
      failed++;
      failures.push({ step, kind: "unexpected_error", message: `${key} ${arg}: failed with ${r.errno}: ${r.message} (add expect_error: ${r.errno} if the failure is intended)` });
    } else if (e.expect_error !== undefined) {
      const got = r === 0 ? "success" : r.errno;
      if (got !== e.expect_error) {
        failed++;
        failures.push({ step, kind: "expect_error", message: `${key} ${arg}: expected ${e.expect_error}, got ${got}${r !== 0 ? ` (${r.message})` : ""}` });
      } else {
        passed++;
      }
    }
    checkAfter(step, touched === null ? undefined : scopeOfTouched(touched));
  });
  if (s.events.length > 0) checkAfter("end");
  const unexpected = expected.size === 0 ? failures : failures.filter((f) => f.kind !== "invariant" || !expected.has(f.message));
  return {
    machine: m,
    boot,
    failures: unexpected,
    expectations: { passed, failed },
    violations: [...violations],
    expectedViolations: violations.filter((v) => expected.has(v)),
    snapshot: takeSnapshot(m, boot, violations),
  };
}
