/**
 * The objection in the mock-device thread (Jason Gunthorpe, 11 Jan 2024):
 * iommu_init_device's error unwind frees dev->iommu with the fwspec
 * (dev_iommu_free), so a fwspec the bus code built once before device_add is
 * gone after a failed first probe, and the device can never probe again;
 * where the probe path (or the bind) builds the fwspec, the next probe
 * parses the firmware again and succeeds. The failure is injected with
 * `fail_probe` (the driver's probe_device fails the first N times it would
 * take the device).
 */
import { describe, expect, it } from "vitest";
import type { Machine } from "../../src/sim/machine.ts";
import { boot, dev, outcome, run, scenario, snapshot, step } from "../helpers.ts";
import { OWNERS, soc, type OwnerName } from "./owner-helpers.ts";

/** The SoC with device a failing its first `times` probe_device calls with ENOMEM. */
const failing = (owner: OwnerName, times = 1) => soc(owner).replace("iommus: [[smmu0, 1]]}", `iommus: [[smmu0, 1]], fail_probe: {errno: ENOMEM, times: ${times}}}`);

/** Where a stands: its IOMMU, and how many injected failures are left. */
function state(m: Machine) {
  const d = dev(snapshot(m), "a");
  return { iommu: d.iommu, fwspec: d.fwspec?.iommu ?? null, left: m.quirks.failProbe.get("a")!.left };
}

describe("fail_probe and fwspec ownership", () => {
  it("the first probe fails under every owner that tries one at device_add, and the unwind frees the fwspec", () => {
    expect(state(boot(failing("bus-code")))).toEqual({ iommu: null, fwspec: null, left: 0 });
    expect(state(boot(failing("probe-path")))).toEqual({ iommu: null, fwspec: null, left: 0 });
    // Nothing parses a's firmware before a driver binds: no probe_device call yet.
    expect(state(boot(failing("driver-probe-time")))).toEqual({ iommu: null, fwspec: null, left: 1 });
  });

  it("bus-code: the device stays without an IOMMU after a later registration walk; probe-path: the walk probes it", () => {
    const after = (owner: OwnerName) => {
      const m = boot(failing(owner));
      expect(outcome(step(m, { iommu_register: "smmu1" }))).toBe("ok");
      return state(m);
    };
    expect(after("bus-code")).toEqual({ iommu: null, fwspec: null, left: 0 });
    expect(after("probe-path")).toEqual({ iommu: "smmu0", fwspec: "smmu0", left: 0 });
  });

  it("bus-code: the device binds without an IOMMU; probe-path: the bind's dma_configure parses again and probes it (a late probe)", () => {
    const bind = (owner: OwnerName) => {
      const m = boot(failing(owner));
      expect(outcome(step(m, { driver_register: "da" }))).toBe("ok");
      const s = snapshot(m);
      return { ...state(m), probe: dev(s, "a").probe, warnings: s.warnings };
    };
    expect(bind("bus-code")).toMatchObject({ iommu: null, fwspec: null, probe: "bound", warnings: [] });
    const pp = bind("probe-path");
    expect(pp).toMatchObject({ iommu: "smmu0", fwspec: "smmu0", probe: "bound" });
    expect(pp.warnings.join("\n")).toMatch(/__iommu_probe_device: a: late IOMMU probe at driver bind/);
  });

  it("driver-probe-time: the first bind's replay fails and the device binds without one; the next bind parses again and probes it", () => {
    const m = boot(failing("driver-probe-time"));
    expect(outcome(step(m, { driver_register: "da" }))).toBe("ok");
    expect({ ...state(m), probe: dev(snapshot(m), "a").probe }).toEqual({ iommu: null, fwspec: null, left: 0, probe: "bound" });
    // A walk cannot help: a has no fwspec.
    expect(outcome(step(m, { iommu_register: "smmu1" }))).toBe("ok");
    expect(state(m).iommu).toBeNull();
    expect(outcome(step(m, { driver_unbind: "a" }))).toBe("ok");
    expect(outcome(step(m, { driver_bind: { device: "a", driver: "da" } }))).toBe("ok");
    expect(state(m)).toEqual({ iommu: "smmu0", fwspec: "smmu0", left: 0 });
    expect(snapshot(m).warnings).toEqual([]);
  });

  it("times counts the calls: two failures under probe-path (device_add, then the walk), the bind succeeds", () => {
    const m = boot(failing("probe-path", 2));
    // A probe failure other than ENODEV fails the whole registration (probe_iommu_group passes it on).
    expect(outcome(step(m, { iommu_register: "smmu1" }))).toBe("ENOMEM");
    expect(snapshot(m).iommus.find((i) => i.name === "smmu1")!.registered).toBe(false);
    expect(state(m)).toEqual({ iommu: null, fwspec: null, left: 0 });
    expect(outcome(step(m, { driver_register: "da" }))).toBe("ok");
    expect(state(m)).toEqual({ iommu: "smmu0", fwspec: "smmu0", left: 0 });
  });

  it("no owner breaks an invariant on the way", () => {
    for (const owner of OWNERS) {
      const r = run(`${failing(owner)}
events:
  - iommu_register: smmu1
  - driver_register: da
  - driver_unbind: a
  - driver_bind: {device: a, driver: da}
  - expect: {violations: []}
`);
      expect(r.failures, owner).toEqual([]);
    }
  });

  it("the iommufd mock's bus code (iommu_mock_device_add, v6.18+) has the objection under the current design too", () => {
    const m = boot(`
name: mock
iommus:
  - {name: mock0, driver: mock}
devices:
  - {name: m0, bus: iommufd_mock, fail_probe: {errno: ENOMEM}}
`);
    expect(m.k.strategy.fwspecOwner.name).toBe("probe-path");
    expect(dev(snapshot(m), "m0")).toMatchObject({ iommu: null, fwspec: null, dev_iommu: "none" });
    // The mock bus has no dma_configure to parse anything again: a new walk finds no fwspec.
    expect(outcome(step(m, { iommu_unregister: "mock0" }))).toBe("ok");
    expect(outcome(step(m, { iommu_register: "mock0" }))).toBe("ok");
    expect(dev(snapshot(m), "m0")).toMatchObject({ iommu: null, fwspec: null, dev_iommu: "none" });
  });

  it("a refusal is not counted: only the probe_device that would take the device fails", () => {
    const m = boot(`
name: x86-mock
boot: {strategy: {ops_resolution: ask-each}}
iommus:
  - {name: dmar0, driver: intel-iommu, scope: all}
  - {name: mock0, driver: mock, fwnode: null, registered: false}
devices:
  - {name: m0, bus: iommufd_mock, add_with: device_add, fail_probe: {errno: ENOMEM}}
`);
    // At device_add only VT-d is there, and it refuses a mock-bus device: nothing counted.
    expect(m.quirks.failProbe.get("m0")!.left).toBe(1);
    // The mock's walk asks VT-d (refuses), then the mock, which would take m0 and fails: the walk fails with it.
    expect(outcome(step(m, { iommu_register: "mock0" }))).toBe("ENOMEM");
    expect(m.quirks.failProbe.get("m0")!.left).toBe(0);
    expect(outcome(step(m, { iommu_register: "mock0" }))).toBe("ok");
    expect(dev(snapshot(m), "m0")).toMatchObject({ iommu: "mock0", ops: "mock" });
  });

  it("bad input: fail_probe needs an errno the model knows and a positive count", () => {
    const base = (fp: string) => `
name: bad
iommus: [{name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}]
devices: [{name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]], fail_probe: ${fp}}]
`;
    expect(() => scenario(base("{errno: EWHATEVER}"))).toThrow(/fail_probe\.errno/);
    expect(() => scenario(base("{errno: ENOMEM, times: 0}"))).toThrow(/fail_probe\.times/);
    expect(() => scenario(base("{errno: ENOMEM, count: 2}"))).toThrow(/fail_probe\.count: unknown key/);
    expect(scenario(base("{errno: ENODEV, times: 3}")).devices[0]!.fail_probe).toEqual({ errno: "ENODEV", times: 3 });
  });
});
