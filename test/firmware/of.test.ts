import { describe, expect, it } from "vitest";
import { Device } from "../../src/base/device.ts";
import { BusType } from "../../src/base/bus.ts";
import { FwnodeHandle } from "../../src/base/fwnode.ts";
import { NO_PCI_IDS, PciBus, PciDev, PciHostBridge } from "../../src/base/pci/pci-dev.ts";
import { dmarFindMatchedUnit } from "../../src/firmware/dmar.ts";
import { ofMapId, ofParsePhandleWithArgs } from "../../src/firmware/of.ts";

function iommuNode(name: string, cells: number): FwnodeHandle {
  const n = new FwnodeHandle(name, "of");
  n.props.set("#iommu-cells", cells);
  return n;
}

describe("device-tree iommus (of_parse_phandle_with_args)", () => {
  const s1 = iommuNode("/smmu1", 1);
  const s2 = iommuNode("/smmu2", 2);
  const dev = new FwnodeHandle("/dev", "of");
  dev.props.set("iommus", [s1, 0x10, s2, 0x20, 0xff]);

  it("splits entries by each target's #iommu-cells", () => {
    expect(ofParsePhandleWithArgs(dev, "iommus", "#iommu-cells", 0)).toEqual({ np: s1, args: [0x10] });
    expect(ofParsePhandleWithArgs(dev, "iommus", "#iommu-cells", 1)).toEqual({ np: s2, args: [0x20, 0xff] });
    expect(ofParsePhandleWithArgs(dev, "iommus", "#iommu-cells", 2)).toBeNull();
  });

  it("reports a list that runs out of cells", () => {
    const bad = new FwnodeHandle("/bad", "of");
    bad.props.set("iommus", [s2, 1]);
    expect(ofParsePhandleWithArgs(bad, "iommus", "#iommu-cells", 0)).toMatchObject({ errno: "EINVAL" });
  });
});

describe("PCI iommu-map (of_map_id)", () => {
  const smmu = iommuNode("/smmu", 1);
  const host = new FwnodeHandle("/pcie", "of");
  host.props.set("iommu-map", [0x0, smmu, 0x10000, 0x100, 0x200, smmu, 0x0, 0x100]);

  it("maps a requester ID into the matching entry's output range", () => {
    expect(ofMapId(host, 0x8, "iommu-map", "iommu-map-mask")).toEqual({ target: smmu, idOut: 0x10008 });
    expect(ofMapId(host, 0x2ff, "iommu-map", "iommu-map-mask")).toEqual({ target: smmu, idOut: 0xff });
  });

  it("bypasses translation for an id no entry covers", () => {
    expect(ofMapId(host, 0x150, "iommu-map", "iommu-map-mask")).toEqual({ target: null, idOut: 0x150 });
  });

  it("applies iommu-map-mask before matching", () => {
    const masked = new FwnodeHandle("/pcie2", "of");
    masked.props.set("iommu-map", [0x0, smmu, 0x0, 0x100]);
    masked.props.set("iommu-map-mask", 0xff);
    expect(ofMapId(masked, 0x1234, "iommu-map", "iommu-map-mask")).toEqual({ target: smmu, idOut: 0x34 });
  });

  it("has no map to apply without the property (ENODEV), and rejects an id-base the mask ignores (EFAULT)", () => {
    expect(ofMapId(new FwnodeHandle("/x", "of"), 1, "iommu-map", "iommu-map-mask")).toMatchObject({ errno: "ENODEV" });
    const bad = new FwnodeHandle("/pcie3", "of");
    bad.props.set("iommu-map", [0x100, smmu, 0x0, 0x100]);
    bad.props.set("iommu-map-mask", 0xff);
    expect(ofMapId(bad, 0x100, "iommu-map", "iommu-map-mask")).toMatchObject({ errno: "EFAULT" });
  });
});

describe("DMAR device scopes (dmar_find_matched_drhd_unit)", () => {
  const bus = new BusType("pci");
  const host = new PciHostBridge(0, null);
  const root = new PciBus(0, null, null, host);
  const spec = { type: "endpoint" as const, acsCap: null, acsCtl: 0, ids: NO_PCI_IDS, multifunction: false, dmaAliasDevfns: [], bridgeXlateRoot: false, pcieBridgeAlias: false, untrusted: false, maxPasids: 0 };
  const gpu = new Device("0000:00:02.0", bus, null, null, new PciDev(root, 0x10, spec));
  const rp = new Device("0000:00:1c.0", bus, null, null, new PciDev(root, 0xe0, { ...spec, type: "root-port" }));
  const sub = new PciBus(1, rp, root, host);
  const nic = new Device("0000:01:00.0", bus, rp, null, new PciDev(sub, 0, spec));
  const plat = new Device("serial", new BusType("platform"), null, null);
  const units = [
    { name: "all", scope: { segment: 0, includeAll: true, devices: new Set<string>() } },
    { name: "gfx", scope: { segment: 0, includeAll: false, devices: new Set(["0000:00:02.0"]) } },
    { name: "port", scope: { segment: 0, includeAll: false, devices: new Set(["0000:00:1c.0"]) } },
  ];

  it("prefers an explicit scope, wherever the INCLUDE_PCI_ALL unit sits in the list", () => {
    expect(dmarFindMatchedUnit(units, gpu)?.name).toBe("gfx");
  });
  it("a bridge in a scope covers the devices below it", () => {
    expect(dmarFindMatchedUnit(units, nic)?.name).toBe("port");
  });
  it("INCLUDE_PCI_ALL catches the rest of its segment's PCI devices, and no platform device", () => {
    const other = new Device("0000:00:03.0", bus, null, null, new PciDev(root, 0x18, spec));
    expect(dmarFindMatchedUnit(units, other)?.name).toBe("all");
    expect(dmarFindMatchedUnit(units, plat)).toBeNull();
  });
});
