/**
 * Sleeping locks of the model (struct mutex): `iommu_probe_device_lock`,
 * `group->mutex`, the device lock. Taking and dropping are scheduling
 * points; a path that finds the lock held yields `blocked` until the owner
 * drops it. Locks are not recursive, as in the kernel.
 */
import { DeadlockError, type Path, type Sched, type Task } from "./path.ts";

export class Mutex {
  owner: Task | null = null;
  constructor(readonly name: string) {}
}

// @kernel: mutex_lock
export function* mutexLock(s: Sched, m: Mutex): Path {
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
export function* mutexUnlock(s: Sched, m: Mutex): Path {
  if (m.owner !== s.current) {
    throw new DeadlockError(`${s.current.name} releases ${m.name}, which it does not hold`);
  }
  m.owner = null;
  if (s.points) yield { op: "unlock", what: m.name, lock: m };
}

// @kernel: lockdep_assert_held
export function mutexHeld(s: Sched, m: Mutex): boolean {
  return m.owner === s.current;
}
