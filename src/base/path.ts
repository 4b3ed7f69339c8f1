/**
 * The concurrency seam. Lifecycle paths that the kernel may run
 * concurrently (IOMMU registration, device add/del, driver bind/unbind) are
 * written as generator functions (`Path`) that yield a `Step` at each named
 * point: taking or dropping a lock, waiting for one, or touching shared
 * state. A scheduler (sim/) decides which path runs next. When `points` is
 * off the paths only yield when they would block, so running one to
 * completion costs no step objects at all. Hot data paths (map, unmap,
 * translate) are plain functions and never yield.
 */
import type { LockDep } from "./lockdep.ts";
import type { Mutex } from "./mutex.ts";

export type StepOp = "lock" | "unlock" | "blocked" | "read" | "write";

export interface Step {
  op: StepOp;
  /** The lock or the piece of shared state, by its kernel name. */
  what: string;
  lock: Mutex | null;
}

export type Path<T = void> = Generator<Step, T, undefined>;

export interface Task {
  readonly id: number;
  readonly name: string;
}

export const MAIN_TASK: Task = { id: 0, name: "main" };

/** Per-machine scheduling state, shared by every layer's paths. */
export class Sched {
  /** Yield at every named point (set by an exploring scheduler). */
  points = false;
  /** The task whose path is running now. */
  current: Task = MAIN_TASK;
  /**
   * While a step runs with tracking on: every device and group whose lock it
   * took or whose IOMMU state it changed outside one (probe, release), each
   * once. The invariant checker reads only these after the step.
   */
  touched: Mutex[] | null = null;
  /** Tells one step's touches from the last one's (Mutex.touchStamp). */
  touchEpoch = 0;
  /**
   * Where the model's own rule checks record a violation as it happens (the
   * machine's diagnostics sink: MachineContext sets it), for the rules about
   * locks and tasks (docs/invariants.md, I34-I37).
   */
  violation: (message: string) => void = ignoreViolation;
  /** The locks each task holds and the lock-order edges seen (base/lockdep.ts): kept only while points are on. */
  lockdep: LockDep | null = null;
  private nextTaskId = 1;

  newTask(name: string): Task {
    return { id: this.nextTaskId++, name };
  }
}

function ignoreViolation(_message: string): void {}

/** A path blocked on a lock that nobody will release: a deadlock in the model. */
export class DeadlockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeadlockError";
  }
}

/**
 * Runs a path to completion on the current task (the trivial schedule).
 * Blocking here means the path waits for a lock held by a path that is not
 * running, which in a single-task run can only be a deadlock.
 */
export function runPath<T>(path: Path<T>): T {
  for (;;) {
    const r = path.next();
    if (r.done) return r.value;
    if (r.value.op === "blocked") {
      throw new DeadlockError(`blocked on ${r.value.what} with no other path to release it`);
    }
  }
}

/** The iterator of a point that does not yield: run to completion, a path makes no step objects for it. */
export const NO_POINT: Path = {
  next: () => NO_POINT_DONE,
  return: () => NO_POINT_DONE,
  throw: (e: unknown) => {
    throw e;
  },
  [Symbol.iterator]() {
    return this;
  },
} as Path;
const NO_POINT_DONE: IteratorReturnResult<void> = Object.freeze({ done: true, value: undefined });

/**
 * A plain function where a path is expected (a hook, an event that cannot
 * block): it runs `f` when first stepped and ends with its result, making
 * no step objects.
 */
export function callPath<T>(f: () => T): Path<T> {
  return new CallPath(f) as unknown as Path<T>;
}

class CallPath<T> {
  private f: (() => T) | null;
  constructor(f: () => T) {
    this.f = f;
  }
  next(): IteratorResult<Step, T> {
    const f = this.f;
    if (f === null) return { done: true, value: undefined as T };
    this.f = null;
    return { done: true, value: f() };
  }
  return(value: T): IteratorResult<Step, T> {
    this.f = null;
    return { done: true, value };
  }
  throw(e: unknown): never {
    this.f = null;
    throw e;
  }
  [Symbol.iterator](): this {
    return this;
  }
}

/** A shared-state access point (`yield* access(...)`): a step only when the scheduler wants points. */
export function access(s: Sched, op: "read" | "write", what: string): Path {
  return s.points ? accessPoint(op, what) : NO_POINT;
}

function* accessPoint(op: "read" | "write", what: string): Path {
  yield { op, what, lock: null };
}

/** Records that a step touched `m` (a device or a group, by its embedded lock); a no-op unless tracking is on. */
export function touch(s: Sched, m: Mutex): void {
  const t = s.touched;
  if (t !== null && m.touchStamp !== s.touchEpoch) {
    m.touchStamp = s.touchEpoch;
    t.push(m);
  }
}

/** Starts recording the objects the next step touches (the previous step's list is reused). */
export function trackTouches(s: Sched): Mutex[] {
  s.touchEpoch++;
  if (s.touched === null) s.touched = [];
  else s.touched.length = 0;
  return s.touched;
}
