import { describe, expect, it } from "vitest";
import { devGroup } from "../../src/iommu/dev-iommu.ts";
import { iommuIovaToPhys } from "../../src/iommu/map.ts";
import { dev, run } from "../helpers.ts";

const SOC = (boot: string, extra = "") => `
name: soc
boot: ${boot}
iommus:
  - {name: s, driver: arm-smmu-v3, fwnode: /s}
devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[s, 1]]${extra}}
`;

const typeOf = (yaml: string) => run(yaml).snapshot.groups[0]!.type;

describe("default domain type", () => {
  it("arm64 is strict (DMA), x86 lazy (DMA-FQ), and iommu.strict= overrides either", () => {
    expect(typeOf(SOC("{}"))).toBe("DMA");
    expect(typeOf(SOC('{cmdline: "iommu.strict=0"}'))).toBe("DMA-FQ");
    expect(typeOf(SOC("{arch: x86}"))).toBe("DMA-FQ");
    expect(typeOf(SOC('{arch: x86, cmdline: "iommu.strict=1"}'))).toBe("DMA");
  });

  it("iommu.passthrough=1 (and x86 iommu=pt) give identity; passthrough=0 DMA", () => {
    expect(typeOf(SOC('{cmdline: "iommu.passthrough=1"}'))).toBe("identity");
    expect(typeOf(SOC('{arch: x86, cmdline: "iommu=pt"}'))).toBe("identity");
    expect(typeOf(SOC('{cmdline: "iommu.passthrough=0 iommu.strict=0"}'))).toBe("DMA-FQ");
  });

  it("a malformed value of a known option is refused when the scenario is loaded", () => {
    expect(() => run(SOC('{cmdline: "iommu.passthrough=maybe"}'))).toThrow(/boot\.cmdline: iommu\.passthrough=maybe: expected a boolean .*found 'maybe'/);
  });

  it("the driver's def_domain_type wins over the command line", () => {
    expect(typeOf(SOC("{}", ", def_domain_type: identity"))).toBe("identity");
    expect(typeOf(SOC('{cmdline: "iommu.passthrough=1"}', ", def_domain_type: DMA"))).toBe("DMA");
  });

  it("a static default domain (the mock's BLOCKED one) is used whatever the command line says", () => {
    const r = run(`
name: mock
boot: {cmdline: "iommu.passthrough=1"}
iommus:
  - {name: m, driver: mock}
devices:
  - {name: md, bus: iommufd_mock}
`);
    expect(r.snapshot.groups[0]).toMatchObject({ type: "blocked", owner: "none" });
  });
});

describe("direct mappings (reserved regions)", () => {
  const RMRR = `
name: rmrr
iommus:
  - {name: dmar, driver: intel-iommu, scope: all}
devices:
  - {name: "0000:00:14.0", bus: pci, reserved-regions: [{start: 0x7c000000, length: 0x3000, type: direct}, {start: 0x7c003000, length: 0x1000, type: direct}]}
  - {name: "0000:00:02.0", bus: pci, reserved-regions: [{start: 0x80000000, length: 0x2000, type: direct-relaxable}]}
`;

  it("are mapped 1:1 into the default (DMA) domain before the device is attached", () => {
    const r = run(RMRR);
    const usb = r.machine.devices.get("0000:00:14.0")!.dev;
    const dom = devGroup(usb)!.defaultDomain!;
    for (const iova of [0x7c000000, 0x7c001234, 0x7c003ff8]) expect(iommuIovaToPhys(dom, iova)).toBe(iova);
    expect(iommuIovaToPhys(dom, 0x7c004000)).toBe(0);
    const gfx = devGroup(r.machine.devices.get("0000:00:02.0")!.dev)!.defaultDomain!;
    expect(iommuIovaToPhys(gfx, 0x80001000)).toBe(0x80001000);
  });

  it("are listed, merged per type, in the group's reserved_regions", () => {
    const r = run(RMRR);
    const g = r.snapshot.groups.find((x) => x.devices.includes("0000:00:14.0"))!;
    expect(g.reserved_regions).toEqual([
      "0x000000007c000000 0x000000007c003fff direct",
      "0x00000000fee00000 0x00000000feefffff msi",
    ]);
  });

  it("a device with a DIRECT region cannot be blocked: user ownership fails with EINVAL", () => {
    const r = run(RMRR + `events:
  - claim_dma_owner: {device: "0000:00:14.0", owner: vfio}
    expect_error: EINVAL
  - claim_dma_owner: {device: "0000:00:02.0", owner: vfio}
  - expect:
      groups:
        - {devices: ["0000:00:14.0"], owner: none}
        - {devices: ["0000:00:02.0"], owner: user, owner_cnt: 1}
      violations: []
`);
    expect(r.failures).toEqual([]);
  });

  it("identity domains get no mappings: nothing to map, the IOVA is the address", () => {
    const r = run(RMRR.replace("name: rmrr", 'name: rmrr\nboot: {cmdline: "iommu.passthrough=1"}'));
    expect(r.snapshot.groups.every((g) => g.type === "identity")).toBe(true);
    const dom = devGroup(r.machine.devices.get("0000:00:14.0")!.dev)!.defaultDomain!;
    expect(iommuIovaToPhys(dom, 0x1234000)).toBe(0x1234000);
    expect(dev(r.snapshot, "0000:00:14.0").domain).toBe(dom.id);
  });
});
