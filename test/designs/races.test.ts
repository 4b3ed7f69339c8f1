/**
 * The races of "Solve iommu probe races around iommu_fwspec" and its
 * follow-ups, each driven by hand through the manual scheduler: under the
 * kernels without the global lock (v6.6: iommu_probe_device_lock inside
 * __iommu_probe_device only) one interleaving uses a fwspec a failed probe
 * freed (I34) or reads a dev_iommu another task is still filling in (I35);
 * under v6.7's global lock the same schedule cannot happen (the second
 * task waits for the lock) and nothing is recorded. The explorer searches
 * all interleavings; these tests pin the one each rule names.
 */
import { describe, expect, it } from "vitest";
import type { Machine } from "../../src/sim/machine.ts";
import { eventPath } from "../../src/sim/runner.ts";
import type { EventSpec } from "../../src/sim/scenario/schema.ts";
import { Scheduler, type SchedTask } from "../../src/sim/scheduler.ts";
import { boot, dev, snapshot } from "../helpers.ts";

/** Steps `t` until its last point is `point` ("op what"); fails the test if it never gets there. */
function until(sched: Scheduler, t: SchedTask, point: string): void {
  const seen: string[] = [];
  const got = sched.runUntil(t, (last) => {
    const p = last === null ? "" : `${last.op} ${last.what}`;
    seen.push(p);
    return p === point;
  });
  if (!got) throw new Error(`${t.task.name} ended without reaching ${point}; its points: ${seen.join(", ")}`);
}

function spawn(sched: Scheduler, m: Machine, name: string, e: EventSpec): SchedTask {
  return sched.spawn(name, () => eventPath(m, e).path);
}

/**
 * a's driver bound at boot while smmu0 was not registered: under
 * fwspec-carries-ops the bind deferred and left the otherwise-empty fwspec
 * (no ops) naming smmu0. Then smmu0 registers while a's driver is bound
 * again.
 */
const DEFERRED = (kernel: string) => `
name: fwspec race
boot: {kernel: ${kernel}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0, registered: false}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]]}
drivers:
  - {name: da, bus: platform, match: [a]}
`;

describe("I34 use-after-free: a failed probe frees the fwspec of_iommu_configure holds", () => {
  /**
   * bind: of_iommu_configure takes a's fwspec pointer and is about to read
   * `fwspec->ops`. register: smmu0's bus walk probes a; arm-smmu-v3's
   * probe_device refuses the ops-less fwspec, and iommu_init_device's error
   * path frees dev->iommu with it. bind then reads the freed fwspec.
   */
  function race(kernel: string) {
    const m = boot(DEFERRED(kernel));
    expect(dev(snapshot(m), "a")).toMatchObject({ probe: "deferred", fwspec: { iommu: "smmu0" } });
    const sched = new Scheduler(m.dc.sched);
    const bind = spawn(sched, m, "bind", { driver_bind: { device: "a", driver: "da" } });
    until(sched, bind, "read fwspec a");
    const reg = spawn(sched, m, "register", { iommu_register: "smmu0" });
    return { m, sched, bind, reg };
  }

  it("v6.6 (probe lock inside __iommu_probe_device only): the walk frees the fwspec between bind's pointer and its use", () => {
    const { m, sched, bind, reg } = race("v6.6");
    // The walk's probe of a fails and frees dev->iommu, then the fwspec in it.
    until(sched, reg, "write fwspec a");
    sched.step(reg);
    expect(dev(snapshot(m), "a").dev_iommu).toBe("none");
    expect(m.ctx.diag.violations).toEqual([]);
    sched.step(bind);
    expect(m.ctx.diag.violations).toEqual(["I34 use-after-free: a: bind reads the fwspec of a it took before register in dev_iommu_free freed it"]);
    // The model goes on as the kernel would if the read survived: the bind parses again and binds.
    expect(sched.finish(bind)).toBe(0);
    expect(sched.finish(reg)).toBe(0);
  });

  it("none (v6.1) alike", () => {
    const { m, sched, bind, reg } = race("v6.1");
    until(sched, reg, "write fwspec a");
    sched.step(reg);
    sched.step(bind);
    expect(m.ctx.diag.violations).toEqual(["I34 use-after-free: a: bind reads the fwspec of a it took before register in dev_iommu_free freed it"]);
  });

  it("v6.7 (global lock around fwspec lookup and creation): the walk waits for the lock bind holds; nothing is freed under it", () => {
    const { m, sched, bind, reg } = race("v6.7");
    until(sched, reg, "blocked iommu_probe_device_lock");
    expect(m.k.probeLock.holder).toBe(bind.task);
    expect(sched.finish(bind)).toBe(0);
    expect(sched.finish(reg)).toBe(0);
    expect(dev(snapshot(m), "a")).toMatchObject({ iommu: "smmu0", driver: "da", probe: "bound" });
    expect(m.ctx.diag.violations).toEqual([]);
  });
});

/** smmu0 registered, a not added yet; a's driver registered. */
const ADD = (kernel: string) => `
name: add and bind
boot: {kernel: ${kernel}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]], added: false}
drivers:
  - {name: da, bus: platform, match: [a]}
`;

describe("I35 half-initialised: a dev_iommu read while another task probes it", () => {
  /**
   * add: device_add's notifier probes a (no fwspec yet under
   * driver-probe-time) and has started filling its dev_iommu in (the ops
   * lookup). bind: a sysfs bind of a runs of_iommu_configure, which reads
   * dev->iommu.
   */
  function race(kernel: string) {
    const m = boot(ADD(kernel));
    const sched = new Scheduler(m.dc.sched);
    const add = spawn(sched, m, "add", { device_add: "a" });
    until(sched, add, "read iommu_device_list");
    expect(m.devices.get("a")!.dev.iommu).not.toBeNull();
    const bind = spawn(sched, m, "bind", { driver_bind: { device: "a", driver: "da" } });
    return { m, sched, add, bind };
  }

  it("v6.6: the bind's unlocked of_iommu_configure reads the dev_iommu device_add's probe is filling in", () => {
    const { m, sched, bind } = race("v6.6");
    until(sched, bind, "read dev->iommu a");
    sched.step(bind);
    expect(m.ctx.diag.violations[0]).toBe("I35 half-initialised: a: bind reads the dev_iommu of a while add is still filling it in (__iommu_probe_device: probing it)");
  });

  it("v6.7: the bind's of_iommu_configure waits for the probe lock; nothing is seen half-built", () => {
    const { m, sched, add, bind } = race("v6.7");
    until(sched, bind, "blocked iommu_probe_device_lock");
    // add probes a (it fails: no fwspec yet), then waits for a's device lock, which bind holds.
    until(sched, add, "blocked device_lock(a)");
    expect(m.ctx.diag.violations).toEqual([]);
    expect(sched.finish(bind)).toBe(0);
    expect(sched.finish(add)).toBe(0);
    expect(m.ctx.diag.violations).toEqual([]);
    expect(dev(snapshot(m), "a")).toMatchObject({ iommu: "smmu0", driver: "da", probe: "bound" });
  });

  it("v6.6, the other way round: the probe reads the fwspec the bind is still building", () => {
    const m = boot(ADD("v6.6"));
    const sched = new Scheduler(m.dc.sched);
    const add = spawn(sched, m, "add", { device_add: "a" });
    // device_add has put a on the bus and is about to probe it.
    until(sched, add, "read dev->iommu_group a");
    const bind = spawn(sched, m, "bind", { driver_bind: { device: "a", driver: "da" } });
    // of_iommu_configure made the fwspec (and the dev_iommu for it) but has not added the ids.
    until(sched, bind, "write fwspec a");
    expect(m.ctx.diag.violations).toEqual([]);
    until(sched, add, "read iommu_device_list");
    expect(m.ctx.diag.violations).toEqual([
      "I35 half-initialised: a: add writes the dev_iommu of a while bind is still filling it in (iommu_fwspec_init: allocated for the fwspec being built)",
      "I35 half-initialised: a: add reads the fwspec of a while bind is still building it (iommu_fwspec_init, ids not all added)",
    ]);
  });
});

describe("the points the ready and unregister races need", () => {
  it("unregister during probe: iommu_release_device (no probe lock, in any kernel) frees a dev_iommu device_add's probe is filling in", () => {
    const m = boot(ADD("current"));
    const sched = new Scheduler(m.dc.sched);
    const add = spawn(sched, m, "add", { device_add: "a" });
    // The probe has linked a to smmu0 and is about to set its group.
    until(sched, add, "write dev->iommu_group a");
    const unreg = spawn(sched, m, "unregister", { iommu_unregister: "smmu0" });
    expect(sched.finish(unreg)).toBe(0);
    expect(m.ctx.diag.violations).toEqual(["I35 half-initialised: a: unregister writes the dev_iommu of a while add is still filling it in (__iommu_probe_device: probing it)"]);
    sched.finish(add);
    expect(m.ctx.diag.violations).toContain("I34 use-after-free: a: add writes the dev_iommu of a it took before unregister in iommu_release_device freed it");
  });

  it("ready: registration writes `ready smmu0` after its walk, and iommu_fwspec_init reads it (global-lock+ready only)", () => {
    const scen = (ser: string) => `
name: ready
boot: {strategy: {probe_serialisation: "${ser}"}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0, registered: false}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]]}
drivers:
  - {name: da, bus: platform, match: [a], registered: false}
`;
    for (const ser of ["global-lock", "global-lock+ready"]) {
      const m = boot(scen(ser));
      const sched = new Scheduler(m.dc.sched);
      const reg = spawn(sched, m, "register", { iommu_register: "smmu0" });
      // Listed, its walk not started: a client bind now finds the instance.
      until(sched, reg, "write iommu_device_list");
      sched.step(reg);
      const bind = spawn(sched, m, "bind", { driver_register: "da" });
      const points: string[] = [];
      while (sched.step(bind)) points.push(`${bind.last!.op} ${bind.last!.what}`);
      expect(points.includes("read ready smmu0"), ser).toBe(ser === "global-lock+ready");
      sched.finish(reg);
      const all: string[] = [];
      const m2 = boot(scen(ser));
      const s2 = new Scheduler(m2.dc.sched);
      const r2 = spawn(s2, m2, "register", { iommu_register: "smmu0" });
      while (s2.step(r2)) all.push(`${r2.last!.op} ${r2.last!.what}`);
      // Once, after the listing and the whole walk (the last probe's group lock).
      expect(all.filter((p) => p === "write ready smmu0")).toHaveLength(1);
      expect(all.indexOf("write ready smmu0")).toBeGreaterThan(all.lastIndexOf("unlock group->mutex(0)"));
      expect(all.indexOf("write iommu_device_list")).toBe(0);
      expect(m.ctx.diag.violations).toEqual([]);
    }
  });
});
