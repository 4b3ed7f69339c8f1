/**
 * Schedules as strings (docs/explore.md). A schedule says, for each
 * concurrently block of a scenario in order, which task takes each step:
 *
 *   schedule := block ("/" block)*        block := "-" | segment+
 *   segment  := task count?                task  := a..z (the block's lists in order)
 *
 * `b3` runs task b for 3 steps (no count: 1). Once a block's segments are
 * used up, the continuation rule plays the rest: the task that ran last goes
 * on while it can, else the lowest runnable task. `-` is a block played by
 * that rule alone (the default schedule: no preemption), and blocks the
 * string leaves out are played so too. A run records its choices; the
 * shortest string that gives them back is the schedule printed.
 */
import { taskLetter, type BlockState, type SchedulePolicy } from "./block.ts";

export interface Segment {
  readonly task: number;
  readonly count: number;
}

/** Per block, its segments (empty: the continuation rule). */
export type Schedule = readonly (readonly Segment[])[];

/** The longest schedule string read (a schedule of this many steps is far beyond any explored). */
export const MAX_SCHEDULE_LENGTH = 100_000;

/** A schedule that does not fit the scenario it is played on (exit 2). */
export class ScheduleError extends Error {
  constructor(
    message: string,
    /** The concurrently block (0-based) it does not fit, or null for the whole scenario. */
    readonly block: number | null = null,
  ) {
    super(message);
    this.name = "ScheduleError";
  }
}

const shown = (s: string) => (s.length > 60 ? `'${s.slice(0, 60)}…'` : `'${s}'`);

/** A schedule string the explorer itself printed: one that does not parse is a bug of the model, thrown. */
export function knownSchedule(text: string): Schedule {
  const p = parseSchedule(text);
  if (typeof p === "string") throw new Error(`BUG: the explorer's own schedule '${text}' does not parse: ${p}`);
  return p;
}

/** Reads a schedule string; a malformed one is a sentence saying where and why. */
export function parseSchedule(text: string): Schedule | string {
  if (text.length === 0) return "the schedule is empty: write - for the default schedule";
  if (text.length > MAX_SCHEDULE_LENGTH) return `the schedule is ${text.length} characters long, more than ${MAX_SCHEDULE_LENGTH}`;
  const blocks: Segment[][] = [];
  const parts = text.split("/");
  for (let b = 0; b < parts.length; b++) {
    const p = parts[b]!;
    const where = parts.length > 1 ? ` in block ${b + 1} (${shown(p)})` : "";
    if (p === "-") {
      blocks.push([]);
      continue;
    }
    if (p === "") return `empty block ${b + 1} in ${shown(text)}: write - for a block played by the continuation rule`;
    const segs: Segment[] = [];
    let i = 0;
    while (i < p.length) {
      const c = p.charCodeAt(i);
      if (c < 97 || c > 122) {
        const ch = p[i]!;
        return `unexpected ${JSON.stringify(ch)} at position ${i + 1}${where}: a block is - or task letters (a to z), each with an optional step count, e.g. a3b2a`;
      }
      i++;
      let j = i;
      while (j < p.length && p.charCodeAt(j) >= 48 && p.charCodeAt(j) <= 57) j++;
      let count = 1;
      if (j > i) {
        const digits = p.slice(i, j);
        count = Number(digits);
        if (digits[0] === "0" || !Number.isSafeInteger(count)) return `step count ${shown(digits)} after ${taskLetter(c - 97)}${where} is not a positive whole number`;
      }
      segs.push({ task: c - 97, count });
      i = j;
    }
    blocks.push(segs);
  }
  return blocks;
}

/**
 * The choices of one played block: the task each step ran, and what the
 * continuation rule would have picked there.
 */
export interface BlockChoices {
  readonly chosen: ArrayLike<number>;
  readonly next: ArrayLike<number>;
  readonly length: number;
}

/** The shortest string that replays the choices: each block up to its last step off the continuation rule. */
export function formatSchedule(blocks: readonly BlockChoices[]): string {
  const out: string[] = [];
  for (const b of blocks) {
    let last = -1;
    for (let i = 0; i < b.length; i++) if (b.chosen[i] !== b.next[i]) last = i;
    let s = "";
    for (let i = 0; i <= last; ) {
      const t = b.chosen[i]!;
      let j = i + 1;
      while (j <= last && b.chosen[j] === t) j++;
      s += taskLetter(t) + (j - i === 1 ? "" : String(j - i));
      i = j;
    }
    out.push(s === "" ? "-" : s);
  }
  while (out.length > 1 && out[out.length - 1] === "-") out.pop();
  return out.length === 0 ? "-" : out.join("/");
}

/** Why a schedule cannot fit a scenario with `blocks` concurrently blocks, or null. */
export function scheduleMisfit(script: Schedule, blocks: number): string | null {
  if (script.length <= Math.max(1, blocks) && script.slice(blocks).every((b) => b.length === 0)) return null;
  return `the schedule has ${script.length} block${script.length === 1 ? "" : "s"}, the scenario ${blocks} concurrently block${blocks === 1 ? "" : "s"}`;
}

/** Plays a parsed schedule; throws ScheduleError where it does not fit the scenario. */
export class ScriptPolicy implements SchedulePolicy {
  private block = -1;
  private seg = 0;
  private left = 0;

  constructor(private readonly script: Schedule) {}

  blockStart(block: number): void {
    this.checkUsedUp();
    this.block = block;
    this.seg = 0;
    this.left = this.segments()[0]?.count ?? 0;
  }

  private segments(): readonly Segment[] {
    return this.script[this.block] ?? [];
  }

  choose(s: BlockState): number {
    const segs = this.segments();
    while (this.left === 0 && this.seg < segs.length) {
      this.seg++;
      this.left = segs[this.seg]?.count ?? 0;
    }
    if (this.seg >= segs.length) return s.next;
    const want = segs[this.seg]!.task;
    const where = `block ${s.block + 1}, step ${s.step + 1}`;
    if (want >= s.tasks.length) {
      throw new ScheduleError(`${where}: the schedule names task ${taskLetter(want)}, but the block has ${s.tasks.length} tasks (a to ${taskLetter(s.tasks.length - 1)})`, s.block);
    }
    if ((s.enabled & (1 << want)) === 0) {
      const t = s.tasks[want]!;
      if (t.done) throw new ScheduleError(`${where}: the schedule runs task ${taskLetter(want)}, which ended after ${t.steps} step${t.steps === 1 ? "" : "s"}`, s.block);
      const lock = t.last?.what ?? "a lock";
      const holder = s.tasks.find((o) => o.task === (t.key as { holder: unknown } | null)?.holder);
      throw new ScheduleError(`${where}: the schedule runs task ${taskLetter(want)}, which waits for ${lock}${holder === undefined ? "" : `, held by ${taskLetter(holder.index)}`}`, s.block);
    }
    this.left--;
    return want;
  }

  /** After the run: a block that ended with steps of the schedule left does not fit. */
  finish(): void {
    this.checkUsedUp();
  }

  private checkUsedUp(): void {
    if (this.block < 0) return;
    const segs = this.segments();
    const rest = segs.slice(this.seg).map((x, i) => ({ ...x, count: i === 0 ? this.left : x.count })).filter((x) => x.count > 0);
    if (rest.length > 0) {
      const text = rest.map((x) => taskLetter(x.task) + (x.count === 1 ? "" : String(x.count))).join("");
      throw new ScheduleError(`block ${this.block + 1} ended with the schedule's ${shown(text)} left to play: every task had ended`, this.block);
    }
  }
}
