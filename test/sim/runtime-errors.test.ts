import { describe, expect, it } from "vitest";
import { runScenario } from "../../src/sim/runner.ts";
import { takeSnapshot } from "../../src/sim/snapshot.ts";
import { boot, scenario, state, step } from "../helpers.ts";

const MACHINE = `
name: two smmus
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}
  - {name: smmu1, driver: arm-smmu-v3, fwnode: /soc/smmu1, registered: false}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]]}
  - {name: b, bus: platform, fwnode: /soc/b, iommus: [[smmu1, 2]], added: false}
drivers:
  - {name: da, bus: platform, match: [a]}
  - {name: db, bus: platform, match: [b]}
`;

/** Boots the machine, runs one event, and returns the state before and after with the result. */
function attempt(eventYaml: string) {
  const s = scenario(MACHINE + `events:\n  - ${eventYaml}\n`);
  const m = boot(s);
  const before = state(takeSnapshot(m, [], []));
  const r = step(m, s.events[0]!);
  const after = state(takeSnapshot(m, [], []));
  return { r, before, after };
}

describe("an event that fails at run time records its errno and changes nothing", () => {
  it("registering an instance that is already registered: EEXIST", () => {
    const { r, before, after } = attempt("iommu_register: smmu0");
    expect(r === 0 ? "ok" : r.errno).toBe("EEXIST");
    expect(after).toEqual(before);
  });

  it("unregistering an instance that is not registered: ENOENT", () => {
    const { r, before, after } = attempt("iommu_unregister: smmu1");
    expect(r === 0 ? "ok" : r.errno).toBe("ENOENT");
    expect(after).toEqual(before);
  });

  it("deleting a device that is not on its bus: ENODEV", () => {
    const { r, before, after } = attempt("device_del: b");
    expect(r === 0 ? "ok" : r.errno).toBe("ENODEV");
    expect(after).toEqual(before);
  });

  it("adding a device twice: EEXIST", () => {
    const { r, before, after } = attempt("device_add: a");
    expect(r === 0 ? "ok" : r.errno).toBe("EEXIST");
    expect(after).toEqual(before);
  });

  it("binding a driver that does not match: ENODEV", () => {
    const { r, before, after } = attempt("driver_bind: {device: a, driver: db}");
    expect(r === 0 ? "ok" : r.errno).toBe("ENODEV");
    expect(after).toEqual(before);
  });

  it("unbinding a device with no driver: ENODEV", () => {
    const { r, before, after } = attempt("driver_unbind: b");
    expect(r === 0 ? "ok" : r.errno).toBe("ENODEV");
    expect(after).toEqual(before);
  });

  it("the run records each errno, and expect_error fails when the errno differs", () => {
    const r = runScenario(scenario(MACHINE + "events:\n  - {iommu_register: smmu0, expect_error: EEXIST}\n  - {device_del: b, expect_error: EBUSY}\n"));
    expect(r.snapshot.events).toEqual([
      { event: "iommu_register", arg: "smmu0", result: "EEXIST" },
      { event: "device_del", arg: "b", result: "ENODEV" },
    ]);
    expect(r.expectations).toEqual({ passed: 1, failed: 1 });
    expect(r.failures).toEqual([
      { step: "events[1]", kind: "expect_error", message: "device_del b: expected EBUSY, got ENODEV (b is not on bus platform: nothing to delete)" },
    ]);
  });
});

describe("a group's default domain attached to another group", () => {
  const TWO = `
name: two groups, one default domain
iommus: [{name: v, driver: virtio-iommu, fwnode: /soc/v}]
devices:
  - {name: d0, bus: platform, fwnode: /soc/d0, iommus: [[v, 6]]}
  - {name: d1, bus: platform, fwnode: /soc/d1, iommus: [[v, 3]]}
`;

  it("is refused with EBUSY and changes nothing (it is freed with its group, which would leave the other on freed memory)", () => {
    const s = scenario(TWO + "events: []\n");
    const m = runScenario(s, { trace: false }).machine;
    const d1Default = [...m.k.groups].find((g) => g.devices[0]!.dev.name === "d1")!.defaultDomain!;
    const before = state(takeSnapshot(m, [], []));
    for (const e of [
      { attach_group: { domain: d1Default.id, device: "d0" } },
      { attach_device: { domain: d1Default.id, device: "d0" } },
    ]) {
      const r = step(m, e);
      expect(r === 0 ? "ok" : `${r.errno}: ${r.message}`).toMatch(/^EBUSY: domain \d+ \(DMA\) is group \d+'s default domain: it is freed with that group/);
      expect(state(takeSnapshot(m, [], []))).toEqual(before);
    }
    // Its own group may switch back to it (detach to the default domain is the usual way).
    expect(step(m, { attach_group: { domain: d1Default.id, device: "d1" } })).toBe(0);
  });
});

describe("may_fail: an event whose either outcome is fine", () => {
  it("a failure is recorded in the events but is not a failure of the run; a success neither", () => {
    const r = runScenario(scenario(MACHINE + `events:\n  - {iommu_register: smmu0, may_fail: true}\n  - {iommu_register: smmu1, may_fail: true}\n`), { trace: false });
    expect(r.failures).toEqual([]);
    expect(r.machine.events.map((e) => e.result)).toEqual(["EEXIST", "ok"]);
    // Without it, the same failure fails the run.
    const strict = runScenario(scenario(MACHINE + `events:\n  - {iommu_register: smmu0}\n`), { trace: false });
    expect(strict.failures.map((f) => f.kind)).toEqual(["unexpected_error"]);
  });
});
