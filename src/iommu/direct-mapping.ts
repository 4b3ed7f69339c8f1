/**
 * Direct (1:1) mappings firmware requires in default domains
 * (iommu_create_device_direct_mappings).
 */
import type { Device } from "../base/device.ts";
import { alignUp } from "../lib/bits.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { devIommu } from "./dev-iommu.ts";
import { iommuIsDmaDomain, type IommuDomain } from "./domain.ts";
import type { IommuCore } from "./iommu-core.ts";
import { iommuIovaToPhys, iommuMap } from "./map.ts";
import { iommuGetResvRegions } from "./resv-region.ts";

// @kernel: iommu_create_device_direct_mappings
export function iommuCreateDeviceDirectMappings(k: IommuCore, domain: IommuDomain, dev: Device): 0 | KError {
  const pgSize = domain.pgsizes[0] ?? 0;
  if (iommuIsDmaDomain(domain) && pgSize === 0) {
    k.warn("iommu_create_device_direct_mappings", dev.name, `${domain} has no page sizes`);
    return kerr("EINVAL", `${domain} is a DMA domain without page sizes`);
  }
  for (const r of iommuGetResvRegions(dev)) {
    if (r.type === "direct") devIommu(dev)!.requireDirect = true;
    if ((r.type !== "direct" && r.type !== "direct-relaxable") || !iommuIsDmaDomain(domain)) continue;
    const start = alignUp(r.start, pgSize);
    const end = alignUp(r.start + r.length, pgSize);
    let mapSize = 0;
    for (let addr = start; addr <= end; addr += pgSize) {
      if (addr !== end && iommuIovaToPhys(domain, addr) === 0) {
        mapSize += pgSize;
        continue;
      }
      if (mapSize > 0) {
        const ret = iommuMap(domain, addr - mapSize, addr - mapSize, mapSize, r.prot);
        if (ret !== 0) return ret;
        mapSize = 0;
      }
    }
  }
  return 0;
}
