/**
 * A minimal scheduler over lifecycle paths (the concurrency seam of
 * DESIGN.md): tasks are paths that yield at named points; the caller picks
 * which task takes the next step. A blocked task yields until the lock it
 * waits for is free. The default run of a scenario uses one task run to
 * completion; exploring interleavings builds on this.
 */
import { DeadlockError, type Path, type Sched, type Step, type Task } from "../base/path.ts";

export interface SchedTask<T = unknown> {
  readonly task: Task;
  readonly path: Path<T>;
  done: boolean;
  result: T | undefined;
  /** The last point the task yielded at. */
  last: Step | null;
}

export class Scheduler {
  readonly tasks: SchedTask[] = [];

  constructor(private readonly sched: Sched) {
    sched.points = true;
  }

  spawn<T>(name: string, make: () => Path<T>): SchedTask<T> {
    const task = this.sched.newTask(name);
    // The path's first statement runs on its own task.
    const prev = this.sched.current;
    this.sched.current = task;
    const path = make();
    this.sched.current = prev;
    const t: SchedTask<T> = { task, path, done: false, result: undefined, last: null };
    this.tasks.push(t as SchedTask);
    return t;
  }

  /** Runs `t` up to and including its next point; returns false once it has finished. */
  step<T>(t: SchedTask<T>): boolean {
    if (t.done) return false;
    const prev = this.sched.current;
    this.sched.current = t.task;
    try {
      const r = t.path.next();
      if (r.done) {
        t.done = true;
        t.result = r.value;
        t.last = null;
        return false;
      }
      t.last = r.value;
      return true;
    } finally {
      this.sched.current = prev;
    }
  }

  /** Steps `t` until `pred` holds after a step (or the task ends); returns whether it held. */
  runUntil<T>(t: SchedTask<T>, pred: (last: Step | null) => boolean): boolean {
    while (this.step(t)) if (pred(t.last)) return true;
    return false;
  }

  /** Runs `t` to its end; a task left blocked with nobody else running is a deadlock. */
  finish<T>(t: SchedTask<T>): T {
    while (this.step(t)) {
      if (t.last?.op === "blocked" && this.tasks.every((o) => o === t || o.done)) {
        throw new DeadlockError(`${t.task.name} is blocked on ${t.last.what} and no other task can run`);
      }
      if (t.last?.op === "blocked") throw new DeadlockError(`${t.task.name} blocked on ${t.last.what}: step the task that holds it first`);
    }
    return t.result as T;
  }
}
