/**
 * virtio-iommu (drivers/iommu/virtio-iommu.c): a paravirtual IOMMU found by
 * fwnode (DT `iommus` / `iommu-map`, or ACPI VIOT). probe_device needs a
 * fwspec naming a virtio-iommu; domains are finalised for the first
 * viommu that attaches (here: for the device they are allocated on) and
 * refuse devices behind another one. The host keeps the mappings (MAP and
 * UNMAP requests); the model stores them in a 4K-granule table.
 */
import type { Device } from "../base/device.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { devIommu, devIommuFwspecGet } from "../iommu/dev-iommu.ts";
import { iommuFwspecAddIds, iommuFwspecForOtherOps } from "../iommu/fwspec.ts";
import { IOMMU_DOMAIN_UNMANAGED, type IommuDomain } from "../iommu/domain.ts";
import { genericDeviceGroup } from "../iommu/group.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import { IommuDevice } from "../iommu/iommu-device.ts";
import type { IommuOps } from "../iommu/ops.ts";
import { pciDeviceGroup } from "../iommu/pci-group.ts";
import type { IommuResvRegion } from "../iommu/resv-region.ts";
import { armLpaeRestrictPgsizes } from "../pgtable/lpae-geometry.ts";
import { SZ_4K } from "../pgtable/sizes.ts";
import { IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_WRITE } from "../pgtable/types.ts";
import { firmwareResvRegions, quirkDefDomainType } from "./env-tables.ts";
import { newPagingDomain, newUnfinalisedPagingDomain, pagingDomainOps, sameInstance } from "./paging-domain.ts";
import { pagingFormat, type PagingFormat } from "./paging-format.ts";
import { staticBlockedDomain, staticIdentityDomain } from "./static-domains.ts";
import { busClaims } from "./bus-claims.ts";
import type { DriverEnv, IommuDriver, IommuDriverFactory, IommuInstanceDesc } from "./driver.ts";

export const DRIVER = "virtio-iommu";

// virtio-iommu.c: the software-managed MSI window, when the device's probe reports none
const MSI_IOVA_BASE = 0x8000000;
const MSI_IOVA_LENGTH = 0x100000;

export class ViommuDev {
  constructor(
    /** config.page_size_mask */
    readonly pgsizeBitmap: number,
    /** config.input_range width in bits */
    readonly inputBits: number,
  ) {}

  private fmt: PagingFormat | null = null;

  // @kernel: viommu_domain_finalise (page_size_mask and input range of the device)
  format(iommu: IommuDevice): PagingFormat {
    if (this.fmt === null) {
      const r = armLpaeRestrictPgsizes(this.pgsizeBitmap, this.inputBits, 48);
      this.fmt = pagingFormat(iommu, "ARM_64_LPAE_S1", { pgsizeBitmap: r.pgsizeBitmap, ias: r.ias, oas: r.oas }, { start: 0, end: 2 ** r.ias - 1 }, "virtio-iommu");
    }
    return this.fmt;
  }
}

export const createVirtioIommu: IommuDriverFactory = (k: IommuCore, env: DriverEnv): IommuDriver => {
  const instances: IommuDevice[] = [];
  // viommu_ops.pgsize_bitmap: the page_size_mask of the last viommu probed (each probe overwrites it).
  let opsPgsizeBitmap = 0;
  // @kernel: viommu_attach_dev (a domain allocated without a device is finalised for the first endpoint's viommu)
  const domainOps = pagingDomainOps(env, (d, dev) => sameInstance(d, dev, DRIVER), {
    k,
    finalise: "viommu_domain_finalise",
    formatOf: (iommu) => (iommu.priv as ViommuDev).format(iommu),
    atPasid: false,
    mapErrno: "EINVAL",
  });

  // @kernel: viommu_domain_alloc_paging (viommu_domain_finalise for the device's viommu)
  const allocPaging = (dev: Device | null): IommuDomain | KError => {
    // @kernel: viommu_domain_alloc (no device: finalised by the first attach)
    if (dev === null) return newUnfinalisedPagingDomain(IOMMU_DOMAIN_UNMANAGED, domainOps, opsPgsizeBitmap);
    const iommu = devIommu(dev)?.iommuDev ?? null;
    if (iommu === null) return kerr("ENODEV", `${DRIVER}: no viommu to finalise the domain for`);
    return newPagingDomain(IOMMU_DOMAIN_UNMANAGED, domainOps, (iommu.priv as ViommuDev).format(iommu));
  };

  const ops: IommuOps = {
    name: DRIVER,
    identityDomain: staticIdentityDomain(),
    blockedDomain: staticBlockedDomain(),
    // @kernel: viommu_of_xlate
    ofXlate(dev, args) {
      return iommuFwspecAddIds(dev, args.slice(0, 1));
    },
    // @kernel: viommu_probe_device (viommu_get_by_fwnode)
    probeDevice(dev) {
      const fwspec = devIommuFwspecGet(dev);
      if (fwspec === null) return kerr("ENODEV", `${dev.name} has no fwspec naming a virtio-iommu`);
      // Up to v6.7 (the bus's ops are asked about every device): fwspec->ops != &viommu_ops.
      if (iommuFwspecForOtherOps(k, fwspec, ops)) return kerr("ENODEV", `${dev.name}'s fwspec is not for ${DRIVER}`);
      // viommu_get_by_fwnode finds only a viommu whose driver is bound (driver_find_device_by_fwnode).
      const it = instances.find((i) => i.fwnode === fwspec.iommuFwnode && i.listed);
      if (it === undefined) return kerr("ENODEV", `no registered virtio-iommu has fwnode ${fwspec.iommuFwnode?.name}`);
      return it;
    },
    defDomainType: (dev) => quirkDefDomainType(env, dev),
    // @kernel: viommu_device_group
    deviceGroup(dev) {
      return dev.pci !== null ? pciDeviceGroup(k, dev) : genericDeviceGroup(k);
    },
    domainAllocPaging(dev) {
      return allocPaging(dev);
    },
    // @kernel: viommu_get_resv_regions (the device's probe-request regions, then the MSI window)
    getResvRegions(dev): IommuResvRegion[] {
      const prot = IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO;
      return [...firmwareResvRegions(env, dev), { start: MSI_IOVA_BASE, length: MSI_IOVA_LENGTH, prot, type: "sw-msi" }];
    },
  };

  return {
    name: DRIVER,
    ops,
    registerBus: null,
    // @kernel: viommu_probe (up to v6.0: pci, amba, platform unless already viommu_ops'; an error unregisters the viommu)
    busClaims: busClaims(k, ops, { buses: ["pci", "amba", "platform"], skip: "own-ops", onError: "fail", when: "each-instance", onRemove: "keep" }, () => instances),
    newInstance(desc: IommuInstanceDesc) {
      const it = new IommuDevice(desc.name, desc.fwnode, 0, new ViommuDev(desc.pgsizeBitmap ?? SZ_4K, desc.ias ?? 48));
      instances.push(it);
      return it;
    },
    // @kernel: viommu_probe (viommu_ops.pgsize_bitmap = viommu->pgsize_bitmap: the last one probed wins)
    hwProbe(iommu) {
      opsPgsizeBitmap = (iommu.priv as ViommuDev).pgsizeBitmap;
    },
  };
};
