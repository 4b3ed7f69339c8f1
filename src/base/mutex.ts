/**
 * Sleeping locks of the model (struct mutex): `iommu_probe_device_lock`,
 * `group->mutex`, the device lock. Taking and dropping are scheduling
 * points; a path that finds the lock held yields `blocked` until the owner
 * drops it. Locks are not recursive, as in the kernel.
 */
import { DeadlockError, type Path, type Sched, type Task } from "./path.ts";

export class Mutex {
  owner: Task | null = null;
  /** `kind` names the lock (e.g. `group->mutex`); `of` what it belongs to, formatted only when a name is needed. */
  constructor(
    private readonly kind: string,
    private readonly of: { toString(): string } | null = null,
  ) {}

  get name(): string {
    return this.of === null ? this.kind : `${this.kind}(${String(this.of)})`;
  }
}

/** An iterator that is already done: the fast path when a lock operation has nothing to yield. */
const DONE: Path = {
  next: () => ({ done: true, value: undefined }),
  return: () => ({ done: true, value: undefined }),
  throw: (e: unknown) => {
    throw e;
  },
  [Symbol.iterator]() {
    return this;
  },
} as Path;

// @kernel: mutex_lock
export function mutexLock(s: Sched, m: Mutex): Path {
  if (!s.points && m.owner === null) {
    m.owner = s.current;
    return DONE;
  }
  return mutexLockSlow(s, m);
}

function* mutexLockSlow(s: Sched, m: Mutex): Path {
  if (s.points) yield { op: "lock", what: m.name, lock: m };
  while (m.owner !== null) {
    if (m.owner === s.current) {
      throw new DeadlockError(`${s.current.name} takes ${m.name}, which it already holds (AA deadlock)`);
    }
    yield { op: "blocked", what: m.name, lock: m };
  }
  m.owner = s.current;
}

// @kernel: mutex_unlock
export function mutexUnlock(s: Sched, m: Mutex): Path {
  if (m.owner !== s.current) {
    throw new DeadlockError(`${s.current.name} releases ${m.name}, which it does not hold`);
  }
  m.owner = null;
  return s.points ? unlockPoint(m) : DONE;
}

function* unlockPoint(m: Mutex): Path {
  yield { op: "unlock", what: m.name, lock: m };
}

// @kernel: lockdep_assert_held
export function mutexHeld(s: Sched, m: Mutex): boolean {
  return m.owner === s.current;
}
