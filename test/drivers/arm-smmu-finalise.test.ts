/**
 * arm-smmu (v2) finalises a domain only when a master attaches
 * (arm_smmu_init_domain_context from arm_smmu_attach_dev), device or not:
 * a default domain's firmware direct mappings fail before the attach and go
 * in after it (iommu_setup_default_domain's second try).
 */
import { describe, expect, it } from "vitest";
import { runPath } from "../../src/base/path.ts";
import { devGroup } from "../../src/iommu/dev-iommu.ts";
import { iommuDomainAllocBus, iommuPagingDomainAlloc } from "../../src/iommu/domain-alloc.ts";
import { iommuAttachDevice } from "../../src/iommu/attach.ts";
import { iommuIovaToPhys, iommuMap } from "../../src/iommu/map.ts";
import { isErr } from "../../src/lib/errno.ts";
import { IOMMU_READ } from "../../src/pgtable/types.ts";
import { boot, dev, run } from "../helpers.ts";

const YAML = `
name: v2
iommus:
  - {name: smmu, driver: arm-smmu, fwnode: /smmu, page-sizes: [4K, 2M, 1G]}
  - {name: smmu64k, driver: arm-smmu, fwnode: /smmu64k, page-sizes: [64K, 512M]}
devices:
  - {name: disp, bus: platform, fwnode: /disp, iommus: [[smmu, 0x10]], reserved-regions: [{start: 0x90000000, length: 0x4000, type: direct}]}
  - {name: cam, bus: platform, fwnode: /cam, iommus: [[smmu64k, 0x20]]}
`;

describe("arm-smmu (v2): finalised at the first attach", () => {
  it("the default domain's direct mappings fail before the attach (a WARN) and are made after it", () => {
    const r = run(YAML);
    expect(r.violations).toEqual([]);
    expect(r.snapshot.warnings.some((w) => /not able to establish FW requested direct mapping/.test(w))).toBe(true);
    const d = r.snapshot.domains.find((x) => x.id === dev(r.snapshot, "disp").domain);
    expect(d).toMatchObject({ type: "DMA", iommu: "smmu", page_sizes: ["4K", "2M", "1G"], mapped_bytes: 0x4000 });
    const dom = devGroup(r.machine.devices.get("disp")!.dev)!.defaultDomain!;
    expect(iommuIovaToPhys(dom, 0x90001234)).toBe(0x90001234);
  });

  it("a domain allocated through the device's ops is not finalised either: its SMMU's page sizes (v6.16+), no map until attached", () => {
    const m = boot(YAML);
    const cam = m.devices.get("cam")!.dev;
    const d = iommuPagingDomainAlloc(m.k, cam);
    if (isErr(d)) throw new Error(d.message);
    expect(d.iommu).toBeNull();
    expect(d.pgsizes).toEqual([0x10000, 0x20000000]);
    const e = iommuMap(d, 0x100000, 0x80000000, 0x10000, IOMMU_READ);
    expect(isErr(e) && e.errno).toBe("ENODEV");
    // Attached, it is finalised for cam's SMMU and maps.
    expect(runPath(iommuAttachDevice(m.k, d, cam))).toBe(0);
    expect(d.iommu?.name).toBe("smmu64k");
    expect(iommuMap(d, 0x100000, 0x80000000, 0x10000, IOMMU_READ)).toBe(0);
  });

  it("with no device (iommu_domain_alloc(bus), up to v6.12) the page sizes are the ops' union of both SMMUs", () => {
    const m = boot(YAML);
    const d = iommuDomainAllocBus(m.k, m.devices.get("cam")!.dev.bus);
    if (isErr(d)) throw new Error(d.message);
    expect(d.iommu).toBeNull();
    expect(d.pgsizes).toEqual([0x1000, 0x10000, 0x200000, 0x20000000, 0x40000000]);
  });
});
