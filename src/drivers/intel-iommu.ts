/**
 * Intel VT-d (drivers/iommu/intel/iommu.c). Each DMAR DRHD unit is an
 * instance registered without a fwnode; clients have no fwspec, so ops
 * resolve to the first fwnode-less instance and probe_device finds the unit
 * whose device scope covers the device (INCLUDE_PCI_ALL units last),
 * refusing devices no unit claims, and units whose registration has not
 * set their ops yet. One paging domain may span several units if their
 * capabilities are compatible.
 */
import type { Device } from "../base/device.ts";
import { dmarIncludeAllScope } from "../firmware/dmar.ts";
import { DmarUnits } from "./dmar-units.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { devIommu } from "../iommu/dev-iommu.ts";
import { IOMMU_DOMAIN_UNMANAGED, type IommuDomain } from "../iommu/domain.ts";
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
} from "../iommu/domain-alloc.ts";
import { genericDeviceGroup } from "../iommu/group.ts";
import { iommuProbeDevice } from "../iommu/probe.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import { IommuDevice } from "../iommu/iommu-device.ts";
import type { IommuOps } from "../iommu/ops.ts";
import { pciDeviceGroup } from "../iommu/pci-group.ts";
import type { IommuResvRegion } from "../iommu/resv-region.ts";
import { IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE } from "../pgtable/types.ts";
import { domainSuperPgsizeBitmap } from "../pgtable/vtdss.ts";
import { SZ_1G, SZ_2M, SZ_4K } from "../pgtable/sizes.ts";
import { firmwareResvRegions, quirkDefDomainType } from "./env-tables.ts";
import { newPagingDomain, pagingDomainOps, pagingPriv } from "./paging-domain.ts";
import { pagingFormat, type PagingFormat } from "./paging-format.ts";
import { disablePasidAtRelease } from "./pasid-enable.ts";
import { staticBlockedDomain, staticIdentityDomain } from "./static-domains.ts";
import { busClaims } from "./bus-claims.ts";
import type { DriverEnv, IommuDriver, IommuDriverFactory, IommuInstanceDesc } from "./driver.ts";

export const DRIVER = "intel-iommu";

// arch/x86/include/asm/apicdef.h via intel_iommu_get_resv_regions: the IOAPIC/MSI window
export const IOAPIC_RANGE_START = 0xfee00000;
export const IOAPIC_RANGE_SIZE = 0x100000;

/** struct intel_iommu (the parts the model needs). */
export class IntelIommu {
  constructor(
    /** cap_super_page_val: 0 none, 1 = 2M, 2 = 2M and 1G. */
    readonly superpage: number,
    /** Address width the unit supports (agaw), 39 or 48. */
    readonly addrWidth: number,
  ) {}

  private fmt: PagingFormat | null = null;

  /** The second-stage format of domains allocated on this unit (computed once). */
  format(iommu: IommuDevice): PagingFormat {
    this.fmt ??= pagingFormat(
      iommu,
      "VTDSS",
      { pgsizeBitmap: SZ_4K + domainSuperPgsizeBitmap(this.superpage), ias: this.addrWidth, oas: 52 },
      { start: 0, end: 2 ** this.addrWidth - 1 },
    );
    return this.fmt;
  }
}

function unitOf(iommu: IommuDevice): IntelIommu {
  return iommu.priv as IntelIommu;
}

export const createIntelIommu: IommuDriverFactory = (k: IommuCore, env: DriverEnv): IommuDriver => {
  const units = new DmarUnits("DMAR unit");
  const instances: IommuDevice[] = [];
  const identity = staticIdentityDomain();
  const blocked = staticBlockedDomain();

  // @kernel: paging_domain_compatible (the unit must support the domain's superpages and width)
  const domainOps = pagingDomainOps(env, (d, dev) => {
    const iommu = devIommu(dev)?.iommuDev;
    if (iommu === undefined || iommu === null) return kerr("ENODEV", `${dev.name} has no VT-d unit`);
    const unit = unitOf(iommu);
    // Intel domains are always finalised at allocation.
    const cfg = pagingPriv(d).format!.cfg;
    if (domainSuperPgsizeBitmap(unit.superpage) + SZ_4K < cfg.pgsizeBitmap || unit.addrWidth < cfg.ias) {
      return kerr("EINVAL", `${d} uses page sizes or an address width ${iommu.name} lacks`);
    }
    return 0;
  });

  // @kernel: intel_iommu_domain_alloc_paging_flags (second-stage table for the device's unit)
  const allocPaging = (dev: Device | null, flags: number): IommuDomain | KError => {
    const supported = IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID;
    if ((flags & ~supported) !== 0) return kerr("EOPNOTSUPP", `${DRIVER}: unsupported allocation flags 0x${flags.toString(16)}`);
    const iommu = dev === null ? units.firstRegistered() : (devIommu(dev)?.iommuDev ?? null);
    if (iommu === null) return kerr("ENODEV", `${DRIVER}: no VT-d unit to allocate the domain for`);
    const d = newPagingDomain(IOMMU_DOMAIN_UNMANAGED, domainOps, unitOf(iommu).format(iommu));
    // One VT-d domain may be attached to devices behind any compatible unit (domain->iommu_array).
    d.spansInstances = true;
    return d;
  };

  const ops: IommuOps = {
    name: DRIVER,
    identityDomain: identity,
    blockedDomain: blocked,
    releaseDomain: blocked,
    // @kernel: intel_iommu_probe_device (device_lookup_iommu; a unit not registered yet has no ops)
    probeDevice(dev) {
      return units.probe(k, dev);
    },
    releaseDevice: disablePasidAtRelease,
    // @kernel: device_def_domain_type (its quirk table: IS_AZALIA, ...)
    defDomainType: (dev) => quirkDefDomainType(env, dev),
    // @kernel: intel_iommu_device_group
    deviceGroup(dev) {
      return dev.pci !== null ? pciDeviceGroup(k, dev) : genericDeviceGroup(k);
    },
    domainAllocPagingFlags(dev, flags) {
      return allocPaging(dev, flags);
    },
    // @kernel: intel_iommu_get_resv_regions (RMRRs, then the IOAPIC range)
    getResvRegions(dev): IommuResvRegion[] {
      return [
        ...firmwareResvRegions(env, dev),
        { start: IOAPIC_RANGE_START, length: IOAPIC_RANGE_SIZE, prot: IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC, type: "msi" },
      ];
    },
  };

  const pciClaim = busClaims(k, ops, { buses: ["pci"], skip: "none", onError: "ignore", when: "last-instance", onRemove: "keep" }, () => instances);

  return {
    name: DRIVER,
    ops,
    registerBus: null,
    busClaims: {
      *claim(iommu) {
        // @kernel: intel_iommu_init (up to v6.0: every DRHD registered, then bus_set_iommu(&pci_bus_type), its result unchecked)
        const ret = yield* pciClaim.claim(iommu);
        if (ret !== 0 || !instances.every((i) => i.listed)) return ret;
        // @kernel: probe_acpi_namespace_devices (up to v6.0: each ACPI namespace device's bus gets intel_iommu_ops outright, then iommu_probe_device)
        for (const bus of k.iommuBuses) {
          for (const dev of [...bus.devices]) {
            if (dev.pci !== null || units.unitOf(dev) === null) continue;
            k.busIommuOps.set(dev.bus, ops);
            yield* iommuProbeDevice(k, dev);
          }
        }
        return 0;
      },
      release: (iommu) => pciClaim.release(iommu),
    },
    newInstance(desc: IommuInstanceDesc) {
      const scope = desc.scope ?? dmarIncludeAllScope();
      const bitmap = desc.pgsizeBitmap ?? SZ_4K + SZ_2M + SZ_1G;
      const superpage = bitmap >= SZ_4K + SZ_2M + SZ_1G ? 2 : bitmap >= SZ_4K + SZ_2M ? 1 : 0;
      const pasidBits = desc.pasidBits ?? 20;
      const it = new IommuDevice(desc.name, null, pasidBits > 0 ? 2 ** pasidBits : 0, new IntelIommu(superpage, desc.ias ?? 48));
      // DRHD units with explicit scopes are searched before INCLUDE_PCI_ALL ones.
      units.add(scope, it);
      instances.push(it);
      return it;
    },
  };
};
