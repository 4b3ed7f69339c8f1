/**
 * What a failing schedule broke, and its shrinking: fewer steps off the
 * continuation rule, then a shorter string, as long as the replay still
 * fails the same way (the same kind, and for an invariant the same rule).
 */
import type { Failure, RunOptions } from "../runner.ts";
import { violationKind } from "../../lib/diagnostics.ts";
import type { RACE_KINDS, Scenario } from "../scenario/schema.ts";
import { playOnce } from "./dfs.ts";
import { formatSchedule, knownSchedule, parseSchedule, ScheduleError, ScriptPolicy, type Schedule, type Segment } from "./schedule.ts";

/** What `explore` reports a failure as: a race invariant's kind, another invariant, an expectation, or a deadlock. */
export type FailureKind = (typeof RACE_KINDS)[number] | "invariant" | "expectation" | "deadlock" | "exception";

export function failureKind(f: Failure): FailureKind {
  if (f.kind === "deadlock" || f.kind === "exception") return f.kind;
  if (f.kind !== "invariant") return "expectation";
  return violationKind(f.message) ?? "invariant";
}

/** Two failures alike for shrinking: the same kind, and for a violation the same rule (its message up to the first colon). */
export function sameFailure(a: Failure, b: Failure): boolean {
  if (failureKind(a) !== failureKind(b)) return false;
  if (a.kind !== "invariant") return a.kind === b.kind;
  return a.message.split(":")[0] === b.message.split(":")[0];
}

/** Steps off the continuation rule in a schedule string (what shrinking lowers first). */
export function deviations(schedule: Schedule): number {
  let n = 0;
  for (const b of schedule) for (const s of b) n += s.count;
  return n;
}

function better(a: string, b: string): boolean {
  const pa = knownSchedule(a);
  const pb = knownSchedule(b);
  const da = deviations(pa);
  const db = deviations(pb);
  return da < db || (da === db && a.length < b.length);
}

/** Smaller variants of a schedule: a segment dropped, a count lowered, a block left to the continuation rule. */
function candidates(sch: Schedule): string[] {
  const out: string[] = [];
  const str = (blocks: readonly (readonly Segment[])[]) =>
    formatSchedule(
      blocks.map((segs) => {
        const chosen: number[] = [];
        for (const s of segs) for (let i = 0; i < s.count; i++) chosen.push(s.task);
        // Every choice written counts as off the rule here; the replay gives the canonical string.
        return { chosen, next: chosen.map(() => -1), length: chosen.length };
      }),
    );
  sch.forEach((segs, b) => {
    if (segs.length === 0) return;
    const with_ = (ns: Segment[]) => str(sch.map((x, i) => (i === b ? ns : x)));
    out.push(with_([]));
    segs.forEach((s, j) => {
      out.push(with_(segs.filter((_, k) => k !== j)));
      if (s.count > 1) {
        out.push(with_(segs.map((x, k) => (k === j ? { task: x.task, count: 1 } : x))));
        out.push(with_(segs.map((x, k) => (k === j ? { task: x.task, count: Math.floor(x.count / 2) } : x))));
        out.push(with_(segs.map((x, k) => (k === j ? { task: x.task, count: x.count - 1 } : x))));
      }
    });
  });
  return [...new Set(out)];
}

/** Replays a schedule string; its failure and canonical string, or null if it does not fit or does not fail. */
export function replay(s: Scenario, opts: RunOptions, schedule: string): { schedule: string; failure: Failure } | null {
  const p = parseSchedule(schedule);
  if (typeof p === "string") return null;
  try {
    const r = playOnce(s, opts, new ScriptPolicy(p));
    return r.failures.length > 0 ? { schedule: r.schedule, failure: r.failures[0]! } : null;
  } catch (e) {
    if (e instanceof ScheduleError) return null;
    throw e;
  }
}

/** Shrinks a failing schedule (at most `budget` replays); returns the smallest found that fails alike. */
export function shrink(s: Scenario, opts: RunOptions, schedule: string, failure: Failure, budget = 400): { schedule: string; failure: Failure; replays: number } {
  let best = { schedule, failure };
  let replays = 0;
  let improved = true;
  while (improved && replays < budget) {
    improved = false;
    for (const c of candidates(knownSchedule(best.schedule))) {
      if (replays >= budget) break;
      if (!better(c, best.schedule)) continue;
      replays++;
      const r = replay(s, opts, c);
      if (r !== null && sameFailure(r.failure, failure) && better(r.schedule, best.schedule)) {
        best = r;
        improved = true;
        break;
      }
    }
  }
  return { ...best, replays };
}
