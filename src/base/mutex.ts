/**
 * Sleeping locks of the model (struct mutex): `iommu_probe_device_lock`,
 * `group->mutex`, the device lock. Taking and dropping are scheduling
 * points; a path that finds the lock held yields `blocked` until the owner
 * drops it. Locks are not recursive, as in the kernel.
 */
import { LockDep } from "./lockdep.ts";
import { DeadlockError, NO_POINT, touch, type Path, type Sched, type Task } from "./path.ts";

export class Mutex {
  /** The task holding the lock, or null. */
  holder: Task | null = null;
  /** The step that last touched the structure embedding this lock (see `touch` in path.ts). */
  touchStamp = -1;
  /**
   * `lockKind` names the lock (e.g. `iommu_probe_device_lock`). Structures
   * that embed their mutex (struct device, struct iommu_group) extend this
   * class and name the lock after themselves.
   */
  constructor(private readonly lockKind: string) {}

  get lockName(): string {
    return this.lockKind;
  }

  /** The lock's class for lock-order checking (lockdep's): its kind, whatever the instance. */
  get lockClass(): string {
    return this.lockKind;
  }
}

/** A lock operation with nothing to yield (run to completion, the lock free). */
const DONE = NO_POINT;

// @kernel: mutex_lock
export function mutexLock(s: Sched, m: Mutex): Path {
  if (!s.points && m.holder === null) {
    if (s.touched !== null) touch(s, m);
    m.holder = s.current;
    return DONE;
  }
  return mutexLockSlow(s, m);
}

function* mutexLockSlow(s: Sched, m: Mutex): Path {
  if (s.points) yield { op: "lock", what: m.lockName, lock: m };
  while (m.holder !== null) {
    if (m.holder === s.current) {
      throw new DeadlockError(`${s.current.name} takes ${m.lockName}, which it already holds (AA deadlock)`);
    }
    yield { op: "blocked", what: m.lockName, lock: m };
  }
  m.holder = s.current;
  // Touched by the step that takes it (with points on, not the one that stops before it).
  if (s.touched !== null) touch(s, m);
  if (s.points) (s.lockdep ??= new LockDep()).acquired(s, s.current, m);
}

// @kernel: mutex_unlock
export function mutexUnlock(s: Sched, m: Mutex): Path {
  if (m.holder !== s.current) unlockMisuse(s, m);
  else if (s.lockdep !== null) s.lockdep.released(s.current, m);
  m.holder = null;
  return s.points ? unlockPoint(m) : DONE;
}

/**
 * A release by a task that does not hold the lock (rule I36 lock-misuse):
 * the kernel's debug check warns (DEBUG_LOCKS_WARN_ON in
 * __mutex_unlock_slowpath) and the unlock goes on, so the lock ends free
 * whoever held it; the model does the same after recording the violation.
 */
// @kernel: __mutex_unlock_slowpath (debug_mutex_unlock: owner check)
function unlockMisuse(s: Sched, m: Mutex): void {
  const h = m.holder;
  const how = h === null ? "nobody holds it (released twice, or never taken)" : `${h.name} holds it (released by a task that does not own it)`;
  s.violation(`I36 lock-misuse: ${m.lockName}: ${s.current.name} releases it while ${how}; only its owner may release a mutex, once`);
  if (h !== null && s.lockdep !== null) s.lockdep.released(h, m);
}

function* unlockPoint(m: Mutex): Path {
  yield { op: "unlock", what: m.lockName, lock: m };
}

// @kernel: lockdep_assert_held
export function mutexHeld(s: Sched, m: Mutex): boolean {
  return m.holder === s.current;
}
