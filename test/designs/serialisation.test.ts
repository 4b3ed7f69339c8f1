/**
 * probe_serialisation: without concurrency the four designs reach the same
 * states; what differs is which locks the probe paths take (shown by
 * stepping them with the scheduler, points on) and whether a listed
 * instance that has not finished its walk serves a client bind (`ready`,
 * shown by pausing a registration after it listed the instance).
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runPath } from "../../src/base/path.ts";
import { iommuFwspecInit } from "../../src/iommu/fwspec.ts";
import type { Machine } from "../../src/sim/machine.ts";
import { eventPath, runScenario } from "../../src/sim/runner.ts";
import { loadScenarioFile } from "../../src/sim/scenario/load.ts";
import { withStrategy, type EventSpec } from "../../src/sim/scenario/schema.ts";
import { Scheduler } from "../../src/sim/scheduler.ts";
import { boot, dev, machine, outcome, snapshot } from "../helpers.ts";
import { callers, findCall } from "./owner-helpers.ts";

type SerialisationName = "none" | "probe-lock" | "global-lock" | "global-lock+ready";
const SERIALISATIONS: readonly SerialisationName[] = ["none", "probe-lock", "global-lock", "global-lock+ready"];

const LOCK = "iommu_probe_device_lock";

/** smmu0 registered; a (to be added by the test) and b behind it, b's driver registered by an event. */
const SOC = (ser: SerialisationName, owner = "probe-path", smmu0Registered = true) => `
name: ser
boot: {strategy: {probe_serialisation: "${ser}", fwspec_owner: ${owner}}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0, registered: ${smmu0Registered}}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]], added: false}
  - {name: b, bus: platform, fwnode: /soc/b, iommus: [[smmu0, 2]]}
drivers:
  - {name: db, bus: platform, match: [b], registered: false}
`;

interface Stepped {
  /** Each point as "op what". */
  steps: string[];
  /** Whether the probe lock was held at each point. */
  held: boolean[];
}

/** Runs event `e` on `m` as one task of a scheduler with points on, recording each point and whether the probe lock was held there. */
function stepEvent(m: Machine, e: EventSpec): Stepped & { result: string } {
  const sched = new Scheduler(m.dc.sched);
  const t = sched.spawn("event", () => eventPath(m, e).path);
  const out: Stepped = { steps: [], held: [] };
  while (sched.step(t)) {
    out.steps.push(`${t.last!.op} ${t.last!.what}`);
    out.held.push(m.k.probeLock.holder !== null);
  }
  return { ...out, result: outcome(t.result!) };
}

/** Whether the probe lock was held at the first point `step`. */
function heldAt(s: Stepped, step: string): boolean {
  const i = s.steps.indexOf(step);
  if (i < 0) throw new Error(`no point ${step} in ${s.steps.join(", ")}`);
  return s.held[i]!;
}

const count = (s: Stepped, step: string) => s.steps.filter((x) => x === step).length;

describe("probe_serialisation: the locks each design takes", () => {
  /** device_add of a under probe-path: the notifier probes it, iommu_init_device has the bus parse its firmware. */
  const expected: Record<SerialisationName, { locks: number; atGroupCheck: boolean; atFwspec: boolean }> = {
    // No lock anywhere; the shared-state points stay for an explorer to interleave.
    none: { locks: 0, atGroupCheck: false, atFwspec: false },
    // Taken inside __iommu_probe_device (and retaken after iommu_init_device's parse), never around the fwspec.
    "probe-lock": { locks: 2, atGroupCheck: true, atFwspec: false },
    // iommu_probe_device takes it, of_iommu_configure takes it for the fwspec, iommu_init_device retakes it.
    "global-lock": { locks: 3, atGroupCheck: true, atFwspec: true },
    "global-lock+ready": { locks: 3, atGroupCheck: true, atFwspec: true },
  };

  for (const ser of SERIALISATIONS) {
    it(`${ser}: device_add under probe-path`, () => {
      const m = boot(SOC(ser));
      const s = stepEvent(m, { device_add: "a" });
      expect(s.result).toBe("ok");
      expect(dev(snapshot(m), "a")).toMatchObject({ iommu: "smmu0", fwspec: { iommu: "smmu0" } });
      expect({ locks: count(s, `lock ${LOCK}`), atGroupCheck: heldAt(s, "read dev->iommu_group a"), atFwspec: heldAt(s, "read dev->iommu a") }).toEqual(expected[ser]);
      expect(count(s, `unlock ${LOCK}`)).toBe(count(s, `lock ${LOCK}`));
      // The points a race hinges on are there whatever the locks.
      expect(s.steps).toContain("write dev->iommu a");
      expect(s.steps).toContain("write fwspec a");
      expect(m.k.probeLock.holder).toBeNull();
    });
  }

  it("driver-probe-time: the bind's fwspec creation is locked from global-lock on, the replayed probe from probe-lock on", () => {
    const at = (ser: SerialisationName) => {
      const m = boot(SOC(ser, "driver-probe-time"));
      const s = stepEvent(m, { driver_register: "db" });
      expect(s.result).toBe("ok");
      expect(dev(snapshot(m), "b")).toMatchObject({ iommu: "smmu0", probe: "bound" });
      return { atFwspec: heldAt(s, "read dev->iommu b"), atGroupCheck: heldAt(s, "read dev->iommu_group b"), locks: count(s, `lock ${LOCK}`) };
    };
    expect(at("none")).toEqual({ atFwspec: false, atGroupCheck: false, locks: 0 });
    expect(at("probe-lock")).toEqual({ atFwspec: false, atGroupCheck: true, locks: 1 });
    expect(at("global-lock")).toEqual({ atFwspec: true, atGroupCheck: true, locks: 2 });
    expect(at("global-lock+ready")).toEqual({ atFwspec: true, atGroupCheck: true, locks: 2 });
  });

  it("an instance's walk: probe_iommu_group takes the lock (global-lock), __iommu_probe_device does (probe-lock), nobody does (none)", () => {
    for (const ser of SERIALISATIONS) {
      const m = boot(SOC(ser, "probe-path", false));
      const s = stepEvent(m, { iommu_register: "smmu0" });
      expect(s.result).toBe("ok");
      expect(heldAt(s, "read dev->iommu_group b"), ser).toBe(ser !== "none");
      expect(count(s, `lock ${LOCK}`) === 0, ser).toBe(ser === "none");
    }
  });
});

describe("probe_serialisation: ready", () => {
  it("iommu_fwspec_init looks at ready only under global-lock+ready", () => {
    for (const ser of SERIALISATIONS) {
      const m = machine(SOC(ser));
      const smmu0 = m.instances.get("smmu0")!.iommu;
      // Listed, its walk not done.
      smmu0.ops = m.instances.get("smmu0")!.driver.ops;
      m.k.deviceList.push(smmu0);
      smmu0.listed = true;
      m.k.listChanged();
      const b = m.devices.get("b")!.dev;
      const r = runPath(iommuFwspecInit(m.k, b, smmu0.fwnode));
      expect(r === 0 ? "ok" : r.errno, ser).toBe(ser === "global-lock+ready" ? "EPROBE_DEFER" : "ok");
    }
  });

  /**
   * smmu0 registers late: pause its registration once it is listed (before
   * its walk takes the probe lock for the first device), and register b's
   * driver meanwhile.
   */
  function clientBindDuringWalk(ser: SerialisationName) {
    const m = boot(SOC(ser, "probe-path", false).replace("added: false", "added: true"));
    const smmu0 = m.instances.get("smmu0")!.iommu;
    const from = m.ctx.trace.records.length;
    const sched = new Scheduler(m.dc.sched);
    const reg = sched.spawn("register", () => eventPath(m, { iommu_register: "smmu0" }).path);
    expect(sched.runUntil(reg, () => smmu0.listed)).toBe(true);
    expect(smmu0.ready).toBe(false);
    const bind = sched.spawn("bind", () => eventPath(m, { driver_register: "db" }).path);
    expect(sched.finish(bind)).toBe(0);
    const mid = snapshot(m);
    expect(sched.finish(reg)).toBe(0);
    return { recs: m.ctx.trace.records.slice(from), mid, end: snapshot(m) };
  }

  it("global-lock+ready: the client bind defers, the walk probes the device without its driver, and the retried bind succeeds", () => {
    const { recs, mid, end } = clientBindDuringWalk("global-lock+ready");
    expect(dev(mid, "b")).toMatchObject({ probe: "deferred", dev_iommu: "none", group: null });
    expect(mid.deferred).toEqual(["b"]);
    expect(callers(recs, findCall(recs, "of_iommu_configure", "b", "EPROBE_DEFER"))).toContain("really_probe");
    // Groups in device order; no late probe.
    expect(dev(end, "a")).toMatchObject({ iommu: "smmu0", group: 0 });
    expect(dev(end, "b")).toMatchObject({ iommu: "smmu0", group: 1, driver: "db", probe: "bound" });
    expect(end.warnings).toEqual([]);
    expect(callers(recs, findCall(recs, "__iommu_probe_device", "b", "0"))).toEqual(["bus_iommu_probe", "iommu_device_register"]);
  });

  it("global-lock: the client bind is served before the walk reaches the device: a late probe, out of device order", () => {
    const { recs, mid, end } = clientBindDuringWalk("global-lock");
    expect(dev(mid, "b")).toMatchObject({ iommu: "smmu0", group: 0, driver: "db", probe: "bound" });
    expect(dev(mid, "a").group).toBeNull();
    expect(callers(recs, findCall(recs, "__iommu_probe_device", "b", "0"))).toEqual(["iommu_probe_device", "of_iommu_configure", "platform_dma_configure", "really_probe", "driver_register"]);
    expect(end.warnings.join("\n")).toMatch(/__iommu_probe_device: b: late IOMMU probe at driver bind/);
    // The walk then probes a, and finds b already in its group.
    expect(dev(end, "a")).toMatchObject({ iommu: "smmu0", group: 1 });
    expect(dev(end, "b")).toMatchObject({ group: 0, probe: "bound" });
  });
});

describe("probe_serialisation: without concurrency the designs reach the same states", () => {
  const files = readdirSync("scenarios").filter((f) => f.endsWith(".yaml"));

  it.each(files)("%s", (file) => {
    const s = loadScenarioFile(`scenarios/${file}`);
    const runs = SERIALISATIONS.map((ser) => {
      const r = runScenario(withStrategy(s, { probe_serialisation: ser }), { trace: false });
      const { strategy, ...rest } = r.snapshot;
      expect(strategy.probe_serialisation).toBe(ser);
      return { failures: r.failures, violations: r.violations, snapshot: rest };
    });
    for (const r of runs.slice(1)) expect(r).toEqual(runs[0]);
  });
});
