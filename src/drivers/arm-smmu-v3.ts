/**
 * Arm SMMUv3 (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c), the parts the
 * lifecycle depends on: DT/IORT clients carry a fwspec of StreamIDs
 * (`of_xlate` adds one per `iommus` entry or iommu-map alias); probe_device
 * finds the SMMU by the fwspec's fwnode, checks each StreamID is in range
 * and not already used by another master (aliasing is unsupported), and
 * PCI devices are grouped by pci_device_group. Paging domains use the
 * io-pgtable-arm stage-1 format with the SMMU's granule.
 */
import type { Device } from "../base/device.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { devIommu, devIommuFwspecGet } from "../iommu/dev-iommu.ts";
import { iommuFwspecAddIds, iommuFwspecForOtherOps } from "../iommu/fwspec.ts";
import { IOMMU_DOMAIN_UNMANAGED, type IommuDomain } from "../iommu/domain.ts";
import { IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_ALLOC_PASID } from "../iommu/domain-alloc.ts";
import { genericDeviceGroup } from "../iommu/group.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import { IommuDevice } from "../iommu/iommu-device.ts";
import type { IommuOps } from "../iommu/ops.ts";
import { pciDeviceGroup } from "../iommu/pci-group.ts";
import { IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE } from "../pgtable/types.ts";
import { armLpaeRestrictPgsizes } from "../pgtable/lpae-geometry.ts";
import { SZ_1G, SZ_2M, SZ_4K, bitmapOr } from "../pgtable/sizes.ts";
import { busClaims } from "./bus-claims.ts";
import type { DriverEnv, IommuDriver, IommuDriverFactory, IommuInstanceDesc } from "./driver.ts";
import { firmwareResvRegions, quirkDefDomainType } from "./env-tables.ts";
import { newPagingDomain, newUnfinalisedPagingDomain, pagingDomainOps, sameInstance } from "./paging-domain.ts";
import { pagingFormat, type PagingFormat } from "./paging-format.ts";
import { disablePasidAtRelease, enablePasidAtProbe } from "./pasid-enable.ts";
import { staticBlockedDomain, staticIdentityDomain } from "./static-domains.ts";
import type { IommuResvRegion } from "../iommu/resv-region.ts";

export const DRIVER = "arm-smmu-v3";

// arm-smmu-v3.h: the software-managed MSI window
export const MSI_IOVA_BASE = 0x8000000;
export const MSI_IOVA_LENGTH = 0x100000;

/** struct arm_smmu_device (the parts the model needs). */
export class ArmSmmuDevice {
  /** The StreamID tree (`smmu->streams`): StreamID -> master device. */
  readonly streams = new Map<number, Device>();
  /** The stage-1 format its paging domains are finalised with (computed once). */
  s1Format: PagingFormat | null = null;
  constructor(
    readonly sidBits: number,
    readonly pgsizeBitmap: number,
    readonly ias: number,
  ) {}
}

/** Both Arm SMMU drivers' reserved regions: the software-managed MSI window, then what firmware reports. */
// @kernel: arm_smmu_get_resv_regions
export function armSmmuResvRegions(env: DriverEnv, dev: Device): IommuResvRegion[] {
  return [
    { start: MSI_IOVA_BASE, length: MSI_IOVA_LENGTH, prot: IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_READ, type: "sw-msi" },
    ...firmwareResvRegions(env, dev),
  ];
}

function smmuOf(iommu: IommuDevice): ArmSmmuDevice {
  return iommu.priv as ArmSmmuDevice;
}

// @kernel: arm_smmu_domain_finalise (stage 1: ias = min(VA_BITS, smmu->ias), oas = smmu->ias; one per SMMU)
function s1Format(iommu: IommuDevice): PagingFormat {
  const smmu = smmuOf(iommu);
  if (smmu.s1Format === null) {
    const r = armLpaeRestrictPgsizes(smmu.pgsizeBitmap, Math.min(48, smmu.ias), smmu.ias);
    smmu.s1Format = pagingFormat(iommu, "ARM_64_LPAE_S1", { pgsizeBitmap: r.pgsizeBitmap, ias: r.ias, oas: r.oas }, { start: 0, end: 2 ** r.ias - 1 });
  }
  return smmu.s1Format;
}

export const createArmSmmuV3: IommuDriverFactory = (k: IommuCore, env: DriverEnv): IommuDriver => {
  const instances: IommuDevice[] = [];
  const identity = staticIdentityDomain();
  const blocked = staticBlockedDomain();

  // @kernel: arm_smmu_get_by_fwnode (the SMMU's driver data, which the driver core clears when the SMMU's driver is unbound)
  const getByFwnode = (dev: Device): IommuDevice | null => {
    const fw = devIommuFwspecGet(dev)?.iommuFwnode ?? null;
    return instances.find((i) => i.fwnode === fw && i.listed) ?? null;
  };

  // arm_smmu_ops.pgsize_bitmap: what the SMMUs probed so far support together (each one's hw_probe ORs its sizes in).
  let opsPgsizeBitmap = 0;

  // @kernel: arm_smmu_attach_dev (the first attach finalises a domain allocated without a device)
  const domainOps = pagingDomainOps(env, (d, dev) => sameInstance(d, dev, DRIVER), {
    k,
    finalise: "arm_smmu_domain_finalise",
    formatOf: s1Format,
    atPasid: true,
    mapErrno: "ENODEV",
  });

  // @kernel: arm_smmu_domain_alloc_paging_flags (finalised for the device's SMMU: stage 1)
  const allocPaging = (dev: Device | null, flags: number): IommuDomain | KError => {
    const supported = IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID;
    if ((flags & ~supported) !== 0) return kerr("EOPNOTSUPP", `${DRIVER}: unsupported allocation flags 0x${flags.toString(16)}`);
    // @kernel: arm_smmu_domain_alloc_paging (without a device there is no SMMU to finalise for: left to the first attach)
    if (dev === null) return newUnfinalisedPagingDomain(IOMMU_DOMAIN_UNMANAGED, domainOps, opsPgsizeBitmap);
    const iommu = devIommu(dev)?.iommuDev ?? null;
    if (iommu === null) return kerr("ENODEV", `${DRIVER}: no SMMU to finalise the domain for`);
    return newPagingDomain(IOMMU_DOMAIN_UNMANAGED, domainOps, s1Format(iommu));
  };

  const ops: IommuOps = {
    name: DRIVER,
    identityDomain: identity,
    blockedDomain: blocked,
    releaseDomain: blocked,
    // @kernel: arm_smmu_of_xlate
    ofXlate(dev, args) {
      return iommuFwspecAddIds(dev, args.slice(0, 1));
    },
    // @kernel: arm_smmu_probe_device
    probeDevice(dev) {
      const p = devIommu(dev);
      if (p?.priv) return kerr("EBUSY", `${dev.name} already has an SMMU master`);
      const fwspec = p?.fwspec ?? null;
      if (fwspec === null) return kerr("ENODEV", `${dev.name} has no fwspec naming an SMMU`);
      // Up to v6.7 (the bus's ops are asked about every device): fwspec->ops != &arm_smmu_ops.
      if (iommuFwspecForOtherOps(k, fwspec, ops)) return kerr("ENODEV", `${dev.name}'s fwspec is not for ${DRIVER}`);
      const iommu = getByFwnode(dev);
      if (iommu === null) return kerr("ENODEV", `no registered ${DRIVER} instance has fwnode ${fwspec.iommuFwnode?.name}`);
      const smmu = smmuOf(iommu);
      // @kernel: arm_smmu_insert_master
      const added: number[] = [];
      for (const sid of fwspec.ids) {
        if (sid >= 2 ** smmu.sidBits) {
          for (const s of added) smmu.streams.delete(s);
          return kerr("ERANGE", `StreamID 0x${sid.toString(16)} of ${dev.name} is beyond ${iommu.name}'s ${smmu.sidBits} SID bits`);
        }
        const existing = smmu.streams.get(sid);
        if (existing === dev) continue; // bridged PCI devices may end up with duplicated IDs
        if (existing !== undefined) {
          for (const s of added) smmu.streams.delete(s);
          k.warn("arm_smmu_insert_master", dev.name, `Aliasing StreamID 0x${sid.toString(16)} (from ${existing.name}) unsupported, expect DMA to be broken`);
          return kerr("ENODEV", `StreamID 0x${sid.toString(16)} of ${dev.name} is already used by ${existing.name}`);
        }
        smmu.streams.set(sid, dev);
        added.push(sid);
      }
      // struct arm_smmu_master: what the model needs of it is which SMMU holds the streams.
      p!.priv = iommu;
      enablePasidAtProbe(k, dev, iommu);
      return iommu;
    },
    // @kernel: arm_smmu_release_device
    releaseDevice(dev) {
      // @kernel: arm_smmu_remove_master (each fwspec StreamID this master holds)
      const p = devIommu(dev);
      const iommu = p?.priv as IommuDevice | null;
      if (iommu) {
        const smmu = smmuOf(iommu);
        for (const sid of p!.fwspec?.ids ?? []) if (smmu.streams.get(sid) === dev) smmu.streams.delete(sid);
        p!.priv = null;
      }
      disablePasidAtRelease(dev);
    },
    // @kernel: arm_smmu_def_domain_type (its quirk table)
    defDomainType: (dev) => quirkDefDomainType(env, dev),
    // @kernel: arm_smmu_device_group
    deviceGroup(dev) {
      return dev.pci !== null ? pciDeviceGroup(k, dev) : genericDeviceGroup(k);
    },
    domainAllocPagingFlags(dev, flags) {
      return allocPaging(dev, flags);
    },
    getResvRegions: (dev) => armSmmuResvRegions(env, dev),
  };

  return {
    name: DRIVER,
    ops,
    registerBus: null,
    // @kernel: arm_smmu_set_bus_ops (up to v6.0: pci, amba, platform; a bus with other ops fails the probe)
    busClaims: busClaims(k, ops, { buses: ["pci", "amba", "platform"], skip: "own-ops", onError: "unwind", when: "each-instance", onRemove: "clear" }, () => instances),
    newInstance(desc: IommuInstanceDesc) {
      const ssid = desc.pasidBits ?? 20;
      const smmu = new ArmSmmuDevice(desc.sidBits ?? 32, desc.pgsizeBitmap ?? SZ_4K + SZ_2M + SZ_1G, desc.ias ?? 48);
      const it = new IommuDevice(desc.name, desc.fwnode, ssid > 0 ? 2 ** ssid : 0, smmu);
      instances.push(it);
      return it;
    },
    // @kernel: arm_smmu_device_hw_probe (arm_smmu_ops.pgsize_bitmap |= smmu->pgsize_bitmap; never narrowed again)
    hwProbe(iommu) {
      opsPgsizeBitmap = bitmapOr(opsPgsizeBitmap, smmuOf(iommu).pgsizeBitmap);
    },
  };
};
