import { describe, expect, it } from "vitest";
import { dev, run } from "../helpers.ts";

describe("each driver decides in probe_device whether a device is its own", () => {
  it("arm-smmu-v3: a bridged device may repeat its own StreamID; a second master with it is refused", () => {
    const r = run(`
name: masked iommu-map
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}
devices:
  - name: pcie
    bus: platform
    fwnode: /soc/pcie
    pci-host: {segment: 0, iommu-map: [[0x0, smmu0, 0x42, 0x1]], iommu-map-mask: 0x0}
  - {name: "0000:00:01.0", bus: pci, parent: pcie, type: pcie-pci-bridge}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:01.0"}
  - {name: "0000:01:01.0", bus: pci, parent: "0000:00:01.0"}
`);
    // The bridge itself is the first master with StreamID 0x42.
    expect(dev(r.snapshot, "0000:00:01.0")).toMatchObject({ iommu: "smmu0", fwspec: { ids: [0x42] } });
    // Each conventional device behind it aliases to the bridge: all RIDs mask to 0x42, so they are refused.
    expect(dev(r.snapshot, "0000:01:00.0")).toMatchObject({ iommu: null, dev_iommu: "none" });
    expect(r.snapshot.warnings.filter((w) => w.includes("Aliasing StreamID 0x42"))).toHaveLength(2);
    expect(r.violations).toEqual([]);
  });

  it("the SMMU and virtio-iommu drivers find only an instance whose driver is bound: a fwspec naming an unregistered one is refused (fuzz seed 42)", () => {
    // Up to v6.10 the fwspec carries the ops. dev1's bind deferred for iommu1, leaving a fwspec-only dev_iommu;
    // iommu1's registration let the bind through (dev->iommu existed, so no probe replay) with a fwspec naming
    // iommu1 and the driver's ops. Once iommu1 is unregistered, iommu0's bus_set_iommu replay asks the driver's
    // probe_device about dev1: no bound instance has that fwnode, so dev1 stays without an IOMMU instead of
    // pointing at the unregistered iommu1.
    for (const driver of ["arm-smmu-v3", "arm-smmu", "virtio-iommu"]) {
      const r = run(`
name: a fwspec naming a gone instance
boot: {strategy: {ops_resolution: bus-set-iommu, fwspec_ops: fwspec-carries-ops}}
iommus:
  - {name: iommu0, driver: ${driver}, fwnode: /soc/iommu@0}
  - {name: iommu1, driver: ${driver}, fwnode: /soc/iommu@1, registered: false}
  # A fwnode-less instance makes the registration walk visit every device (the model's walk index skips
  # devices no registered instance could take, as the literal walk's ENODEV would).
  - {name: mock0, driver: mock, fwnode: null}
devices:
  - {name: dev1, bus: platform, fwnode: /soc/dev@1, iommus: [[iommu1, 11]]}
drivers:
  - {name: drv0, bus: platform, match: [dev1]}
events:
  - iommu_register: iommu1
  - expect: {devices: {dev1: {driver: drv0, fwspec: {iommu: iommu1}}}}
  - iommu_unregister: iommu0
  - iommu_unregister: iommu1
  - iommu_register: iommu0
`);
      expect(r.failures, driver).toEqual([]);
      expect(dev(r.snapshot, "dev1"), driver).toMatchObject({ iommu: null, group: null });
      expect(r.violations, driver).toEqual([]);
    }
  });

  it("intel-iommu: a unit whose registration has not set its ops refuses the devices in its scope", () => {
    const r = run(`
name: two units, one late
iommus:
  - {name: dmar0, driver: intel-iommu, scope: ["0000:00:02.0"]}
  - {name: dmar1, driver: intel-iommu, scope: all, registered: false}
devices:
  - {name: "0000:00:02.0", bus: pci}
  - {name: "0000:00:03.0", bus: pci}
events:
  - expect: {devices: {"0000:00:02.0": {iommu: dmar0}, "0000:00:03.0": {iommu: null}}}
  - iommu_register: dmar1
  - expect: {devices: {"0000:00:03.0": {iommu: dmar1, ops: intel-iommu}}, violations: []}
`);
    expect(r.failures).toEqual([]);
  });

  it("intel-iommu: a device no DMAR scope covers has no IOMMU", () => {
    const r = run(`
name: narrow scope
iommus:
  - {name: dmar0, driver: intel-iommu, scope: ["0000:00:02.0"]}
devices:
  - {name: "0000:00:02.0", bus: pci}
  - {name: "0000:00:1f.0", bus: pci}
  - {name: serial, bus: platform, fwnode: "\\\\_SB.PCI0.UAR1"}
`);
    expect(dev(r.snapshot, "0000:00:1f.0").iommu).toBeNull();
    expect(dev(r.snapshot, "serial").iommu).toBeNull();
  });

  it("amd-iommu: only PCI devices are its own", () => {
    const r = run(`
name: amd
iommus:
  - {name: ivhd0, driver: amd-iommu, scope: all}
devices:
  - {name: "0000:00:01.0", bus: pci}
  - {name: i2c, bus: platform}
`);
    expect(dev(r.snapshot, "0000:00:01.0")).toMatchObject({ iommu: "ivhd0", ops: "amd-iommu" });
    expect(dev(r.snapshot, "i2c").iommu).toBeNull();
  });

  it("virtio-iommu: devices whose fwspec names it; its own function, outside the map, has none", () => {
    const r = run(`
name: virtio
iommus:
  - {name: viommu, driver: virtio-iommu, fwnode: /pcie/viommu}
devices:
  - {name: pcie, bus: platform, fwnode: /pcie, pci-host: {segment: 0, iommu-map: [[0x10, viommu, 0x10, 0x100]]}}
  - {name: "0000:00:01.0", bus: pci, parent: pcie}
  - {name: "0000:00:02.0", bus: pci, parent: pcie}
`);
    expect(dev(r.snapshot, "0000:00:01.0")).toMatchObject({ iommu: null, fwspec: null });
    expect(dev(r.snapshot, "0000:00:02.0")).toMatchObject({ iommu: "viommu", ops: "virtio-iommu", fwspec: { iommu: "viommu", ids: [0x10] } });
  });

  it("mock: only devices on the iommufd_mock bus, each in its own group on the static blocking domain", () => {
    const r = run(`
name: mock
iommus:
  - {name: mock0, driver: mock}
devices:
  - {name: m0, bus: iommufd_mock}
  - {name: m1, bus: iommufd_mock}
`);
    expect(r.snapshot.groups.map((g) => [g.devices, g.type])).toEqual([
      [["m0"], "blocked"],
      [["m1"], "blocked"],
    ]);
    expect(r.snapshot.domains).toMatchObject([{ id: 1, name: null, type: "blocked", iommu: null, page_sizes: [], format: null, static: true }]);
  });
});
