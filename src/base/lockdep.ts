/**
 * Lock-order checking in the manner of lockdep (kernel/locking/lockdep.c),
 * for a run whose scheduler wants points (an exploring one): every lock a
 * task takes while holding another records an edge "held class -> taken
 * class"; an edge that closes a cycle is an inversion, two orders that can
 * deadlock when two tasks take them at once (rule I37 lock-order). Classes
 * are the lock kinds (`iommu_probe_device_lock`, `group->mutex`,
 * `device_lock`, `deferred_probe_mutex`); nesting within one class (a
 * parent's device lock then its child's) is not an edge, as lockdep's
 * nesting annotations have it. Nothing here runs while points are off.
 */
import type { Mutex } from "./mutex.ts";
import type { Sched, Task } from "./path.ts";

/** Where an edge was first seen: which task took which lock while holding which. */
interface EdgeSite {
  task: string;
  held: string;
  taken: string;
  /** The class taken (the edge's head). */
  to: string;
}

export class LockDep {
  /** The locks each task holds (by task id), in the order taken. */
  private readonly held = new Map<number, Mutex[]>();
  /** Order edges between classes: outer class -> inner class -> the first place seen. */
  private readonly edges = new Map<string, Map<string, EdgeSite>>();

  /** `task` now holds `m`: records the order edges from what it held. */
  // @kernel: lock_acquire (lockdep's check_prev_add)
  acquired(s: Sched, task: Task, m: Mutex): void {
    let list = this.held.get(task.id);
    if (list === undefined) {
      list = [];
      this.held.set(task.id, list);
    }
    for (const h of list) if (h.lockClass !== m.lockClass) this.addEdge(s, task, h, m);
    list.push(m);
  }

  /** `task` no longer holds `m` (its own unlock, or another task's misuse). */
  // @kernel: lock_release
  released(task: Task, m: Mutex): void {
    const list = this.held.get(task.id);
    if (list === undefined) return;
    const i = list.lastIndexOf(m);
    if (i >= 0) list.splice(i, 1);
  }

  /** The locks `task` holds, outermost first (a copy). */
  heldBy(task: Task): Mutex[] {
    return [...(this.held.get(task.id) ?? [])];
  }

  private addEdge(s: Sched, task: Task, outer: Mutex, inner: Mutex): void {
    const from = outer.lockClass;
    const to = inner.lockClass;
    let out = this.edges.get(from);
    if (out === undefined) {
      out = new Map();
      this.edges.set(from, out);
    }
    if (out.has(to)) return;
    const site: EdgeSite = { task: task.name, held: outer.lockName, taken: inner.lockName, to };
    out.set(to, site);
    const back = this.path(to, from);
    if (back === null) return;
    const reverse = back.map((e) => `${e.task} took ${e.taken} holding ${e.held}`).join(", then ");
    s.violation(
      `I37 lock-order: ${from} vs ${to}: ${task.name} took ${inner.lockName} holding ${outer.lockName} (${from} -> ${to}), but ${reverse} (${[to, ...back.map((e) => e.to)].join(" -> ")}): two tasks taking them in these orders at once deadlock`,
    );
  }

  /** The edges of a path from class `a` to class `b` already recorded, or null. */
  private path(a: string, b: string): EdgeSite[] | null {
    const seen = new Set<string>([a]);
    const walk = (c: string): EdgeSite[] | null => {
      const out = this.edges.get(c);
      if (out === undefined) return null;
      for (const [next, site] of out) {
        if (next === b) return [site];
        if (seen.has(next)) continue;
        seen.add(next);
        const rest = walk(next);
        if (rest !== null) return [site, ...rest];
      }
      return null;
    };
    return walk(a);
  }
}
