/**
 * A paging domain's stats: the top table counts from finalisation (the
 * model builds it at the first map), and mapped bytes come from a walk.
 */
import { describe, expect, it } from "vitest";
import { pagingPriv } from "../../src/drivers/paging-domain.ts";
import { iommuDomainFree, iommuPagingDomainAlloc } from "../../src/iommu/domain-alloc.ts";
import { iommuDomainMappedBytes, type IommuDomain } from "../../src/iommu/domain.ts";
import { iommuMap, iommuUnmap } from "../../src/iommu/map.ts";
import { isErr } from "../../src/lib/errno.ts";
import { allocIoPgtableOps } from "../../src/pgtable/index.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../../src/pgtable/types.ts";
import { Machine } from "../../src/sim/machine.ts";
import { boot } from "../helpers.ts";

const MACHINES = {
  "arm-smmu-v3": ["name: s\niommus:\n  - {name: s, driver: arm-smmu-v3, fwnode: /s}\ndevices:\n  - {name: a, bus: platform, fwnode: /a, iommus: [[s, 1]]}\n", "a", 0x10_0000],
  "intel-iommu": [
    'name: v\niommus:\n  - {name: dmar0, driver: intel-iommu, scope: all}\ndevices:\n  - {name: "0000:00:1c.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}\n  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0"}\n',
    "0000:01:00.0",
    0x10_0000,
  ],
  mock: ["name: m\niommus:\n  - {name: mock-iommu, driver: mock}\ndevices:\n  - {name: a, bus: iommufd_mock}\n", "a", 0x100_0000],
} as const;

function freshDomain(driver: keyof typeof MACHINES): IommuDomain {
  return freshDomainOn(driver).d;
}

function freshDomainOn(driver: keyof typeof MACHINES): { d: IommuDomain; m: Machine } {
  const [yaml, dev] = MACHINES[driver];
  const m = boot(yaml);
  const d = iommuPagingDomainAlloc(m.k, m.devices.get(dev)!.dev);
  if (isErr(d)) throw new Error(d.message);
  return { d, m };
}

describe("paging domain stats", () => {
  for (const driver of Object.keys(MACHINES) as (keyof typeof MACHINES)[]) {
    it(`${driver}: a fresh domain counts exactly the top table its format allocates, before the model builds it`, () => {
      const d = freshDomain(driver);
      const p = pagingPriv(d);
      expect(p.pgtbl).toBeNull();
      const built = allocIoPgtableOps(p.format!.fmt, { ...p.format!.cfg });
      if (isErr(built)) throw new Error(built.message);
      const s = d.ops.stats!(d);
      expect([s.tablePages, s.tableBytes, s.mappedBytes]).toEqual([built.tablePages(), built.tableBytes(), 0]);
    });

    it(`${driver}: a freed domain holds no tables, whether it was ever mapped or not`, () => {
      for (const mapFirst of [false, true]) {
        const { d, m } = freshDomainOn(driver);
        if (mapFirst) expect(iommuMap(d, MACHINES[driver][2], 0x8000_0000, d.pgsizes[0]!, IOMMU_READ)).toBe(0);
        iommuDomainFree(m.k, d);
        const s = d.ops.stats!(d);
        expect([s.tablePages, s.tableBytes]).toEqual([0, 0]);
      }
    });

    it(`${driver}: mapped bytes follow the table through map and unmap`, () => {
      const d = freshDomain(driver);
      const iova = MACHINES[driver][2];
      const g = d.pgsizes[0]!;
      expect(iommuMap(d, iova, 0x8000_0000, 8 * g, IOMMU_READ | IOMMU_WRITE)).toBe(0);
      expect(iommuDomainMappedBytes(d)).toBe(8 * g);
      expect(iommuUnmap(d, iova, 3 * g)).toBe(3 * g);
      expect(iommuDomainMappedBytes(d)).toBe(5 * g);
      expect(iommuUnmap(d, iova + 3 * g, 5 * g)).toBe(5 * g);
      expect(iommuDomainMappedBytes(d)).toBe(0);
    });
  }
});
