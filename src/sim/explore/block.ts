/**
 * One `concurrently:` block played on a schedule: each task list runs as its
 * own task (a path that runs its events in order), and a policy picks, at
 * every scheduling point, which runnable task takes the next step. A step
 * runs a task from the point it stands at to its next point. A task that
 * stands at a lock another task holds is not runnable; no
 * runnable task while some have not ended is a deadlock.
 *
 * What the task does next is what its last point announced (the model
 * yields before it takes a lock or touches shared state): the explorer's
 * partial-order reduction reads it as `op` and `key` (docs/explore.md).
 */
import { DeadlockError, type Path, type Step, type Task } from "../../base/path.ts";
import type { Mutex } from "../../base/mutex.ts";

/** What a task's next step does, as its last point announced it. */
export const OP_LOCAL = 0;
export const OP_READ = 1;
export const OP_WRITE = 2;
export const OP_ACQUIRE = 3;

export class BlockTask {
  /** Its next step: OP_LOCAL (nothing shared announced), OP_READ, OP_WRITE or OP_ACQUIRE. */
  op = OP_LOCAL;
  /** What the next step touches: the lock (OP_ACQUIRE) or the state's name (read, write). */
  key: Mutex | string | null = null;
  /** The last point it yielded (null before its first step and after its end). */
  last: Step | null = null;
  done = false;
  steps = 0;
  constructor(
    /** Its index in the block: a, b, c... in a schedule. */
    readonly index: number,
    readonly task: Task,
    readonly path: Path<void>,
  ) {}

  /** Whether it can take a step: not ended, and not standing at a lock another task holds. */
  runnable(): boolean {
    if (this.done) return false;
    if (this.op !== OP_ACQUIRE) return true;
    const h = (this.key as Mutex).holder;
    return h === null || h === this.task;
  }
}

/** Whether two next steps, by the points they start at, commute: neither takes a lock the other takes, nor touches state the other writes. */
export function independentOps(x: number, kx: unknown, y: number, ky: unknown): boolean {
  if (x === OP_LOCAL || y === OP_LOCAL) return true;
  if (kx !== ky) return true;
  if (x === OP_ACQUIRE || y === OP_ACQUIRE) return x !== y;
  return x === OP_READ && y === OP_READ;
}

/** A task letter: a for the first list of a block. */
export function taskLetter(i: number): string {
  return String.fromCharCode(97 + i);
}

/** The view a policy has of a block at a scheduling point. */
export interface BlockState {
  /** The block's index among the scenario's concurrently blocks (0-based). */
  readonly block: number;
  readonly tasks: readonly BlockTask[];
  /** Bit i set: task i is runnable (never 0 when a policy is asked). */
  readonly enabled: number;
  /** The task that took the previous step of this block, or -1 at its start. */
  readonly last: number;
  /** Steps taken in this block so far. */
  readonly step: number;
  /** What the continuation rule picks: `last` if runnable, else the lowest runnable task. */
  readonly next: number;
}

/** Picks the task that takes the next step; -1 abandons the run (the explorer's pruned branches). */
export interface SchedulePolicy {
  choose(s: BlockState): number;
  /** After the chosen task's step: the devices, groups and locks it touched (the model's touch tracking; null: not tracked). */
  stepped?(s: BlockState, touched: readonly object[] | null): void;
  /** Called when a block starts. */
  blockStart?(block: number, tasks: number): void;
  /** Called when a block ends, however it ends (tasks that did not end stand at their next point). */
  blockEnd?(s: BlockState): void;
}

export type BlockEnd =
  | { readonly kind: "done" }
  | { readonly kind: "abandoned" }
  | { readonly kind: "deadlock"; readonly message: string }
  /** The model threw in a task's step: it did not expect that interleaving (a model bug, or a state the kernel would oops in). */
  | { readonly kind: "exception"; readonly message: string };

const DONE: BlockEnd = { kind: "done" };
const ABANDONED: BlockEnd = { kind: "abandoned" };

/** Where a block reports each step (the runner checks invariants there and traces task switches). */
export interface BlockHooks {
  /** Before task `t` steps (its `steps` not yet counted). */
  before(t: BlockTask, st: BlockState): void;
  /** After the step. */
  after(t: BlockTask, st: BlockState): void;
}

class State implements BlockState {
  enabled = 0;
  last = -1;
  step = 0;
  next = 0;
  constructor(
    readonly block: number,
    readonly tasks: readonly BlockTask[],
  ) {}
}

/** The point a task yielded, as op and key. */
function announce(t: BlockTask, p: Step): void {
  t.last = p;
  switch (p.op) {
    case "lock":
    case "blocked":
      t.op = OP_ACQUIRE;
      t.key = p.lock;
      return;
    case "read":
      t.op = OP_READ;
      t.key = p.what;
      return;
    case "write":
      t.op = OP_WRITE;
      t.key = p.what;
      return;
    default:
      t.op = OP_LOCAL;
      t.key = null;
  }
}

/**
 * Plays a block to its end on `policy`. `sched` is the machine's scheduling
 * state (points on for the block's length). Returns how the block ended.
 */
export function runBlock(
  sched: { points: boolean; current: Task },
  block: number,
  tasks: readonly BlockTask[],
  policy: SchedulePolicy,
  hooks: BlockHooks,
): BlockEnd {
  const st = new State(block, tasks);
  const n = tasks.length;
  policy.blockStart?.(block, n);
  const prevPoints = sched.points;
  const prevTask = sched.current;
  sched.points = true;
  try {
    for (;;) {
      let enabled = 0;
      let undone = 0;
      for (let i = 0; i < n; i++) {
        const t = tasks[i]!;
        if (!t.done) undone++;
        if (t.runnable()) enabled |= 1 << i;
      }
      if (undone === 0) return DONE;
      if (enabled === 0) return { kind: "deadlock", message: deadlockMessage(tasks) };
      st.enabled = enabled;
      st.next = st.last >= 0 && (enabled & (1 << st.last)) !== 0 ? st.last : 31 - Math.clz32(enabled & -enabled);
      const c = policy.choose(st);
      if (c < 0) return ABANDONED;
      const t = tasks[c]!;
      hooks.before(t, st);
      sched.current = t.task;
      let r: IteratorResult<Step, void>;
      try {
        r = t.path.next();
      } catch (e) {
        t.done = true;
        if (e instanceof DeadlockError) return { kind: "deadlock", message: `${taskLetter(c)}: ${e.message}` };
        if (!(e instanceof Error)) throw e;
        const at = /\n\s+at (\S+)/.exec(e.stack ?? "")?.[1];
        return { kind: "exception", message: `${taskLetter(c)}: ${e.name}: ${e.message}${at === undefined ? "" : ` (in ${at})`}` };
      } finally {
        sched.current = prevTask;
      }
      t.steps++;
      st.step++;
      st.last = c;
      if (r.done === true) {
        t.done = true;
        t.last = null;
        t.op = OP_LOCAL;
        t.key = null;
      } else announce(t, r.value);
      hooks.after(t, st);
    }
  } finally {
    sched.points = prevPoints;
    sched.current = prevTask;
    policy.blockEnd?.(st);
  }
}

function deadlockMessage(tasks: readonly BlockTask[]): string {
  const waits = tasks
    .filter((t) => !t.done)
    .map((t) => {
      const m = t.key as Mutex;
      const holder = tasks.find((o) => o.task === m.holder);
      return `${taskLetter(t.index)} waits for ${m.lockName}, held by ${holder === undefined ? `T${m.holder?.id ?? "?"}` : taskLetter(holder.index)}`;
    });
  return `every task that has not ended waits for a lock: ${waits.join("; ")}`;
}
