/**
 * fwspec_owner driver-probe-time (v4.12-v6.14) against probe-path (v6.15+):
 * the firmware is parsed only when a driver binds, so a DT device without a
 * driver never gets a fwspec or a group, an instance's walk cannot probe it,
 * and groups form in bind order; the bind's of_iommu_configure replays the
 * probe, which was the design then and draws no WARN.
 */
import { describe, expect, it } from "vitest";
import { devIommu } from "../../src/iommu/dev-iommu.ts";
import { boot, dev, outcome, run, snapshot, step } from "../helpers.ts";
import { callers, findCall, soc } from "./owner-helpers.ts";

describe("fwspec_owner driver-probe-time", () => {
  it("a DT device with iommus and no driver gets no fwspec and no group, even after an instance's walk", () => {
    for (const probeWalk of ["indexed", "literal"] as const) {
      const m = boot(soc("driver-probe-time"), { probeWalk });
      for (const d of ["a", "b", "x"]) expect(dev(snapshot(m), d)).toMatchObject({ dev_iommu: "none", fwspec: null, group: null, iommu: null });
      expect(outcome(step(m, { iommu_register: "smmu1" }))).toBe("ok");
      expect(dev(snapshot(m), "x")).toMatchObject({ dev_iommu: "none", fwspec: null, group: null });
      expect(snapshot(m).groups).toEqual([]);
    }
  });

  it("the walk visits a device without a fwspec and finds no ops for it", () => {
    const m = boot(soc("driver-probe-time"), { probeWalk: "literal" });
    const from = m.ctx.trace.records.length;
    expect(outcome(step(m, { iommu_register: "smmu1" }))).toBe("ok");
    const recs = m.ctx.trace.records.slice(from);
    const i = findCall(recs, "__iommu_probe_device", "x", "ENODEV");
    expect(callers(recs, i)).toEqual(["bus_iommu_probe", "iommu_device_register"]);
    // iommu_init_device parsed nothing: no dma_configure below it.
    expect(recs.some((r) => r.fn === "platform_dma_configure" && r.subject === "x")).toBe(false);
  });

  it("probe-path: the same devices are probed at device_add, driver or not, and the walk has nothing to do", () => {
    const m = boot(soc("probe-path"));
    for (const d of ["a", "b", "x"]) expect(dev(snapshot(m), d)).toMatchObject({ dev_iommu: "probed", iommu: "smmu0", fwspec: { iommu: "smmu0" } });
    const i = findCall(m.ctx.trace.records, "of_iommu_configure", "x", "0");
    expect(callers(m.ctx.trace.records, i)).toEqual(["platform_dma_configure", "iommu_init_device", "__iommu_probe_device", "iommu_probe_device", "device_add"]);
  });

  it("a bind builds the fwspec and replays the probe, with no late-probe WARN", () => {
    const m = boot(soc("driver-probe-time"));
    expect(outcome(step(m, { driver_register: "db" }))).toBe("ok");
    const s = snapshot(m);
    expect(dev(s, "b")).toMatchObject({ dev_iommu: "probed", iommu: "smmu0", fwspec: { iommu: "smmu0", ids: [2] }, driver: "db", probe: "bound" });
    expect(s.warnings).toEqual([]);
    const recs = m.ctx.trace.records;
    const i = findCall(recs, "__iommu_probe_device", "b", "0");
    expect(callers(recs, i)).toEqual(["iommu_probe_device", "of_iommu_configure", "platform_dma_configure", "really_probe", "driver_register"]);
    // Counted as a DMA-API user of its group, as at any bind.
    expect(s.groups.find((g) => g.devices.includes("b"))).toMatchObject({ owner: "kernel", owner_cnt: 1 });
    // A second bind does not replay: the fwspec is there.
    expect(outcome(step(m, { driver_unbind: "b" }))).toBe("ok");
    const from = recs.length;
    expect(outcome(step(m, { driver_bind: { device: "b", driver: "db" } }))).toBe("ok");
    expect(recs.slice(from).some((r) => r.fn === "iommu_probe_device")).toBe(false);
    expect(dev(snapshot(m), "b")).toMatchObject({ iommu: "smmu0", probe: "bound" });
  });

  it("groups form in driver-bind order, not device order", () => {
    const ids = (owner: "driver-probe-time" | "probe-path") => {
      const m = boot(soc(owner));
      for (const d of ["db", "da"]) expect(outcome(step(m, { driver_register: d }))).toBe("ok");
      const s = snapshot(m);
      return { a: dev(s, "a").group, b: dev(s, "b").group };
    };
    // a is added first; b's driver binds first.
    expect(ids("driver-probe-time")).toEqual({ a: 1, b: 0 });
    expect(ids("probe-path")).toEqual({ a: 0, b: 1 });
  });

  it("a device whose instance registers late defers its bind, and is probed by the retried bind, not by the walk", () => {
    const yaml = soc("driver-probe-time", "  - {name: y, bus: platform, fwnode: /soc/y, iommus: [[smmu1, 7]]}").replace(
      "drivers:\n",
      "drivers:\n  - {name: dy, bus: platform, match: [y]}\n",
    );
    const m = boot(yaml);
    expect(dev(snapshot(m), "y")).toMatchObject({ probe: "deferred", dev_iommu: "none" });
    // No instance has the fwnode yet: nothing was built (no fwspec waits for it).
    expect(devIommu(m.devices.get("y")!.dev)).toBeNull();
    expect(outcome(step(m, { iommu_register: "smmu1" }))).toBe("ok");
    expect(dev(snapshot(m), "y")).toMatchObject({ iommu: "smmu1", fwspec: { iommu: "smmu1", ids: [7] }, driver: "dy", probe: "bound" });
    const recs = m.ctx.trace.records;
    const i = findCall(recs, "__iommu_probe_device", "y", "0");
    expect(callers(recs, i).slice(0, 4)).toEqual(["iommu_probe_device", "of_iommu_configure", "platform_dma_configure", "really_probe"]);
    expect(callers(recs, i)).toContain("deferred_probe_work_func");
  });

  it("runs clean: the invariants hold under driver-probe-time", () => {
    const r = run(`${soc("driver-probe-time")}
events:
  - driver_register: db
  - iommu_register: smmu1
  - driver_register: da
  - driver_unbind: a
  - iommu_unregister: smmu0
  - iommu_register: smmu0
  - driver_bind: {device: a, driver: da}
  - expect: {devices: {a: {iommu: smmu0, probe: bound}, b: {iommu: null, probe: bound}, x: {iommu: null}}, violations: []}
`);
    expect(r.failures).toEqual([]);
    expect(r.violations).toEqual([]);
  });
});
