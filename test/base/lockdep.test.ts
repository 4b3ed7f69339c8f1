/**
 * The lock rules checked as they happen (docs/invariants.md): a release by
 * a task that does not hold the lock (I36 lock-misuse), and two orders of
 * taking two lock classes (I37 lock-order), driven by hand through the
 * manual scheduler. The model's own paths never do either; these paths do.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MachineContext } from "../../src/base/context.ts";
import { Mutex, mutexLock, mutexUnlock } from "../../src/base/mutex.ts";
import { access, runPath, type Path } from "../../src/base/path.ts";
import { EVENT_RULES, violationKind } from "../../src/lib/diagnostics.ts";
import { Scheduler } from "../../src/sim/scheduler.ts";

function setup() {
  const ctx = new MachineContext();
  const probe = new Mutex("iommu_probe_device_lock");
  const deferred = new Mutex("deferred_probe_mutex");
  return { ctx, s: ctx.sched, probe, deferred };
}

describe("I36 lock-misuse", () => {
  it("a lock released twice is recorded, and the path goes on with the lock free", () => {
    const { ctx, s, probe } = setup();
    const twice = function* (): Path<string> {
      yield* mutexLock(s, probe);
      yield* mutexUnlock(s, probe);
      yield* mutexUnlock(s, probe);
      return "went on";
    };
    expect(runPath(twice())).toBe("went on");
    expect(probe.holder).toBeNull();
    expect(ctx.diag.violations).toEqual([
      "I36 lock-misuse: iommu_probe_device_lock: main releases it while nobody holds it (released twice, or never taken); only its owner may release a mutex, once",
    ]);
  });

  it("a lock released by a task that does not own it is recorded, and is free afterwards, as the kernel's unlock leaves it", () => {
    const { ctx, s, probe } = setup();
    const sched = new Scheduler(s);
    const owner = sched.spawn("owner", function* (): Path {
      yield* mutexLock(s, probe);
      yield* access(s, "read", "dev->iommu a");
      yield* mutexUnlock(s, probe);
    });
    const thief = sched.spawn("thief", function* (): Path {
      yield* mutexUnlock(s, probe);
    });
    // owner: the lock point, then it holds the lock and stops at the access point.
    sched.step(owner);
    sched.step(owner);
    expect(probe.holder).toBe(owner.task);
    sched.finish(thief);
    expect(probe.holder).toBeNull();
    expect(ctx.diag.violations).toEqual([
      "I36 lock-misuse: iommu_probe_device_lock: thief releases it while owner holds it (released by a task that does not own it); only its owner may release a mutex, once",
    ]);
    // The owner's own unlock then finds the lock free: a second misuse.
    sched.finish(owner);
    expect(ctx.diag.violations[1]).toMatch(/^I36 lock-misuse: iommu_probe_device_lock: owner releases it while nobody holds it/);
  });

  it("taking a lock twice on one path is still a deadlock (DeadlockError), not a misuse", () => {
    const { ctx, s, probe } = setup();
    const sched = new Scheduler(s);
    const t = sched.spawn("t", function* (): Path {
      yield* mutexLock(s, probe);
      yield* mutexLock(s, probe);
    });
    expect(() => sched.finish(t)).toThrow(/already holds \(AA deadlock\)/);
    expect(ctx.diag.violations).toEqual([]);
  });
});

describe("I37 lock-order", () => {
  /** Takes `outer` then `inner`, and drops both. */
  const nested = (s: MachineContext["sched"], outer: Mutex, inner: Mutex) =>
    function* (): Path {
      yield* mutexLock(s, outer);
      yield* mutexLock(s, inner);
      yield* mutexUnlock(s, inner);
      yield* mutexUnlock(s, outer);
    };

  it("two tasks taking two lock classes in opposite orders is an inversion, even when they never overlap", () => {
    const { ctx, s, probe, deferred } = setup();
    const sched = new Scheduler(s);
    const a = sched.spawn("walk", nested(s, probe, deferred));
    sched.finish(a);
    expect(ctx.diag.violations).toEqual([]);
    const b = sched.spawn("bind", nested(s, deferred, probe));
    sched.finish(b);
    expect(ctx.diag.violations).toEqual([
      "I37 lock-order: deferred_probe_mutex vs iommu_probe_device_lock: bind took iommu_probe_device_lock holding deferred_probe_mutex (deferred_probe_mutex -> iommu_probe_device_lock), but walk took deferred_probe_mutex holding iommu_probe_device_lock (iommu_probe_device_lock -> deferred_probe_mutex): two tasks taking them in these orders at once deadlock",
    ]);
  });

  it("a cycle through a third class is found too", () => {
    const { ctx, s, probe, deferred } = setup();
    const group = new Mutex("group->mutex");
    const sched = new Scheduler(s);
    sched.finish(sched.spawn("t1", nested(s, probe, group)));
    sched.finish(sched.spawn("t2", nested(s, group, deferred)));
    expect(ctx.diag.violations).toEqual([]);
    sched.finish(sched.spawn("t3", nested(s, deferred, probe)));
    expect(ctx.diag.violations).toHaveLength(1);
    expect(ctx.diag.violations[0]).toMatch(
      /^I37 lock-order: deferred_probe_mutex vs iommu_probe_device_lock: t3 took .* but t1 took group->mutex holding iommu_probe_device_lock, then t2 took deferred_probe_mutex holding group->mutex \(iommu_probe_device_lock -> group->mutex -> deferred_probe_mutex\)/,
    );
  });

  it("nesting within one class (two device locks) is not an edge, and nothing is recorded with points off", () => {
    const { ctx, s, probe, deferred } = setup();
    const d1 = new Mutex("device_lock");
    const d2 = new Mutex("device_lock");
    const sched = new Scheduler(s);
    sched.finish(sched.spawn("t1", nested(s, d1, d2)));
    sched.finish(sched.spawn("t2", nested(s, d2, d1)));
    expect(ctx.diag.violations).toEqual([]);
    // Points off (a default run): the same inversion is not looked for.
    const off = new MachineContext();
    runPath(nested(off.sched, probe, deferred)());
    runPath(nested(off.sched, deferred, probe)());
    expect(off.diag.violations).toEqual([]);
    expect(off.sched.lockdep).toBeNull();
  });
});

describe("the rules' kinds", () => {
  it("every message of I34-I37 starts with its rule id, and docs/invariants.md has a section for each", () => {
    const doc = readFileSync("docs/invariants.md", "utf8");
    for (const [kind, rule] of Object.entries(EVENT_RULES)) {
      expect(doc).toContain(`### ${rule}\n`);
      expect(violationKind(`${rule}: x: y`)).toBe(kind);
    }
    expect(violationKind("I4 group-membership: x")).toBeNull();
  });
});
