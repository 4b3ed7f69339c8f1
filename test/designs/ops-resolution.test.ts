/**
 * The ops_resolution axis, strategy by strategy, on small inline machines:
 * who gets EBUSY when two different IOMMU drivers share a machine
 * (bus-set-iommu: the driver's own bus_set_iommu policy; bus-ops: the
 * second registration), that bus-ops never clears bus ops, that a device
 * on a bus without ops gets no IOMMU, and which ops the iommufd mock
 * device gets on x86 beside VT-d.
 */
import { describe, expect, it } from "vitest";
import type { Machine } from "../../src/sim/machine.ts";
import { loadScenarioFile } from "../../src/sim/scenario/load.ts";
import type { Scenario } from "../../src/sim/scenario/schema.ts";
import { renderSnapshot } from "../../src/sim/view.ts";
import { boot, dev, outcome, run, snapshot, step } from "../helpers.ts";

type OpsName = "bus-set-iommu" | "bus-ops" | "upstream" | "ask-each";

/** arm-smmu-v3 and arm-smmu (v2) on one arm64 machine, each with a platform device; `first` registers first. */
function twoDrivers(strategy: OpsName, first: "smmu3" | "smmu2", extra = ""): string {
  const smmu3 = "  - {name: smmu3, driver: arm-smmu-v3, fwnode: /soc/iommu@40000000}";
  const smmu2 = "  - {name: smmu2, driver: arm-smmu, fwnode: /soc/iommu@50000000}";
  return `
name: arm-smmu-v3 and arm-smmu on one machine
boot: {strategy: {ops_resolution: ${strategy}}}
iommus:
${first === "smmu3" ? `${smmu3}\n${smmu2}` : `${smmu2}\n${smmu3}`}
devices:
  - {name: ufs, bus: platform, fwnode: /soc/ufs, iommus: [[smmu3, 0x100]]}
  - {name: gpu, bus: platform, fwnode: /soc/gpu, iommus: [[smmu2, 0x10]]}
drivers:
  - {name: ufshcd, bus: platform, match: [ufs]}
  - {name: panfrost, bus: platform, match: [gpu]}
${extra}`;
}

/** The boot's result for registering `name`. */
function registered(r: ReturnType<typeof run>, name: string): string {
  const rec = r.boot.find((b) => b.event === "iommu_register" && b.arg === name);
  if (rec === undefined) throw new Error(`no boot record for iommu_register ${name}`);
  return rec.result;
}

/** The names of the buses that carry each driver's ops. */
function busOps(m: Machine): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [bus, ops] of m.k.busIommuOps) out[bus.name] = ops.name;
  return out;
}

describe("ops_resolution: two different IOMMU drivers on one machine", () => {
  it("upstream: both register and each serves its own fwnode's device", () => {
    for (const first of ["smmu3", "smmu2"] as const) {
      const r = run(twoDrivers("upstream", first));
      expect(r.failures).toEqual([]);
      expect([registered(r, "smmu3"), registered(r, "smmu2")]).toEqual(["ok", "ok"]);
      expect(dev(r.snapshot, "ufs")).toMatchObject({ iommu: "smmu3", ops: "arm-smmu-v3", probe: "bound" });
      expect(dev(r.snapshot, "gpu")).toMatchObject({ iommu: "smmu2", ops: "arm-smmu", probe: "bound" });
      expect(busOps(r.machine)).toEqual({});
    }
  });

  it("bus-ops: the second, different driver's iommu_device_register is EBUSY before it is listed", () => {
    const r = run(twoDrivers("bus-ops", "smmu3"));
    expect([registered(r, "smmu3"), registered(r, "smmu2")]).toEqual(["ok", "EBUSY"]);
    expect(r.snapshot.iommus.find((i) => i.name === "smmu2")).toMatchObject({ registered: false, devices: [] });
    expect(busOps(r.machine)).toEqual({ platform: "arm-smmu-v3", pci: "arm-smmu-v3", amba: "arm-smmu-v3" });
    expect(dev(r.snapshot, "ufs")).toMatchObject({ iommu: "smmu3", probe: "bound" });
    // gpu's fwspec names an instance that never registered: its bind waits.
    expect(dev(r.snapshot, "gpu")).toMatchObject({ iommu: null, probe: "deferred" });
    expect(r.violations).toEqual([]);

    const rev = run(twoDrivers("bus-ops", "smmu2"));
    expect([registered(rev, "smmu2"), registered(rev, "smmu3")]).toEqual(["ok", "EBUSY"]);
    expect(dev(rev.snapshot, "gpu")).toMatchObject({ iommu: "smmu2", ops: "arm-smmu", probe: "bound" });
    expect(dev(rev.snapshot, "ufs")).toMatchObject({ iommu: null, probe: "deferred" });
  });

  it("bus-set-iommu, arm-smmu-v3 first: arm-smmu skips the claimed buses, and its device is refused by arm-smmu-v3's ops", () => {
    const r = run(twoDrivers("bus-set-iommu", "smmu3"));
    expect([registered(r, "smmu3"), registered(r, "smmu2")]).toEqual(["ok", "ok"]);
    expect(busOps(r.machine)).toEqual({ pci: "arm-smmu-v3", amba: "arm-smmu-v3", platform: "arm-smmu-v3" });
    expect(dev(r.snapshot, "ufs")).toMatchObject({ iommu: "smmu3", ops: "arm-smmu-v3", probe: "bound" });
    // Probed with the platform bus's ops, whose probe_device refuses a fwspec that is not theirs: no IOMMU, bound anyway.
    expect(dev(r.snapshot, "gpu")).toMatchObject({ iommu: null, ops: null, probe: "bound", driver: "panfrost" });
    expect(r.violations).toEqual([]);
  });

  it("bus-set-iommu, arm-smmu first: arm-smmu-v3's bus_set_iommu is EBUSY and its probe fails, the instance unregistered", () => {
    const r = run(twoDrivers("bus-set-iommu", "smmu2"));
    expect([registered(r, "smmu2"), registered(r, "smmu3")]).toEqual(["ok", "EBUSY"]);
    expect(r.snapshot.iommus.find((i) => i.name === "smmu3")).toMatchObject({ registered: false, devices: [] });
    // arm-smmu-v3 failed at its first bus (pci): nothing to unwind, arm-smmu keeps every bus.
    expect(busOps(r.machine)).toEqual({ platform: "arm-smmu", amba: "arm-smmu", pci: "arm-smmu" });
    expect(dev(r.snapshot, "gpu")).toMatchObject({ iommu: "smmu2", ops: "arm-smmu", probe: "bound" });
    expect(dev(r.snapshot, "ufs")).toMatchObject({ iommu: null, probe: "deferred" });
    expect(r.violations).toEqual([]);
  });

  it("ask-each: as upstream for fwspec devices", () => {
    const r = run(twoDrivers("ask-each", "smmu2"));
    expect([registered(r, "smmu2"), registered(r, "smmu3")]).toEqual(["ok", "ok"]);
    expect(dev(r.snapshot, "ufs")).toMatchObject({ iommu: "smmu3", ops: "arm-smmu-v3" });
    expect(dev(r.snapshot, "gpu")).toMatchObject({ iommu: "smmu2", ops: "arm-smmu" });
  });
});

describe("ops_resolution: unregistering and registering another driver", () => {
  // smmu3 serves ufs at boot; smmu2 registers only after smmu3 is gone.
  const later = (s: OpsName) =>
    boot(twoDrivers(s, "smmu3").replace("driver: arm-smmu, fwnode: /soc/iommu@50000000}", "driver: arm-smmu, fwnode: /soc/iommu@50000000, registered: false}"));

  it("bus-ops: bus ops are never cleared, so after smmu3 is unregistered smmu2 is still EBUSY", () => {
    const m = later("bus-ops");
    expect(step(m, { driver_unbind: "ufs" })).toBe(0);
    expect(step(m, { iommu_unregister: "smmu3" })).toBe(0);
    expect(busOps(m)).toEqual({ platform: "arm-smmu-v3", pci: "arm-smmu-v3", amba: "arm-smmu-v3" });
    const before = snapshot(m);
    expect(outcome(step(m, { iommu_register: "smmu2" }))).toBe("EBUSY");
    // Refused before anything was set up.
    const after = snapshot(m);
    expect(after.iommus).toEqual(before.iommus);
    expect(after.devices).toEqual(before.devices);
  });

  it("bus-set-iommu: arm-smmu-v3's remove gives its buses NULL, so smmu2 then claims them", () => {
    const m = later("bus-set-iommu");
    expect(step(m, { driver_unbind: "ufs" })).toBe(0);
    expect(step(m, { iommu_unregister: "smmu3" })).toBe(0);
    expect(busOps(m)).toEqual({});
    expect(step(m, { iommu_register: "smmu2" })).toBe(0);
    expect(busOps(m)).toEqual({ platform: "arm-smmu", amba: "arm-smmu", pci: "arm-smmu" });
    // gpu was bound without an IOMMU (its bus had no ops); a rebind parses its firmware and replays the probe.
    expect(step(m, { driver_unbind: "gpu" })).toBe(0);
    expect(step(m, { driver_bind: { device: "gpu", driver: "panfrost" } })).toBe(0);
    expect(dev(snapshot(m), "gpu")).toMatchObject({ iommu: "smmu2", ops: "arm-smmu", probe: "bound" });
  });

  it("upstream: no bus ops, smmu2 registers beside (or after) smmu3", () => {
    const m = later("upstream");
    expect(step(m, { iommu_register: "smmu2" })).toBe(0);
    expect(dev(snapshot(m), "gpu")).toMatchObject({ iommu: "smmu2", ops: "arm-smmu" });
    expect(busOps(m)).toEqual({});
  });
});

describe("bus ops in the snapshot, the text view and expect", () => {
  it("snapshot.bus_ops is the core's bus ops by bus name, sorted; the view prints them under iommus", () => {
    const r = run(twoDrivers("bus-ops", "smmu3"));
    expect(r.snapshot.bus_ops).toEqual(busOps(r.machine));
    expect(Object.keys(r.snapshot.bus_ops)).toEqual(["amba", "pci", "platform"]);
    expect(renderSnapshot(r.snapshot)).toContain("\n  bus ops: amba=arm-smmu-v3  pci=arm-smmu-v3  platform=arm-smmu-v3\n");
    const up = run(twoDrivers("upstream", "smmu3"));
    expect(up.snapshot.bus_ops).toEqual({});
    expect(renderSnapshot(up.snapshot)).not.toContain("bus ops:");
  });

  it("expect.bus_ops passes on the ops a bus carries and on null for none, and fails naming the bus otherwise", () => {
    const events = (want: string) => `events:\n  - expect: {bus_ops: ${want}}\n`;
    expect(run(twoDrivers("bus-ops", "smmu3", events("{platform: arm-smmu-v3, pci: arm-smmu-v3}"))).failures).toEqual([]);
    expect(run(twoDrivers("upstream", "smmu3", events("{platform: null}"))).failures).toEqual([]);
    const bad = run(twoDrivers("bus-ops", "smmu3", events("{platform: arm-smmu, pci: null}")));
    expect(bad.failures.map((f) => f.message)).toEqual([
      'bus_ops.platform: expected "arm-smmu", got "arm-smmu-v3"',
      'bus_ops.pci: expected null, got "arm-smmu-v3"',
    ]);
  });
});

describe("ops_resolution: a device on a bus without ops gets no IOMMU", () => {
  // VT-d registers every unit, then claims the PCI bus: until its last unit registers, no bus has its ops.
  const x86 = (s: OpsName) => `
name: VT-d with a late second unit
boot: {strategy: {ops_resolution: ${s}}}
iommus:
  - {name: dmar0, driver: intel-iommu, scope: ["0000:00:02.0"]}
  - {name: dmar1, driver: intel-iommu, scope: all, registered: false}
devices:
  - {name: "0000:00:02.0", bus: pci, type: endpoint}
  - {name: "0000:00:03.0", bus: pci, type: endpoint}
`;

  it("bus-set-iommu: devices added before intel_iommu_init's bus_set_iommu stay unprobed; the claim's replay probes them", () => {
    const m = boot(x86("bus-set-iommu"));
    expect(busOps(m)).toEqual({});
    expect(dev(snapshot(m), "0000:00:02.0")).toMatchObject({ iommu: null, group: null, dev_iommu: "none" });
    expect(step(m, { iommu_register: "dmar1" })).toBe(0);
    expect(busOps(m)).toEqual({ pci: "intel-iommu" });
    const s = snapshot(m);
    expect(dev(s, "0000:00:02.0")).toMatchObject({ iommu: "dmar0", ops: "intel-iommu" });
    expect(dev(s, "0000:00:03.0")).toMatchObject({ iommu: "dmar1", ops: "intel-iommu" });
  });

  it("upstream: the device behind the registered unit is probed at device_add", () => {
    const m = boot(x86("upstream"));
    expect(dev(snapshot(m), "0000:00:02.0")).toMatchObject({ iommu: "dmar0", ops: "intel-iommu" });
    expect(dev(snapshot(m), "0000:00:03.0")).toMatchObject({ iommu: null });
  });

  it("bus-set-iommu: a second SMMUv3 instance does not walk the buses again; its driverless device stays unprobed", () => {
    const yaml = (s: OpsName) => `
name: two SMMUv3 instances, devices first
boot: {order: devices-first, strategy: {ops_resolution: ${s}}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/iommu@40000000}
  - {name: smmu1, driver: arm-smmu-v3, fwnode: /soc/iommu@48000000}
devices:
  - {name: ufs, bus: platform, fwnode: /soc/ufs, iommus: [[smmu0, 0x100]]}
  - {name: vpu, bus: platform, fwnode: /soc/vpu, iommus: [[smmu1, 0x20]]}
`;
    const old = boot(yaml("bus-set-iommu"));
    expect(dev(snapshot(old), "ufs")).toMatchObject({ iommu: "smmu0" });
    expect(dev(snapshot(old), "vpu")).toMatchObject({ iommu: null, group: null });
    const cur = boot(yaml("upstream"));
    expect(dev(snapshot(cur), "vpu")).toMatchObject({ iommu: "smmu1", ops: "arm-smmu-v3" });
  });
});

describe("ops_resolution: the iommufd mock device on x86 beside VT-d (scenarios/x86-mock-wrong-ops.yaml)", () => {
  const FILE = new URL("../../scenarios/x86-mock-wrong-ops.yaml", import.meta.url).pathname;
  const withOps = (s: OpsName): Scenario => {
    const sc = loadScenarioFile(FILE);
    return { ...sc, events: [], boot: { ...sc.boot, strategy: { ops_resolution: s } } };
  };

  it("upstream: no fwspec, so the first instance without a fwnode (VT-d) refuses it", () => {
    const s = snapshot(boot(withOps("upstream")));
    expect(dev(s, "iommufd_mock0")).toMatchObject({ iommu: null, ops: null, group: null });
  });

  it("bus-ops: the mock's private bus carries the mock's ops (iommu_device_register_bus, v6.6-v6.7): right ops", () => {
    const m = boot(withOps("bus-ops"));
    expect(busOps(m)).toEqual({ platform: "intel-iommu", pci: "intel-iommu", iommufd_mock: "mock" });
    const s = snapshot(m);
    expect(dev(s, "iommufd_mock0")).toMatchObject({ iommu: "mock-iommu", ops: "mock" });
    expect(dev(s, "0000:00:02.0")).toMatchObject({ iommu: "dmar0", ops: "intel-iommu" });
  });

  it("bus-set-iommu: VT-d claims the PCI bus, the mock its own: right ops too", () => {
    const m = boot(withOps("bus-set-iommu"));
    expect(busOps(m)).toEqual({ pci: "intel-iommu", iommufd_mock: "mock" });
    expect(dev(snapshot(m), "iommufd_mock0")).toMatchObject({ iommu: "mock-iommu", ops: "mock" });
  });

  it("ask-each: VT-d refuses, the mock accepts", () => {
    expect(dev(snapshot(boot(withOps("ask-each"))), "iommufd_mock0")).toMatchObject({ iommu: "mock-iommu", ops: "mock" });
  });
});
