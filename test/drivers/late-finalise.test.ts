/**
 * Domains allocated with no device (iommu_domain_alloc(bus), up to v6.12):
 * what each driver reports and does until the first attach finalises them.
 */
import { describe, expect, it } from "vitest";
import { iommuDomainAllocBus } from "../../src/iommu/domain-alloc.ts";
import type { IommuDomain } from "../../src/iommu/domain.ts";
import { iommuMap } from "../../src/iommu/map.ts";
import { isErr } from "../../src/lib/errno.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../../src/pgtable/types.ts";
import type { Machine } from "../../src/sim/machine.ts";
import { boot, step } from "../helpers.ts";

function busDomain(m: Machine, device: string): IommuDomain {
  const d = iommuDomainAllocBus(m.k, m.devices.get(device)!.dev.bus);
  if (isErr(d)) throw new Error(d.message);
  return d;
}

const SMMUS = `
name: s
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /smmu0, page-sizes: [4K, 2M, 1G]}
  - {name: smmu1, driver: arm-smmu-v3, fwnode: /smmu1, page-sizes: [64K, 512M], registered: false}
devices:
  - {name: dsp, bus: platform, fwnode: /dsp, iommus: [[smmu0, 0x10]]}
  - {name: gpu, bus: platform, fwnode: /gpu, iommus: [[smmu1, 0x20]]}
`;

describe("arm-smmu-v3: a domain allocated with no device", () => {
  it("reports the sizes of the SMMUs probed so far: a late SMMU adds its own when it registers, and they stay after it goes", () => {
    const m = boot(SMMUS);
    expect(busDomain(m, "dsp").pgsizes).toEqual([0x1000, 0x200000, 0x40000000]);
    expect(step(m, { iommu_register: "smmu1" })).toBe(0);
    expect(busDomain(m, "dsp").pgsizes).toEqual([0x1000, 0x10000, 0x200000, 0x20000000, 0x40000000]);
    expect(step(m, { iommu_unregister: "smmu1" })).toBe(0);
    // arm_smmu_ops.pgsize_bitmap is only ever ORed into.
    expect(busDomain(m, "dsp").pgsizes).toEqual([0x1000, 0x10000, 0x200000, 0x20000000, 0x40000000]);
  });

  it("a failed iommu_register of a registered SMMU probes nothing again", () => {
    const m = boot(SMMUS);
    const r = step(m, { iommu_register: "smmu0" });
    expect(isErr(r) && r.errno).toBe("EEXIST");
    expect(busDomain(m, "dsp").pgsizes).toEqual([0x1000, 0x200000, 0x40000000]);
  });

  it("a PASID attach finalises it for the master's SMMU, as arm_smmu_s1_set_dev_pasid does; another SMMU's master then gets EINVAL", () => {
    const m = boot(SMMUS.replace(", registered: false", ""));
    const d = busDomain(m, "dsp");
    const dsp = m.devices.get("dsp")!.dev;
    expect(d.ops.setDevPasid!(d, dsp, 1, null)).toBe(0);
    expect(d.iommu?.name).toBe("smmu0");
    expect(d.pgsizes).toEqual([0x1000, 0x200000, 0x40000000]);
    const r = d.ops.setDevPasid!(d, m.devices.get("gpu")!.dev, 1, null);
    expect(isErr(r) && r.errno).toBe("EINVAL");
  });
});

const VIRTIO = `
name: v
boot: {arch: arm64}
iommus:
  - {name: viommu0, driver: virtio-iommu, fwnode: /viommu0, page-sizes: [4K]}
  - {name: viommu1, driver: virtio-iommu, fwnode: /viommu1, page-sizes: [64K], registered: false}
devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[viommu0, 1]]}
  - {name: b, bus: platform, fwnode: /b, iommus: [[viommu1, 2]]}
`;

describe("virtio-iommu: a domain allocated with no device", () => {
  it("takes the page sizes of the last viommu probed (viommu_probe overwrites viommu_ops.pgsize_bitmap)", () => {
    const m = boot(VIRTIO);
    expect(busDomain(m, "a").pgsizes).toEqual([0x1000]);
    expect(step(m, { iommu_register: "viommu1" })).toBe(0);
    expect(busDomain(m, "a").pgsizes).toEqual([0x10000]);
  });

  it("refuses a map before its first attach with EINVAL (viommu_map_pages: the prot exceeds its map_flags), then attaches and maps", () => {
    const m = boot(VIRTIO);
    const d = busDomain(m, "a");
    const e = iommuMap(d, 0x100000, 0x80000000, 0x1000, IOMMU_READ | IOMMU_WRITE);
    expect(isErr(e) && e.errno).toBe("EINVAL");
    m.userDomains.set("d", d);
    expect(step(m, { attach_device: { domain: "d", device: "a" } })).toBe(0);
    expect(d.iommu?.name).toBe("viommu0");
    expect(iommuMap(d, 0x100000, 0x80000000, 0x1000, IOMMU_READ | IOMMU_WRITE)).toBe(0);
  });
});
