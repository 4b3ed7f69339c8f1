/**
 * The fuzzer's checker: boots a machine in-process and plays events on it
 * one by one through the runner's own eventPath, and after each event:
 *  - an exception is a model bug (the machine is abandoned);
 *  - a failing event must leave the whole snapshot (the event log aside)
 *    as it was, unless an effect it recorded (src/lib/failure-effects.ts)
 *    covers every change;
 *  - after an event that changed anything, new invariant violations are
 *    counted by rule (those the modelled kernel reaches only through a
 *    kernel BUG it hit, apart: I23 under dma_ownership=notifier).
 */
import { runPath } from "../../src/base/path.ts";
import { failureEffectOfPgtableFinding, FAILURE_EFFECTS, formatFailureEffect, type FailureEffectId } from "../../src/lib/failure-effects.ts";
import type { KError } from "../../src/lib/errno.ts";
import { checkInvariants, formatViolation } from "../../src/sim/invariants.ts";
import { Machine, type EventRecord, type MachineOptions } from "../../src/sim/machine.ts";
import { bootPath, eventPath } from "../../src/sim/runner.ts";
import { eventKey, type EventSpec, type Scenario } from "../../src/sim/scenario/schema.ts";
import { takeSnapshot, type Snapshot } from "../../src/sim/snapshot.ts";
import { covers, diffSnapshots, type Change } from "./diff.ts";

export type ProblemKind = "exception" | "undocumented" | "violation" | "effect";

export interface Problem {
  kind: ProblemKind;
  /** The problem's class: the same key is the same problem. */
  key: string;
  /** Index of the event in the sequence, -1 for boot. */
  index: number;
  event: EventSpec | null;
  /** What happened, for the report. */
  details: string[];
}

export interface Counts {
  events: number;
  ok: number;
  failed: number;
  /** Failing events that changed the snapshot, every change covered by a recorded effect. */
  failedDocumented: number;
  /** Effects recorded by failing events that changed the snapshot. */
  effects: Map<FailureEffectId, number>;
  exceptions: number;
  undocumented: number;
  /** New violations after events, by rule. */
  violations: Map<string, number>;
  /** New violations of states the modelled kernel reaches only through a kernel BUG it hit (not problems), by rule. */
  afterKernelBug: Map<string, number>;
  /** Events by kind and result (ok or errno). */
  outcomes: Map<string, number>;
}

export function newCounts(): Counts {
  return { events: 0, ok: 0, failed: 0, failedDocumented: 0, effects: new Map(), exceptions: 0, undocumented: 0, violations: new Map(), afterKernelBug: new Map(), outcomes: new Map() };
}

function bump<K>(m: Map<K, number>, k: K, n = 1): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

type State = Omit<Snapshot, "events" | "boot">;

function state(s: Snapshot): State {
  const { events: _e, boot: _b, ...rest } = s;
  return rest;
}

/** A message with its particulars (numbers, names in quotes) blanked, so that one bug is one class. */
export function normalise(msg: string): string {
  return msg
    .replace(/'[^']*'/g, "'…'")
    .replace(/0x[0-9a-f]+/gi, "N")
    .replace(/\d+/g, "N")
    .slice(0, 240);
}

/** A domain's page-table finding in the snapshot: `domain 3 (DMA): map-exists at 0x...`. */
const PGTABLE_FINDING = /^domain \d+ \([^)]*\): ([a-z0-9-]+) at 0x/;

/** The strings `after` has more of than `before`. */
function newStrings(before: readonly string[], after: readonly string[]): string[] {
  const count = new Map<string, number>();
  for (const x of before) count.set(x, (count.get(x) ?? 0) + 1);
  const out: string[] = [];
  for (const x of after) {
    const n = count.get(x) ?? 0;
    if (n > 0) count.set(x, n - 1);
    else out.push(x);
  }
  return out;
}

/** `after` without the occurrences it has beyond `before` of the strings in `drop`. */
function withoutNew(before: readonly string[], after: readonly string[], drop: ReadonlySet<string>): string[] {
  const count = new Map<string, number>();
  for (const x of before) count.set(x, (count.get(x) ?? 0) + 1);
  return after.filter((x) => {
    const n = count.get(x) ?? 0;
    if (n > 0) {
      count.set(x, n - 1);
      return true;
    }
    return !drop.has(x);
  });
}

function exceptionKey(kind: string, e: unknown): { key: string; details: string[] } {
  const err = e instanceof Error ? e : new Error(String(e));
  const frames = (err.stack ?? "").split("\n").filter((l) => l.includes("/src/"));
  const top = frames[0]?.trim().replace(/^at /, "").replace(/\(.*\/src\//, "(src/") ?? "";
  return { key: `exception in ${kind}: ${err.name}: ${normalise(err.message)} at ${normalise(top)}`, details: [`${err.name}: ${err.message}`, ...frames.slice(0, 6).map((f) => f.trim())] };
}

export interface PlayOptions extends MachineOptions {
  /** Check invariants (default true). */
  invariants?: boolean;
  /** Also report each documented effect a failing event left, as a problem of kind "effect" (to collect examples). */
  reportEffects?: boolean;
}

/**
 * Plays `scenario`'s machine with events from `next` (called with the
 * machine and the event index; null ends the run). Reports each problem to
 * `onProblem` and counts into `counts`. Returns the events played.
 */
export function play(
  scenario: Scenario,
  next: (m: Machine, i: number) => EventSpec | null,
  counts: Counts,
  onProblem: (p: Problem) => void,
  opts: PlayOptions = {},
): EventSpec[] {
  const played: EventSpec[] = [];
  let m: Machine;
  const boot: EventRecord[] = [];
  try {
    m = new Machine(scenario, { trace: false, ...opts });
    runPath(bootPath(m, boot));
  } catch (e) {
    counts.exceptions++;
    const { key, details } = exceptionKey("boot", e);
    onProblem({ kind: "exception", key, index: -1, event: null, details });
    return played;
  }
  const invariants = opts.invariants !== false;
  let prev = state(takeSnapshot(m, boot, []));
  let prevJson = JSON.stringify(prev);
  let prevViolations = new Set(invariants ? checkInvariants(m).map(formatViolation) : []);
  for (let i = 0; ; i++) {
    const e = next(m, i);
    if (e === null) break;
    played.push(e);
    const kind = eventKey(e);
    const effectsBefore = m.ctx.diag.effects.length;
    let r: 0 | KError;
    let snap: State;
    let json: string;
    try {
      r = runPath(eventPath(m, e).path);
      snap = state(takeSnapshot(m, boot, []));
      json = JSON.stringify(snap);
    } catch (ex) {
      counts.events++;
      counts.exceptions++;
      bump(counts.outcomes, `${kind} exception`);
      const { key, details } = exceptionKey(kind, ex);
      onProblem({ kind: "exception", key, index: i, event: e, details });
      return played;
    }
    counts.events++;
    bump(counts.outcomes, `${kind} ${r === 0 ? "ok" : r.errno}`);
    const changed = json !== prevJson;
    if (r === 0) counts.ok++;
    else {
      counts.failed++;
      if (changed) {
        const effects = m.ctx.diag.effects.slice(effectsBefore);
        const own = new Set(effects.map(formatFailureEffect));
        const ids = new Set(effects.map((x) => x.id));
        // The page-table formats record theirs as findings of a kind.
        for (const f of newStrings(prev.findings, snap.findings)) {
          const findingKind = PGTABLE_FINDING.exec(f)?.[1];
          const id = findingKind === undefined ? null : failureEffectOfPgtableFinding(findingKind);
          if (id === null) continue;
          ids.add(id);
          own.add(f);
        }
        // A message the kernel logs is its own record.
        if (snap.warnings.length > prev.warnings.length) ids.add("failure-logged");
        const allowed = [...ids].flatMap((id) => FAILURE_EFFECTS[id].changes);
        // An effect's own record in the findings is explained by the effect itself.
        const after = { ...snap, findings: withoutNew(prev.findings, snap.findings, own) };
        const changes = diffSnapshots(prev as unknown as Record<string, unknown>, after as unknown as Record<string, unknown>);
        const uncovered = changes.filter((c: Change) => !allowed.some((a) => covers(a, c.path)));
        if (uncovered.length > 0) {
          counts.undocumented++;
          const paths = [...new Set(uncovered.map((c) => c.path))].sort();
          onProblem({
            kind: "undocumented",
            key: `${kind} failing with ${r.errno} changes ${paths.join(", ")}`,
            index: i,
            event: e,
            details: [`${r.errno}: ${r.message}`, ...[...ids].map((id) => `recorded: ${id}`), ...uncovered.slice(0, 12).map((c) => c.detail)],
          });
        } else {
          counts.failedDocumented++;
          for (const id of ids) {
            bump(counts.effects, id);
            if (opts.reportEffects) onProblem({ kind: "effect", key: `effect ${id}`, index: i, event: e, details: [`${r.errno}: ${r.message}`, ...changes.slice(0, 8).map((c) => c.detail)] });
          }
        }
      }
    }
    // iommu_device_register's failure path unregisters the instance, which takes every device it probed on iommu_buses[] with it
    // (the selftest's mock bus is not one: iommu_device_unregister leaves its devices probed, as it does at any unregistration).
    if (kind === "iommu_register" && r !== 0) {
      const inst = m.instances.get(e.iommu_register!)!.iommu;
      if (r.errno !== "EEXIST" && (inst.listed || [...inst.devices].some((d) => m.k.iommuBuses.includes(d.bus)))) {
        counts.undocumented++;
        onProblem({ kind: "undocumented", key: "iommu_register failing leaves its instance registered or serving devices", index: i, event: e, details: [`${r.errno}: ${r.message}`, `${inst.name}: listed ${inst.listed}, devices ${[...inst.devices].map((d) => d.name).join(", ")}`] });
      }
    }
    if (invariants && (changed || r === 0)) {
      let now: Set<string>;
      const afterBug = new Set<string>();
      try {
        const vs = checkInvariants(m);
        now = new Set(vs.map(formatViolation));
        for (const v of vs) if (v.afterKernelBug) afterBug.add(formatViolation(v));
      } catch (ex) {
        counts.exceptions++;
        const { key, details } = exceptionKey(`checkInvariants after ${kind}`, ex);
        onProblem({ kind: "exception", key, index: i, event: e, details });
        return played;
      }
      for (const v of now) {
        if (prevViolations.has(v)) continue;
        const rule = v.slice(0, v.indexOf(":"));
        if (afterBug.has(v)) {
          bump(counts.afterKernelBug, rule);
          continue;
        }
        bump(counts.violations, rule);
        onProblem({ kind: "violation", key: `${rule} after ${kind} ${r === 0 ? "ok" : r.errno}`, index: i, event: e, details: [v] });
      }
      prevViolations = now;
    }
    prev = snap;
    prevJson = json;
  }
  return played;
}
