import { describe, expect, it } from "vitest";
import { renderTrace } from "../../src/sim/trace-view.ts";
import { dev, run } from "../helpers.ts";

const SOC = `
name: soc
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 0x10]]}
  - {name: b, bus: platform, fwnode: /soc/b, iommus: [[smmu0, 0x10]]}
  - {name: c, bus: platform, fwnode: /soc/c}
  - {name: d, bus: platform}
drivers:
  - {name: drv-c, bus: platform, match: [c]}
`;

describe("device probe (iommu_probe_device)", () => {
  it("the core itself calls the bus dma_configure for a device with no fwspec and no driver", () => {
    const r = run(SOC);
    const t = renderTrace(r.machine.ctx.trace.records);
    expect(t).toMatch(/iommu_init_device\(a\) = 0\n\s+platform_dma_configure\(a\) = 0\n\s+of_iommu_configure\(a, \/soc\/a\) = 0/);
    expect(dev(r.snapshot, "a")).toMatchObject({ iommu: "smmu0", ops: "arm-smmu-v3", fwspec: { iommu: "smmu0", ids: [0x10] }, dev_iommu: "probed" });
  });

  it("a failure after dev->iommu was allocated frees it, fwspec included", () => {
    // b names the StreamID a already uses: arm_smmu_insert_master refuses it with ENODEV.
    const r = run(SOC);
    expect(dev(r.snapshot, "b")).toMatchObject({ iommu: null, fwspec: null, dev_iommu: "none", group: null });
    expect(r.snapshot.warnings).toEqual(["arm_smmu_insert_master: b: Aliasing StreamID 0x10 (from a) unsupported, expect DMA to be broken"]);
    expect(r.failures).toEqual([]);
  });

  it("a device refused once is clean and probes again once the conflict is gone", () => {
    const r = run(SOC + `events:
  - device_del: a
  - device_del: b
  - device_add: b
  - expect: {devices: {b: {iommu: smmu0, fwspec: {iommu: smmu0, ids: [0x10]}}}, violations: []}
`);
    expect(r.failures).toEqual([]);
    expect(r.expectations.passed).toBe(1);
  });

  it("a device whose firmware names no IOMMU ends with no dev->iommu", () => {
    const r = run(SOC);
    expect(dev(r.snapshot, "c")).toMatchObject({ iommu: null, dev_iommu: "none", driver: "drv-c", probe: "bound" });
    expect(dev(r.snapshot, "d")).toMatchObject({ iommu: null, dev_iommu: "none" });
  });

  it("defers a driver while the named instance is not registered, and binds it once it is", () => {
    const r = run(`
name: late
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0, registered: false}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]]}
drivers:
  - {name: drv, bus: platform, match: [a]}
events:
  - expect: {devices: {a: {probe: deferred, dev_iommu: none}}, deferred: [a]}
  - iommu_register: smmu0
  - expect: {devices: {a: {probe: bound, iommu: smmu0, group: 0}}, deferred: [], groups: [{devices: [a], owner: kernel, type: DMA}]}
`);
    expect(r.failures).toEqual([]);
    const t = renderTrace(r.machine.ctx.trace.records);
    // The deferral comes from iommu_fwspec_init at bind time, through the bus dma_configure step.
    expect(t).toMatch(/really_probe\(a, drv\) = EPROBE_DEFER\n\s+platform_dma_configure\(a\) = EPROBE_DEFER\n\s+of_iommu_configure\(a, \/soc\/a\) = EPROBE_DEFER/);
  });

  it("a device without a fwspec goes to the first registered instance without a fwnode, which may refuse it", () => {
    const r = run(`
name: x86 with old mock wiring
iommus:
  - {name: dmar0, driver: intel-iommu, scope: all}
  - {name: mock0, driver: mock, fwnode: null}
devices:
  - {name: "0000:00:01.0", bus: pci}
  - {name: mockdev, bus: iommufd_mock, add_with: device_add}
`);
    expect(dev(r.snapshot, "0000:00:01.0")).toMatchObject({ iommu: "dmar0", ops: "intel-iommu", fwspec: null });
    expect(dev(r.snapshot, "mockdev")).toMatchObject({ iommu: null, dev_iommu: "none" });
    const t = renderTrace(r.machine.ctx.trace.records);
    expect(t).toContain("iommu_fwspec_ops: mockdev: no fwspec: first instance without a fwnode -> intel-iommu");
    expect(t).toContain("probe_device: mockdev: intel-iommu refused: ENODEV");
  });

  it("under ask-each the same mock device gets the mock ops", () => {
    const r = run(`
name: x86 with old mock wiring
boot: {strategy: {ops_resolution: ask-each}}
iommus:
  - {name: dmar0, driver: intel-iommu, scope: all}
  - {name: mock0, driver: mock, fwnode: null}
devices:
  - {name: "0000:00:01.0", bus: pci}
  - {name: mockdev, bus: iommufd_mock, add_with: device_add}
`);
    expect(dev(r.snapshot, "0000:00:01.0")).toMatchObject({ iommu: "dmar0", ops: "intel-iommu" });
    expect(dev(r.snapshot, "mockdev")).toMatchObject({ iommu: "mock0", ops: "mock", group: 1 });
    expect(r.snapshot.groups.find((g) => g.id === 1)).toMatchObject({ type: "blocked" });
    expect(r.failures).toEqual([]);
  });

  it("current mock wiring: the fwspec names the mock's software node before device_add", () => {
    const r = run(`
name: x86 with current mock wiring
iommus:
  - {name: dmar0, driver: intel-iommu, scope: all}
  - {name: mock0, driver: mock}
devices:
  - {name: mockdev, bus: iommufd_mock}
`);
    expect(r.snapshot.iommus.find((m) => m.name === "mock0")?.fwnode).toBe("swnode:mock0");
    expect(dev(r.snapshot, "mockdev")).toMatchObject({ iommu: "mock0", ops: "mock", fwspec: { iommu: "mock0", ids: [] } });
    const t = renderTrace(r.machine.ctx.trace.records);
    expect(t).toMatch(/iommu_mock_device_add\(mockdev, mock0\) = 0\n\s+device_add\(mockdev\) = 0/);
    expect(t).toContain("iommu_fwspec_ops: mockdev: fwnode swnode:mock0 -> mock");
  });

  it("every probed platform device gets its own group (generic_device_group) and a default domain", () => {
    const r = run(`
name: soc
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]]}
  - {name: b, bus: platform, fwnode: /soc/b, iommus: [[smmu0, 2]]}
`);
    expect(r.snapshot.groups.map((g) => g.devices)).toEqual([["a"], ["b"]]);
    expect(r.snapshot.groups.every((g) => g.type === "DMA" && g.domain !== null && g.domain === g.default_domain)).toBe(true);
  });
});

describe("iommu_device_unregister scans only the IOMMU buses", () => {
  it("a mock device is left pointing at the unregistered mock instance, as the kernel leaves it", () => {
    const r = run(`
name: mock unregister
iommus:
  - {name: mock0, driver: mock}
devices:
  - {name: md, bus: iommufd_mock}
events:
  - iommu_unregister: mock0
  - expect:
      iommus: {mock0: {registered: false}}
      devices: {md: {iommu: mock0}}
      warnings: []
      violations: []
`);
    expect(r.failures).toEqual([]);
    // I3 covers the buses iommu_device_unregister scans: a platform device left so would be reported
    // (its rule is in test/sim/invariants.test.ts); the mock bus is not one of them.
    const md = r.machine.devices.get("md")!.dev;
    expect(r.machine.k.iommuBuses.includes(md.bus)).toBe(false);
  });
});
