import { describe, expect, it } from "vitest";
import { runPath } from "../../src/base/path.ts";
import { genericSingleDeviceGroup, iommuGroupPut } from "../../src/iommu/group.ts";
import { iommuDeviceUnregister } from "../../src/iommu/register.ts";
import { Machine } from "../../src/sim/machine.ts";
import { dev, run, scenario } from "../helpers.ts";

describe("groups", () => {
  it("ids are the lowest free integers, reused after a group is released", () => {
    const r = run(`
name: ids
iommus:
  - {name: s, driver: arm-smmu-v3, fwnode: /s}
devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[s, 1]]}
  - {name: b, bus: platform, fwnode: /b, iommus: [[s, 2]]}
  - {name: c, bus: platform, fwnode: /c, iommus: [[s, 3]]}
  - {name: d, bus: platform, fwnode: /d, iommus: [[s, 4]], added: false}
events:
  - device_del: b
  - device_add: d
  - expect: {devices: {a: {group: 0}, c: {group: 2}, d: {group: 1}}}
`);
    expect(r.failures).toEqual([]);
  });

  it("generic_single_device_group: one group per instance, held by the instance until it unregisters", () => {
    const m = new Machine(scenario("name: x\niommus:\n  - {name: s, driver: arm-smmu-v3, fwnode: /s}\n"));
    const iommu = m.instances.get("s")!.iommu;
    const g1 = genericSingleDeviceGroup(m.k, iommu);
    const g2 = genericSingleDeviceGroup(m.k, iommu);
    expect(g1).toBe(g2);
    expect(g1.refcount).toBe(3);
    iommuGroupPut(m.k, g1);
    iommuGroupPut(m.k, g2);
    iommu.listed = true;
    m.k.deviceList.push(iommu);
    runPath(iommuDeviceUnregister(m.k, iommu));
    expect(g1.released).toBe(true);
    expect(m.k.groups.size).toBe(0);
  });

  it("arm-smmu (v2): masters whose stream IDs land on one stream-map entry share a group", () => {
    const r = run(`
name: smr
iommus:
  - {name: smmu, driver: arm-smmu, fwnode: /smmu, "#iommu-cells": 2, stream-map-entries: 4}
devices:
  - {name: cam0, bus: platform, fwnode: /cam0, iommus: [[smmu, 0x400, 0x7f]]}
  - {name: cam1, bus: platform, fwnode: /cam1, iommus: [[smmu, 0x410, 0x0f]]}
  - {name: usb, bus: platform, fwnode: /usb, iommus: [[smmu, 0x800, 0x0]]}
  - {name: odd, bus: platform, fwnode: /odd, iommus: [[smmu, 0x470, 0xff]]}
`);
    // cam1's 0x410/0x0f is entirely covered by cam0's entry 0x400/0x7f: same entry, same group.
    expect(r.snapshot.groups.map((g) => g.devices)).toEqual([["cam0", "cam1"], ["usb"]]);
    // odd's 0x470/0xff overlaps that entry without being covered by it: refused.
    expect(dev(r.snapshot, "odd")).toMatchObject({ iommu: null, dev_iommu: "none" });
    expect(r.violations).toEqual([]);
  });

  it("arm-smmu (v2): a full stream-map table refuses the next master (ENOSPC)", () => {
    const r = run(`
name: full
iommus:
  - {name: smmu, driver: arm-smmu, fwnode: /smmu, stream-map-entries: 2}
devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[smmu, 1]]}
  - {name: b, bus: platform, fwnode: /b, iommus: [[smmu, 2]]}
  - {name: c, bus: platform, fwnode: /c, iommus: [[smmu, 3]]}
events:
  - device_del: a
  - device_del: c
  - device_add: c
  - expect: {devices: {c: {iommu: smmu}}, group_count: 2}
`);
    expect(r.failures).toEqual([]);
    expect(r.machine.dc.trace.records.some((t) => t.fn === "probe_device" && t.detail.includes("ENOSPC"))).toBe(true);
  });

  it("a device whose ops differ from its group's fails probe", () => {
    const r = run(`
name: mixed group
iommus:
  - {name: smmu, driver: arm-smmu-v3, fwnode: /smmu}
  - {name: viommu, driver: virtio-iommu, fwnode: /viommu}
devices:
  - name: pcie
    bus: platform
    fwnode: /pcie
    pci-host: {segment: 0, iommu-map: [[0x0, smmu, 0x0, 0x100], [0x100, viommu, 0x100, 0x100]]}
  - {name: "0000:00:01.0", bus: pci, parent: pcie, type: pcie-pci-bridge}
  - {name: "0000:01:02.0", bus: pci, parent: "0000:00:01.0"}
`);
    // The conventional device aliases to the bridge (RID 01:00.0 maps to viommu) but its group is the bridge's (smmu).
    expect(dev(r.snapshot, "0000:00:01.0")).toMatchObject({ iommu: "smmu", group: 0 });
    expect(dev(r.snapshot, "0000:01:02.0")).toMatchObject({ iommu: null, group: null, dev_iommu: "none" });
    expect(r.snapshot.warnings.some((w) => w.includes("a group's devices must share ops"))).toBe(true);
    expect(r.violations).toEqual([]);
  });
});
