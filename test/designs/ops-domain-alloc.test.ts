/**
 * domain_alloc=bus-null-device (iommu_domain_alloc(bus)) under each
 * ops_resolution era: up to v6.7 the bus's own ops allocate the domain
 * (NULL for a bus without them, and a domain even when no device on the
 * bus has an IOMMU); since v6.8 the ops of the bus's devices, EBUSY with a
 * WARN when two drivers serve them.
 */
import { describe, expect, it } from "vitest";
import type { Machine } from "../../src/sim/machine.ts";
import { boot, outcome, step } from "../helpers.ts";

type OpsName = "bus-set-iommu" | "bus-ops" | "upstream";

/** The ops of the domain named `name`. */
const ownerOf = (m: Machine, name: string): string | undefined => m.userDomains.get(name)?.owner?.name;

describe("domain_alloc bus-null-device, ops from the bus", () => {
  // arm-smmu-v3 registers first; arm-smmu (v2) second: both register under upstream and bus-set-iommu.
  const arm = (s: OpsName) => `
name: arm-smmu-v3 and arm-smmu on one machine
boot: {strategy: {ops_resolution: ${s}, domain_alloc: bus-null-device}}
iommus:
  - {name: smmu3, driver: arm-smmu-v3, fwnode: /soc/iommu@40000000}
  - {name: smmu2, driver: arm-smmu, fwnode: /soc/iommu@50000000}
devices:
  - {name: ufs, bus: platform, fwnode: /soc/ufs, iommus: [[smmu3, 0x100]]}
  - {name: gpu, bus: platform, fwnode: /soc/gpu, iommus: [[smmu2, 0x10]]}
`;

  it("upstream: the platform bus's devices have two drivers: EBUSY, with iommu_domain_alloc's WARN", () => {
    const m = boot(arm("upstream"));
    expect(outcome(step(m, { domain_alloc: { name: "d", device: "gpu" } }))).toBe("EBUSY");
    expect(m.ctx.diag.warnings.map((w) => w.fn)).toContain("__iommu_domain_alloc_dev");
  });

  it("bus-set-iommu: the platform bus's ops (arm-smmu-v3's, first come) allocate, even for arm-smmu's device", () => {
    const m = boot(arm("bus-set-iommu"));
    expect(step(m, { domain_alloc: { name: "d", device: "gpu" } })).toBe(0);
    expect(ownerOf(m, "d")).toBe("arm-smmu-v3");
    // No device: finalised for no SMMU until its first attach.
    expect(m.userDomains.get("d")!.iommu).toBeNull();
    expect(m.ctx.diag.warnings).toEqual([]);
  });

  // VT-d, with a PCI device behind it and a platform device no unit covers.
  const x86 = (s: OpsName) => `
name: VT-d and a platform device
boot: {strategy: {ops_resolution: ${s}, domain_alloc: bus-null-device}}
iommus:
  - {name: dmar0, driver: intel-iommu, scope: all}
devices:
  - {name: "0000:00:02.0", bus: pci, type: endpoint}
  - {name: serial, bus: platform}
`;

  it("bus-ops: the platform bus carries VT-d's ops, so a domain comes back though no platform device has an IOMMU", () => {
    const m = boot(x86("bus-ops"));
    expect(step(m, { domain_alloc: { name: "d", device: "serial" } })).toBe(0);
    expect(ownerOf(m, "d")).toBe("intel-iommu");
  });

  it("bus-set-iommu: VT-d claimed only the PCI bus; the platform bus has no ops: ENODEV", () => {
    const m = boot(x86("bus-set-iommu"));
    expect(outcome(step(m, { domain_alloc: { name: "d", device: "serial" } }))).toBe("ENODEV");
    expect(step(m, { domain_alloc: { name: "p", device: "0000:00:02.0" } })).toBe(0);
    expect(ownerOf(m, "p")).toBe("intel-iommu");
  });

  it("upstream: no device on the platform bus has an IOMMU: ENODEV", () => {
    const m = boot(x86("upstream"));
    expect(outcome(step(m, { domain_alloc: { name: "d", device: "serial" } }))).toBe("ENODEV");
  });
});
