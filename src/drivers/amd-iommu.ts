/**
 * AMD-Vi (drivers/iommu/amd/iommu.c). Like VT-d, units register without a
 * fwnode and are found by IVRS scope; only PCI devices are theirs. A
 * paging domain allocated with IOMMU_HWPT_ALLOC_PASID uses the v2 (x86-64
 * CPU format) table, so the RID domain of a group with a PASID-capable
 * device can also carry PASID attachments; otherwise the v1 table. Both are
 * modelled with the x86 4-level layout the model implements (VT-d second
 * stage): the AMD v1 replicated-PTE sizes are not modelled.
 */
import type { Device } from "../base/device.ts";
import { dmarIncludeAllScope } from "../firmware/dmar.ts";
import { DmarUnits } from "./dmar-units.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { devIommu } from "../iommu/dev-iommu.ts";
import { IOMMU_DOMAIN_UNMANAGED, type IommuDomain } from "../iommu/domain.ts";
import { IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_PASID } from "../iommu/domain-alloc.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import { IommuDevice } from "../iommu/iommu-device.ts";
import type { IommuOps } from "../iommu/ops.ts";
import { pciDeviceGroup } from "../iommu/pci-group.ts";
import type { IommuResvRegion } from "../iommu/resv-region.ts";
import { IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE } from "../pgtable/types.ts";
import { SZ_1G, SZ_2M, SZ_4K } from "../pgtable/sizes.ts";
import { firmwareResvRegions, quirkDefDomainType } from "./env-tables.ts";
import { newPagingDomain, pagingDomainOps, sameInstance } from "./paging-domain.ts";
import { pagingFormat, type PagingFormat } from "./paging-format.ts";
import { disablePasidAtRelease } from "./pasid-enable.ts";
import { staticBlockedDomain, staticIdentityDomain } from "./static-domains.ts";
import { busClaims } from "./bus-claims.ts";
import type { DriverEnv, IommuDriver, IommuDriverFactory, IommuInstanceDesc } from "./driver.ts";

export const DRIVER = "amd-iommu";

// drivers/iommu/amd/amd_iommu_types.h: MSI window
export const MSI_RANGE_START = 0xfee00000;
export const MSI_RANGE_END = 0xfeefffff;
export const HT_RANGE_START = 0xfd00000000;
export const HT_RANGE_END = 0xffffffffff;

export class AmdIommu {
  constructor(
    /** GIOSUP: the unit can use v2 (guest) page tables, hence PASID-capable RID domains. */
    readonly v2Supported: boolean,
  ) {}

  private readonly formats = new Map<string, PagingFormat>();

  /** The format of this unit's v1 or v2 domains (computed once each). */
  format(iommu: IommuDevice, label: "amd-v1" | "amd-v2"): PagingFormat {
    let f = this.formats.get(label);
    if (f === undefined) {
      f = pagingFormat(iommu, "VTDSS", { pgsizeBitmap: SZ_4K + SZ_2M + SZ_1G, ias: 48, oas: 52 }, { start: 0, end: 2 ** 48 - 1 }, label);
      this.formats.set(label, f);
    }
    return f;
  }
}

export const createAmdIommu: IommuDriverFactory = (k: IommuCore, env: DriverEnv): IommuDriver => {
  const units = new DmarUnits("IVHD");
  const instances: IommuDevice[] = [];
  const identity = staticIdentityDomain();
  const blocked = staticBlockedDomain();
  const domainOps = pagingDomainOps(env, (d, dev) => sameInstance(d, dev, DRIVER));

  // @kernel: amd_iommu_domain_alloc_paging_flags
  const allocPaging = (dev: Device | null, flags: number): IommuDomain | KError => {
    if ((flags & ~(IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID)) !== 0) {
      return kerr("EOPNOTSUPP", `${DRIVER}: unsupported allocation flags 0x${flags.toString(16)}`);
    }
    const iommu = dev === null ? units.firstRegistered() : (devIommu(dev)?.iommuDev ?? null);
    if (iommu === null) return kerr("ENODEV", `${DRIVER}: no AMD-Vi unit to allocate the domain for`);
    const pasid = (flags & IOMMU_HWPT_ALLOC_PASID) !== 0;
    if (pasid && !(iommu.priv as AmdIommu).v2Supported) {
      return kerr("EOPNOTSUPP", `${iommu.name} has no v2 page table support for a PASID-capable domain`);
    }
    return newPagingDomain(IOMMU_DOMAIN_UNMANAGED, domainOps, (iommu.priv as AmdIommu).format(iommu, pasid ? "amd-v2" : "amd-v1"));
  };

  const ops: IommuOps = {
    name: DRIVER,
    identityDomain: identity,
    blockedDomain: blocked,
    releaseDomain: blocked,
    // @kernel: amd_iommu_probe_device (check_device, rlookup_amd_iommu)
    probeDevice(dev) {
      if (dev.pci === null) return kerr("ENODEV", `${DRIVER} serves PCI devices; ${dev.name} is not one`);
      return units.probe(k, dev);
    },
    releaseDevice: disablePasidAtRelease,
    // @kernel: amd_iommu_def_domain_type (its quirk table)
    defDomainType: (dev) => quirkDefDomainType(env, dev),
    // @kernel: amd_iommu_device_group
    deviceGroup(dev) {
      return pciDeviceGroup(k, dev);
    },
    domainAllocPagingFlags(dev, flags) {
      return allocPaging(dev, flags);
    },
    // @kernel: amd_iommu_get_resv_regions
    getResvRegions(dev): IommuResvRegion[] {
      return [
        ...firmwareResvRegions(env, dev),
        { start: MSI_RANGE_START, length: MSI_RANGE_END - MSI_RANGE_START + 1, prot: IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC, type: "msi" },
        { start: HT_RANGE_START, length: HT_RANGE_END - HT_RANGE_START + 1, prot: 0, type: "reserved" },
      ];
    },
  };

  return {
    name: DRIVER,
    ops,
    registerBus: null,
    // @kernel: amd_iommu_init_api (up to v6.0: every IVHD registered, then pci, amba, platform; the first error fails the init)
    busClaims: busClaims(k, ops, { buses: ["pci", "amba", "platform"], skip: "none", onError: "fail", when: "last-instance", onRemove: "keep" }, () => instances),
    newInstance(desc: IommuInstanceDesc) {
      // IVHD entries name requester IDs, each looked up on its own (rlookup_amd_iommu): an exact scope.
      const scope = { ...(desc.scope ?? dmarIncludeAllScope()), exact: true };
      const pasidBits = desc.pasidBits ?? 16;
      const it = new IommuDevice(desc.name, null, pasidBits > 0 ? 2 ** pasidBits : 0, new AmdIommu(pasidBits > 0));
      units.add(scope, it);
      instances.push(it);
      return it;
    },
  };
};
