import { describe, expect, it } from "vitest";
import { runPath } from "../../src/base/path.ts";
import { pciForEachDmaAlias } from "../../src/base/pci/pci-search.ts";
import { armSmmuMasterAllocSmes, type ArmSmmuV2, type MasterCfg } from "../../src/drivers/arm-smmu.ts";
import { devIommu, devIommuFwspecGet } from "../../src/iommu/dev-iommu.ts";
import { genericSingleDeviceGroup, iommuGroupPut } from "../../src/iommu/group.ts";
import { iommuDeviceUnregister } from "../../src/iommu/register.ts";
import { Machine } from "../../src/sim/machine.ts";
import { checkInvariants, formatViolation } from "../../src/sim/invariants.ts";
import { takeSnapshot, type Snapshot } from "../../src/sim/snapshot.ts";
import { boot, dev, machine, run, scenario, step } from "../helpers.ts";

/** Every (device, requester ID) pci_for_each_dma_alias visits for `name`, RIDs as BB:DD.F. */
function aliases(m: Machine, name: string): string[] {
  const out: string[] = [];
  const h = (n: number) => n.toString(16).padStart(2, "0");
  pciForEachDmaAlias(
    m.devices.get(name)!.dev,
    (pdev, rid) => {
      out.push(`${pdev.name} -> ${h(rid >> 8)}:${h((rid >> 3) & 0x1f)}.${rid & 7}`);
      return false;
    },
    false,
  );
  return out;
}

/** The groups as sorted device lists, in a stable order. */
function groupSets(snap: Snapshot): string[][] {
  return snap.groups.map((g) => [...g.devices].sort()).sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** The arm-smmu (v2) instance's stream-map state: for each valid entry, its SMR and user count. */
function streamMap(m: Machine, instance: string): { idx: number; id: number; mask: number; count: number }[] {
  const smmu = m.instances.get(instance)!.iommu.priv as ArmSmmuV2;
  return smmu.smrs.flatMap((smr, idx) => (smr.valid ? [{ idx, id: smr.id, mask: smr.mask, count: smmu.s2crs[idx]!.count }] : []));
}

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
    const m = machine("name: x\niommus:\n  - {name: s, driver: arm-smmu-v3, fwnode: /s}\n");
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
    expect(r.machine.ctx.trace.records.some((t) => t.fn === "probe_device" && t.detail.includes("ENOSPC"))).toBe(true);
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
    // Nothing of the failed probe is left on the device, and no driver probe ran (probe_error is a driver's).
    expect(dev(r.snapshot, "0000:01:02.0")).toEqual({
      name: "0000:01:02.0",
      bus: "pci",
      registered: true,
      iommu: null,
      ops: null,
      fwspec: null,
      dev_iommu: "none",
      group: null,
      domain: null,
      driver: null,
      probe: "none",
      probe_error: null,
    });
    // The errno: __iommu_probe_device and iommu_probe_device both return ENODEV for it, once each.
    const calls = r.machine.ctx.trace.records
      .filter((t) => t.kind === "call" && t.subject === "0000:01:02.0" && (t.fn === "iommu_probe_device" || t.fn === "__iommu_probe_device"))
      .map((t) => `${t.fn}=${t.result}`);
    expect(calls).toEqual(["iommu_probe_device=ENODEV", "__iommu_probe_device=ENODEV"]);
    expect(r.snapshot.warnings.some((w) => w.includes("a group's devices must share ops"))).toBe(true);
    expect(r.snapshot.warnings).toEqual([
      "__iommu_probe_device: 0000:01:02.0: 0000:01:02.0 (virtio-iommu) would join group 0 of 0000:00:01.0 (arm-smmu-v3): a group's devices must share ops",
    ]);
    expect(r.violations).toEqual([]);
  });
});

/**
 * Bridges on the way to the root substitute requester IDs (drivers/pci/search.c,
 * pci_for_each_dma_alias): a conventional PCI bridge its own RID, a PCIe-to-PCI
 * bridge its secondary bus with devfn 0; a bridge quirked PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS
 * (a PCIe-to-PCI bridge without a PCIe capability) also the latter; a bridge
 * quirked PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT ends the walk before itself.
 */
describe("DMA aliases through bridges (pci_for_each_dma_alias)", () => {
  const TOPOLOGY = (opts: { bridgeAlias?: boolean; xlateRoot?: boolean } = {}) => `
  - {name: "0000:00:1c.0", bus: pci, parent: pcie, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0", type: pcie-pci-bridge}
  - {name: "0000:02:01.0", bus: pci, parent: "0000:01:00.0", type: pci-bridge}
  - {name: "0000:03:00.0", bus: pci, parent: "0000:02:01.0"}
  - {name: "0000:03:01.0", bus: pci, parent: "0000:02:01.0"}
  - {name: "0000:00:1d.0", bus: pci, parent: pcie, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:04:00.0", bus: pci, parent: "0000:00:1d.0", type: pci-bridge${opts.bridgeAlias ? ", pcie-bridge-alias: true" : ""}}
  - {name: "0000:05:00.0", bus: pci, parent: "0000:04:00.0"}
  - {name: "0000:05:02.0", bus: pci, parent: "0000:04:00.0"}
  - {name: "0000:00:1e.0", bus: pci, parent: pcie, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:06:00.0", bus: pci, parent: "0000:00:1e.0", type: pcie-pci-bridge${opts.xlateRoot ? ", bridge-xlate-root: true" : ""}}
  - {name: "0000:07:00.0", bus: pci, parent: "0000:06:00.0"}
  - {name: "0000:07:01.0", bus: pci, parent: "0000:06:00.0"}
`;
  /** The topology behind VT-d (pci_device_group, nothing refused) ... */
  const vtd = (opts: { bridgeAlias?: boolean; xlateRoot?: boolean } = {}) =>
    run(`
name: bridges behind VT-d
iommus:
  - {name: dmar, driver: intel-iommu, scope: all}
devices:
  - {name: pcie, bus: platform}
${TOPOLOGY(opts).replaceAll("parent: pcie, ", "")}`);
  /** ... and behind an SMMUv3 whose iommu-map turns each alias RID into a StreamID of the device's fwspec. */
  const smmu = (opts: { bridgeAlias?: boolean; xlateRoot?: boolean } = {}) =>
    run(`
name: bridges behind an SMMUv3
iommus:
  - {name: smmu, driver: arm-smmu-v3, fwnode: /smmu}
devices:
  - name: pcie
    bus: platform
    fwnode: /pcie
    pci-host: {segment: 0, iommu-map: [[0x0, smmu, 0x0, 0x10000]]}
${TOPOLOGY(opts)}`);

  it("a conventional PCI bridge adds its own RID; the PCIe-to-PCI bridge above it its secondary bus, devfn 0; PCIe ports add none", () => {
    const r = vtd();
    expect(aliases(r.machine, "0000:03:01.0")).toEqual([
      "0000:03:01.0 -> 03:01.0",
      "0000:02:01.0 -> 02:01.0",
      "0000:01:00.0 -> 02:00.0",
    ]);
    expect(aliases(r.machine, "0000:02:01.0")).toEqual(["0000:02:01.0 -> 02:01.0", "0000:01:00.0 -> 02:00.0"]);
    // The PCIe-to-PCI bridge itself only has its own RID: the root port above it is skipped.
    expect(aliases(r.machine, "0000:01:00.0")).toEqual(["0000:01:00.0 -> 01:00.0"]);
    // Everything below the PCIe-to-PCI bridge reaches it through an alias and joins its group.
    expect(groupSets(r.snapshot)).toContainEqual(["0000:01:00.0", "0000:02:01.0", "0000:03:00.0", "0000:03:01.0"]);
    expect(r.violations).toEqual([]);
  });

  it("pcie-bridge-alias: a bridge without a PCIe capability aliases with its secondary bus and devfn 0, not its own RID", () => {
    const plain = vtd();
    const quirked = vtd({ bridgeAlias: true });
    expect(aliases(plain.machine, "0000:05:02.0")).toEqual(["0000:05:02.0 -> 05:02.0", "0000:04:00.0 -> 04:00.0"]);
    expect(aliases(quirked.machine, "0000:05:02.0")).toEqual(["0000:05:02.0 -> 05:02.0", "0000:04:00.0 -> 05:00.0"]);
    // The bridge's own walk does not pass through itself: the flag changes nothing there.
    expect(aliases(quirked.machine, "0000:04:00.0")).toEqual(["0000:04:00.0 -> 04:00.0"]);
    // Either way the alias leads to the bridge, whose group the devices behind it share.
    for (const r of [plain, quirked]) {
      expect(groupSets(r.snapshot)).toContainEqual(["0000:04:00.0", "0000:05:00.0", "0000:05:02.0"]);
      expect(r.violations).toEqual([]);
    }
    // Behind an SMMUv3 the alias RID becomes a StreamID: 05:00.0 repeats its own RID (05:00.0 = 0x500).
    const ids = (r: ReturnType<typeof smmu>, d: string) => dev(r.snapshot, d).fwspec?.ids ?? null;
    expect(ids(smmu({ bridgeAlias: true }), "0000:05:00.0")).toEqual([0x500, 0x500]);
    expect(ids(smmu(), "0000:05:00.0")).toBeNull(); // 0x500 + the bridge's 0x400, already 04:00.0's StreamID: refused
  });

  it("bridge-xlate-root: the walk stops at the bridge, so the devices behind it are seen with their own RIDs only", () => {
    const plain = vtd();
    const quirked = vtd({ xlateRoot: true });
    expect(aliases(plain.machine, "0000:07:01.0")).toEqual(["0000:07:01.0 -> 07:01.0", "0000:06:00.0 -> 07:00.0"]);
    expect(aliases(quirked.machine, "0000:07:01.0")).toEqual(["0000:07:01.0 -> 07:01.0"]);
    // pci_device_group still climbs to the bridge: a PCIe-to-PCI bridge never has ACS.
    for (const r of [plain, quirked]) {
      expect(groupSets(r.snapshot)).toContainEqual(["0000:06:00.0", "0000:07:00.0", "0000:07:01.0"]);
      expect(r.violations).toEqual([]);
    }
    // Behind an SMMUv3: without the quirk 07:01.0 also carries the bridge's alias 0x700, which is
    // 07:00.0's own StreamID, and is refused; with it each device has its own StreamID and probes.
    const a = smmu();
    expect(dev(a.snapshot, "0000:07:00.0").fwspec?.ids).toEqual([0x700, 0x700]);
    expect(dev(a.snapshot, "0000:07:01.0")).toMatchObject({ iommu: null, dev_iommu: "none" });
    expect(a.snapshot.warnings.some((w) => w.includes("0000:07:01.0: Aliasing StreamID 0x700"))).toBe(true);
    const b = smmu({ xlateRoot: true });
    expect(dev(b.snapshot, "0000:07:00.0")).toMatchObject({ iommu: "smmu", fwspec: { ids: [0x700] } });
    expect(dev(b.snapshot, "0000:07:01.0")).toMatchObject({ iommu: "smmu", fwspec: { ids: [0x708] } });
    expect(groupSets(b.snapshot)).toContainEqual(["0000:06:00.0", "0000:07:00.0", "0000:07:01.0"]);
    expect(b.violations).toEqual([]);
  });
});

describe("arm-smmu (v2) probe_device errnos", () => {
  const SMMU = `
name: v2
iommus:
  - {name: smmu, driver: arm-smmu, fwnode: /smmu, "#iommu-cells": 2, sid-bits: 8, stream-map-entries: 8}
devices:
  - {name: ok, bus: platform, fwnode: /ok, iommus: [[smmu, 0x12, 0x0]]}
`;
  const refusal = (r: ReturnType<typeof run>, d: string) =>
    r.machine.ctx.trace.records.filter((t) => t.fn === "probe_device" && t.subject === d && t.detail.includes("refused")).map((t) => t.detail);

  it("a stream ID or SMR mask wider than the SMMU implements is EINVAL, and claims no stream-map entry", () => {
    const r = run(SMMU + `
  - {name: wide-sid, bus: platform, fwnode: /wide-sid, iommus: [[smmu, 0x100, 0x0]]}
  - {name: wide-mask, bus: platform, fwnode: /wide-mask, iommus: [[smmu, 0x20, 0x100]]}
`);
    expect(refusal(r, "wide-sid")).toEqual(["arm-smmu refused: EINVAL: stream ID 0x100 out of range for SMMU (0xff)"]);
    expect(refusal(r, "wide-mask")).toEqual(["arm-smmu refused: EINVAL: SMR mask 0x100 out of range for SMMU (0xff)"]);
    for (const d of ["wide-sid", "wide-mask"]) expect(dev(r.snapshot, d)).toMatchObject({ iommu: null, group: null, dev_iommu: "none" });
    expect(streamMap(r.machine, "smmu")).toEqual([{ idx: 0, id: 0x12, mask: 0, count: 1 }]);
    expect(r.violations).toEqual([]);
  });

  it("two ids of one master on the same stream-map entry count it twice, and release frees it only with the last user", () => {
    const s = scenario(SMMU + `
  - {name: twice, bus: platform, fwnode: /twice, iommus: [[smmu, 0x40, 0x0f], [smmu, 0x42, 0x03]]}
  - {name: other, bus: platform, fwnode: /other, iommus: [[smmu, 0x44, 0x0]]}
`);
    const m = boot(s);
    const snap = () => takeSnapshot(m, [], checkInvariants(m).map(formatViolation));
    // 0x42/0x3 and 0x44/0x0 lie inside 0x40/0xf: all three ids use entry 1, twice's two of them included.
    expect(dev(snap(), "twice")).toMatchObject({ iommu: "smmu", dev_iommu: "probed" });
    expect((devIommu(m.devices.get("twice")!.dev)!.priv as MasterCfg).smendx).toEqual([1, 1]);
    expect(streamMap(m, "smmu")).toEqual([
      { idx: 0, id: 0x12, mask: 0, count: 1 },
      { idx: 1, id: 0x40, mask: 0x0f, count: 3 },
    ]);
    // Sharing an entry means sharing a group.
    expect(groupSets(snap())).toEqual([["ok"], ["other", "twice"]]);
    expect(snap().violations).toEqual([]);
    // twice's release drops both its users of the entry; other keeps it.
    expect(step(m, { device_del: "twice" })).toBe(0);
    expect(streamMap(m, "smmu")).toEqual([
      { idx: 0, id: 0x12, mask: 0, count: 1 },
      { idx: 1, id: 0x40, mask: 0x0f, count: 1 },
    ]);
    expect(step(m, { device_del: "other" })).toBe(0);
    expect(streamMap(m, "smmu")).toEqual([{ idx: 0, id: 0x12, mask: 0, count: 1 }]);
    expect(snap().violations).toEqual([]);
  });

  it("a bridged PCI function whose own RID is also its bridge alias probes with both ids on one entry", () => {
    const r = run(`
name: v2 bridged
iommus:
  - {name: smmu, driver: arm-smmu, fwnode: /smmu, stream-map-entries: 8}
devices:
  - name: pcie
    bus: platform
    fwnode: /pcie
    pci-host: {segment: 0, iommu-map: [[0x0, smmu, 0x0, 0x10000]]}
  - {name: "0000:00:1c.0", bus: pci, parent: pcie, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0", type: pcie-pci-bridge}
  - {name: "0000:02:00.0", bus: pci, parent: "0000:01:00.0"}
  - {name: "0000:02:01.0", bus: pci, parent: "0000:01:00.0"}
`);
    // 02:00.0's own RID and the bridge's alias are both 02:00.0 (0x200); 02:01.0 adds its own 0x208.
    expect(dev(r.snapshot, "0000:02:00.0")).toMatchObject({ iommu: "smmu", fwspec: { ids: [0x200, 0x200] } });
    expect(dev(r.snapshot, "0000:02:01.0")).toMatchObject({ iommu: "smmu", fwspec: { ids: [0x208, 0x200] } });
    expect(streamMap(r.machine, "smmu").find((e) => e.id === 0x200)?.count).toBe(3);
    expect(groupSets(r.snapshot)).toContainEqual(["0000:01:00.0", "0000:02:00.0", "0000:02:01.0"]);
    expect(r.violations).toEqual([]);
  });

  it("EEXIST only when the master's cfg already holds an entry for the id; the stream map is left as it was", () => {
    const r = run(SMMU + "\n  - {name: twice, bus: platform, fwnode: /twice, iommus: [[smmu, 0x40, 0x0f], [smmu, 0x42, 0x03]]}\n");
    const d = r.machine.devices.get("twice")!.dev;
    const cfg = devIommu(d)!.priv as MasterCfg;
    const before = streamMap(r.machine, "smmu");
    const ret = armSmmuMasterAllocSmes(cfg, devIommuFwspecGet(d)!.ids, d.name);
    expect(ret === 0 ? "ok" : ret.errno).toBe("EEXIST");
    expect(streamMap(r.machine, "smmu")).toEqual(before);
    expect(cfg.smendx).toEqual([1, 1]);
  });
});
