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
import type { Mutex } from "../base/mutex.ts";
import { isErr, type KError } from "../lib/errno.ts";
import { addDevice, iommuRegister } from "./actions.ts";
import type { EventDef } from "./event-kind.ts";
import { eventDef, type EventKind } from "./event-table.ts";
import { matchExpect } from "./expect.ts";
import { checkInvariants, formatViolation, scopeOfTouched, type InvariantScope } from "./invariants.ts";
import { Machine, type EventRecord, type MachineOptions } from "./machine.ts";
import { eventKey, type EventSpec, type Scenario, type TaskEventSpec } from "./scenario/schema.ts";
import { BlockTask, runBlock, taskLetter, type BlockState, type SchedulePolicy } from "./explore/block.ts";
import { formatSchedule, ScriptPolicy, type BlockChoices } from "./explore/schedule.ts";
import { lazySnapshot, takeSnapshot, type Snapshot } from "./snapshot.ts";

export interface Failure {
  /** "boot", or the event's index in the file. */
  step: string;
  /**
   * expectation: an `expect` did not match; expect_error: an event did not fail (or return) as its
   * expect_error/expect_value said; unexpected_error: an event without expect_error failed;
   * invariant: a rule the kernel keeps was broken (and no `expect.violations` entry at or after the step
   * that broke it named the violation); deadlock: the tasks of a concurrently block all wait for locks;
   * exception: the model threw in a task of a concurrently block (an interleaving it does not handle).
   * The run stops at a deadlock or an exception.
   */
  kind: "expectation" | "expect_error" | "unexpected_error" | "invariant" | "deadlock" | "exception";
  message: string;
}

export interface RunResult extends PlayResult {
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

function tableEvent(e: EventSpec | TaskEventSpec): TableEvent {
  const key = eventKey(e);
  if (key === "expect" || key === "concurrently") throw new Error(`${key} is not a kernel entry point`);
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
export function* bootPath(m: Machine, records: EventRecord[], after?: StepObserver): Path {
  const record = (event: string, arg: string, r: 0 | KError) => {
    records.push({ event, arg, result: resultName(r) });
    after?.(`boot: ${event} ${arg}`, "boot", m, records);
  };
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

/**
 * Told after each boot event, each event, and each scheduler step of a
 * concurrently block, with the step's label (`run --steps` snapshots the
 * machine there). It must not change the machine.
 */
export type StepObserver = (label: string, kind: "boot" | "event" | "step", m: Machine, boot: readonly EventRecord[]) => void;

export interface RunOptions extends MachineOptions {
  /** Told after every step (StepObserver). */
  onStep?: StepObserver;
  /** Check invariants after every step (default true). */
  invariants?: boolean;
  /**
   * How `concurrently:` blocks are played: the default schedule (each task
   * runs until it blocks or ends, the lowest runnable next) unless a policy
   * is given (a `--schedule` string, the explorer's).
   */
  policy?: SchedulePolicy;
  /**
   * Check the invariants after boot (default true). The explorer checks them
   * in its first schedule only: the boot is the same in every schedule.
   */
  checkBoot?: boolean;
}

/** What playing a scenario gives, before its snapshot is taken. */
export interface PlayResult {
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
  /** The schedule the concurrently blocks were played on ("-" for the default one, or none). */
  schedule: string;
  /** Scheduler steps taken in concurrently blocks. */
  steps: number;
  /** The policy gave up on the run (the explorer's pruned branches): nothing after that point was played. */
  abandoned: boolean;
  /** The run stopped at a deadlock or an exception in a concurrently block. */
  deadlocked: boolean;
  /** The concurrently blocks played, with the choices made in each. */
  blocks: PlayedBlock[];
}

/** The choices of one played concurrently block (schedule.ts formats them). */
export class PlayedBlock implements BlockChoices {
  chosen = new Uint8Array(64);
  next = new Uint8Array(64);
  length = 0;

  push(chosen: number, next: number): void {
    if (this.length === this.chosen.length) {
      const grow = (a: Uint8Array) => {
        const b = new Uint8Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.chosen = grow(this.chosen);
      this.next = grow(this.next);
    }
    this.chosen[this.length] = chosen;
    this.next[this.length] = next;
    this.length++;
  }
}

export function runScenario(s: Scenario, opts: RunOptions = {}): RunResult {
  const r = playScenario(s, opts);
  return { ...r, snapshot: takeSnapshot(r.machine, r.boot, r.machine.ctx.diag.violations) };
}

/** The default schedule's policy: the continuation rule at every step. */
const DEFAULT_POLICY: SchedulePolicy = { choose: (st) => st.next };

/** Boots the scenario's machine and plays its events; the snapshot is left to the caller (runScenario takes it). */
export function playScenario(s: Scenario, opts: RunOptions = {}): PlayResult {
  const m = new Machine(s, opts);
  const failures: Failure[] = [];
  const violations = m.ctx.diag.violations;
  const checking = opts.invariants !== false;
  /** Violations already turned into failures (others are recorded as they happen, by the model's event-style rules). */
  let seen = 0;
  // After boot and at the end the whole machine is checked; after each event or step, what it touched.
  const collect = (step: string | (() => string)) => {
    for (; seen < violations.length; seen++) failures.push({ step: typeof step === "string" ? step : step(), kind: "invariant", message: violations[seen]! });
  };
  const checkAfter = (step: string, scope?: InvariantScope) => {
    if (!checking) return;
    for (const v of checkInvariants(m, scope)) m.ctx.diag.violation(formatViolation(v));
    collect(step);
  };
  const boot: EventRecord[] = [];
  const touched = checking ? trackTouches(m.dc.sched) : null;
  runPath(bootPath(m, boot, opts.onStep));
  if (opts.checkBoot !== false) checkAfter("boot");
  opts.onStep?.("boot: late_initcall deferred_probe_initcall", "boot", m, boot);

  let passed = 0;
  let failed = 0;
  /** An event's outcome against its expect_error and expect_value. */
  const settle = (step: string, e: TaskEventSpec, key: string, arg: string, r: 0 | KError, value: number | undefined) => {
    const rec: EventRecord = { event: key, arg, result: resultName(r) };
    if (value !== undefined) rec.value = value;
    m.events.push(rec);
    if (e.expect_value !== undefined && rec.value !== e.expect_value) {
      failed++;
      failures.push({ step, kind: "expect_error", message: `${key} ${arg}: expected value 0x${e.expect_value.toString(16)}, got ${rec.value === undefined ? "none" : "0x" + rec.value.toString(16)}` });
    } else if (e.expect_value !== undefined) {
      passed++;
    }
    if (e.may_fail === true) {
      // Either outcome is fine: the result is recorded (m.events), nothing is asserted.
    } else if (e.expect_error === undefined && r !== 0) {
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
  };

  const policy = opts.policy ?? DEFAULT_POLICY;
  const blocks: PlayedBlock[] = [];
  let steps = 0;
  let abandoned = false;
  let deadlocked = false;

  /** One task of a block: its events in order, each settled as it ends. */
  function* taskPath(at: string, letter: string, list: readonly TaskEventSpec[]): Path {
    for (let j = 0; j < list.length; j++) {
      const e = list[j]!;
      const t = tableEvent(e);
      if (m.ctx.tracing) m.ctx.trace.sched(m.dc.sched.current.id, `${letter}: ${t.key} ${t.arg}`);
      let out: EventOutcome;
      if (t.def.blocks) out = { ret: yield* t.def.run(m, t.a), value: undefined };
      else out = runTableEvent(m, t);
      settle(`${at}[${j}]`, e, t.key, t.arg, out.ret, out.value);
    }
  }

  /** Plays a concurrently block; false when the run cannot go on (abandoned, deadlocked). */
  const playBlock = (step: string, lists: readonly (readonly TaskEventSpec[])[]): boolean => {
    const b = blocks.length;
    const played = new PlayedBlock();
    blocks.push(played);
    const sched = m.dc.sched;
    const tasks = lists.map((list, i) => {
      const letter = taskLetter(i);
      const task = sched.newTask(letter);
      return new BlockTask(i, task, taskPath(`${step}.concurrently[${i}]`, letter, list));
    });
    m.ctx.trace.event(step, `concurrently: ${tasks.map((t) => `${taskLetter(t.index)} = T${t.task.id}`).join(", ")}`);
    const label = () => `${step} step ${played.length}`;
    // What the block's steps touched, for the state rules at its end (the union of each step's scope).
    const blockTouched = new Set<Mutex>();
    const end = runBlock(sched, b, tasks, policy, {
      before(t, st) {
        played.push(t.index, st.next);
        if (m.ctx.tracing && t.index !== st.last) m.ctx.trace.sched(t.task.id, switchNote(t, st));
        if (touched !== null) trackTouches(sched);
      },
      after(_t, st) {
        steps++;
        policy.stepped?.(st, touched);
        if (touched !== null) for (let i = 0; i < touched.length; i++) blockTouched.add(touched[i]!);
        // Mid-event states are transient: the rules the model records as they are broken are seen
        // after every step; the state rules wait for the block's end, where every task stands between events.
        if (checking && seen < violations.length) collect(label);
        opts.onStep?.(label(), "step", m, boot);
      },
    });
    if (end.kind === "abandoned") {
      abandoned = true;
      return false;
    }
    if (end.kind === "deadlock" || end.kind === "exception") {
      deadlocked = true;
      failures.push({ step: label(), kind: end.kind, message: end.message });
      return false;
    }
    checkAfter(`${step} end`, touched === null ? undefined : scopeOfTouched([...blockTouched]));
    return true;
  };

  // Violations an expect.violations entry matched when it ran: those seen so far, so at or before its step.
  const expected = new Set<string>();
  for (let i = 0; i < s.events.length; i++) {
    const e = s.events[i]!;
    const step = `events[${i}]`;
    if (e.expect !== undefined) {
      m.ctx.trace.event(`${step}`, "expect");
      for (const want of e.expect.violations ?? []) for (const v of violations) if (v.includes(want)) expected.add(v);
      const diffs = matchExpect(e.expect, lazySnapshot(m, boot, violations));
      if (diffs.length === 0) passed++;
      else {
        failed++;
        for (const d of diffs) failures.push({ step, kind: "expectation", message: d });
      }
      continue;
    }
    if (e.concurrently !== undefined) {
      if (!playBlock(step, e.concurrently)) break;
      continue;
    }
    const t = tableEvent(e);
    const { key, arg } = t;
    m.ctx.trace.event(step, `${key} ${arg}`);
    if (touched !== null) trackTouches(m.dc.sched);
    const { ret: r, value } = runTableEvent(m, t);
    settle(step, e, key, arg, r, value);
    checkAfter(step, touched === null ? undefined : scopeOfTouched(touched));
    opts.onStep?.(step, "event", m, boot);
  }
  if (s.events.length > 0 && !abandoned && !deadlocked) checkAfter("end");
  if (policy instanceof ScriptPolicy && !abandoned && !deadlocked) policy.finish();
  const unexpected = expected.size === 0 ? failures : failures.filter((f) => f.kind !== "invariant" || !expected.has(f.message));
  return {
    machine: m,
    boot,
    failures: unexpected,
    expectations: { passed, failed },
    violations: [...violations],
    expectedViolations: violations.filter((v) => expected.has(v)),
    schedule: formatSchedule(blocks),
    steps,
    abandoned,
    deadlocked,
    blocks,
  };
}

/** The trace's note where a block switches tasks: who runs, and where the others stand. */
function switchNote(t: BlockTask, st: BlockState): string {
  const others = st.tasks
    .filter((o) => o !== t)
    .map((o) => {
      const l = taskLetter(o.index);
      if (o.done) return `${l} ended`;
      if (o.last === null) return `${l} not started`;
      const at = `${o.last.op} ${o.last.what}`;
      return o.runnable() ? `${l} at ${at}` : `${l} waits at ${at}`;
    });
  return `step ${st.step + 1}: ${taskLetter(t.index)} runs${others.length > 0 ? ` (${others.join(", ")})` : ""}`;
}
