/**
 * Arm SMMU v1/v2 (drivers/iommu/arm/arm-smmu/arm-smmu.c). Clients' fwspec
 * ids pack a StreamID and an SMR mask (`of_xlate`: the second `iommus` cell,
 * or the node's `stream-match-mask`). probe_device claims a stream-map entry
 * per id: an id entirely covered by an existing entry shares it, a partial
 * overlap is refused (EINVAL), none free is ENOSPC. A stream ID or SMR mask
 * wider than the SMMU implements is EINVAL. Two ids of one master may land
 * on the same entry (a bridged PCI device whose own RID is also its alias):
 * the entry just counts both. Masters whose ids land on the same stream-map
 * entry must share a group: device_group returns the group already recorded
 * on the entry, so such devices end up in one group.
 */
import { kerr, type KError } from "../lib/errno.ts";
import { devIommu, devIommuFwspecGet } from "../iommu/dev-iommu.ts";
import { IOMMU_DOMAIN_UNMANAGED } from "../iommu/domain.ts";
import { iommuFwspecAddIds, iommuFwspecForOtherOps } from "../iommu/fwspec.ts";
import { genericDeviceGroup, iommuGroupRefGet, type IommuGroup } from "../iommu/group.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import { IommuDevice } from "../iommu/iommu-device.ts";
import type { IommuOps } from "../iommu/ops.ts";
import { pciDeviceGroup } from "../iommu/pci-group.ts";
import { armLpaeRestrictPgsizes } from "../pgtable/lpae-geometry.ts";
import { SZ_1G, SZ_2M, SZ_4K, bitmapOr } from "../pgtable/sizes.ts";
import { quirkDefDomainType } from "./env-tables.ts";
import { newUnfinalisedPagingDomain, pagingDomainOps, sameInstance } from "./paging-domain.ts";
import { pagingFormat, type PagingFormat } from "./paging-format.ts";
import { staticBlockedDomain, staticIdentityDomain } from "./static-domains.ts";
import { busClaims } from "./bus-claims.ts";
import type { DriverEnv, IommuDriver, IommuDriverFactory, IommuInstanceDesc } from "./driver.ts";
import { armSmmuResvRegions } from "./arm-smmu-v3.ts";

export const DRIVER = "arm-smmu";

// arm-smmu.h: SMR fields
const SMR_ID_BITS = 16;

/** struct arm_smmu_smr */
interface Smr {
  id: number;
  mask: number;
  valid: boolean;
}

/** struct arm_smmu_s2cr (the parts that matter: users and the group recorded on the entry) */
interface S2cr {
  count: number;
  group: IommuGroup | null;
}

/** struct arm_smmu_device */
export class ArmSmmuV2 {
  readonly smrs: Smr[];
  readonly s2crs: S2cr[];
  private fmt: PagingFormat | null = null;
  constructor(
    /** Number of stream-mapping groups (SMR/S2CR pairs). */
    readonly numMappingGroups: number,
    readonly streamidMask: number,
    readonly smrMaskMask: number,
    readonly pgsizeBitmap: number,
  ) {
    this.smrs = Array.from({ length: numMappingGroups }, () => ({ id: 0, mask: 0, valid: false }));
    this.s2crs = Array.from({ length: numMappingGroups }, () => ({ count: 0, group: null }));
  }

  // @kernel: arm_smmu_init_domain_context (stage 1, the SMMU's page sizes; one format per SMMU)
  format(iommu: IommuDevice): PagingFormat {
    if (this.fmt === null) {
      const r = armLpaeRestrictPgsizes(this.pgsizeBitmap, 48, 48);
      this.fmt = pagingFormat(iommu, "ARM_64_LPAE_S1", { pgsizeBitmap: r.pgsizeBitmap, ias: r.ias, oas: r.oas }, { start: 0, end: 2 ** r.ias - 1 });
    }
    return this.fmt;
  }
}

/** The stream-map index of a fwspec id that holds none (arm-smmu.h). */
export const INVALID_SMENDX = -1;

/** struct arm_smmu_master_cfg: one stream-map index per fwspec id, in fwspec order. */
export interface MasterCfg {
  smmu: IommuDevice;
  smendx: number[];
}

function v2(iommu: IommuDevice): ArmSmmuV2 {
  return iommu.priv as ArmSmmuV2;
}

// @kernel: arm_smmu_find_sme (index, or -EINVAL for a conflicting overlap, -ENOSPC for no room)
function findSme(smmu: ArmSmmuV2, id: number, mask: number): number | KError {
  let free = -1;
  for (let i = 0; i < smmu.numMappingGroups; i++) {
    const smr = smmu.smrs[i]!;
    if (!smr.valid) {
      if (free < 0) free = i;
      continue;
    }
    // Entirely covered by an existing entry: share it.
    if ((mask & smr.mask) === mask && ((id ^ smr.id) & ~smr.mask) === 0) return i;
    // Any other overlap could match a stream of both: refuse.
    if (((id ^ smr.id) & ~(smr.mask | mask)) === 0) {
      return kerr("EINVAL", `stream ID 0x${id.toString(16)} mask 0x${mask.toString(16)} partly overlaps stream-map entry ${i} (0x${smr.id.toString(16)}/0x${smr.mask.toString(16)})`);
    }
  }
  return free >= 0 ? free : kerr("ENOSPC", `no free stream-map entry for stream ID 0x${id.toString(16)}`);
}

function fwidSid(fwid: number): number {
  return fwid % 2 ** SMR_ID_BITS;
}

function fwidMask(fwid: number): number {
  return Math.floor(fwid / 2 ** SMR_ID_BITS);
}

// @kernel: arm_smmu_free_sme (true when the entry has no users left)
function freeSme(smmu: ArmSmmuV2, idx: number): boolean {
  const s2cr = smmu.s2crs[idx]!;
  if (--s2cr.count > 0) return false;
  s2cr.group = null;
  smmu.smrs[idx]!.valid = false;
  return true;
}

/**
 * Claims a stream-map entry for each fwspec id of a master. All or nothing:
 * on failure the entries this call claimed are released again.
 */
// @kernel: arm_smmu_master_alloc_smes
export function armSmmuMasterAllocSmes(cfg: MasterCfg, ids: readonly number[], devName: string): 0 | KError {
  const smmu = v2(cfg.smmu);
  let i = 0;
  let err: KError | null = null;
  for (; i < ids.length; i++) {
    const sid = fwidSid(ids[i]!);
    const mask = fwidMask(ids[i]!);
    // This master's cfg already holds an entry for the id: a second allocation for the same master.
    if ((cfg.smendx[i] ?? INVALID_SMENDX) !== INVALID_SMENDX) {
      err = kerr("EEXIST", `${devName}: stream ID 0x${sid.toString(16)} already holds stream-map entry ${cfg.smendx[i]}`);
      break;
    }
    const idx = findSme(smmu, sid, mask);
    if (typeof idx !== "number") {
      err = idx;
      break;
    }
    // An entry another id of this master (or another master) already claimed just counts one more user.
    const smr = smmu.smrs[idx]!;
    if (smmu.s2crs[idx]!.count === 0) {
      smr.id = sid;
      smr.mask = mask;
      smr.valid = true;
    }
    smmu.s2crs[idx]!.count++;
    cfg.smendx[i] = idx;
  }
  if (err === null) return 0;
  while (i-- > 0) {
    freeSme(smmu, cfg.smendx[i]!);
    cfg.smendx[i] = INVALID_SMENDX;
  }
  return err;
}

// @kernel: arm_smmu_master_free_smes
export function armSmmuMasterFreeSmes(cfg: MasterCfg): void {
  const smmu = v2(cfg.smmu);
  cfg.smendx.forEach((idx, i) => {
    if (idx === INVALID_SMENDX) return;
    freeSme(smmu, idx);
    cfg.smendx[i] = INVALID_SMENDX;
  });
}

export const createArmSmmu: IommuDriverFactory = (k: IommuCore, env: DriverEnv): IommuDriver => {
  const instances: IommuDevice[] = [];
  // arm_smmu_ops.pgsize_bitmap: what the SMMUs probed so far support together.
  let opsPgsizeBitmap = 0;
  // @kernel: arm_smmu_init_domain_context (called by arm_smmu_attach_dev: the first attach finalises the domain)
  const domainOps = pagingDomainOps(env, (d, dev) => sameInstance(d, dev, DRIVER), {
    k,
    finalise: "arm_smmu_init_domain_context",
    formatOf: (iommu) => v2(iommu).format(iommu),
    atPasid: false,
    mapErrno: "ENODEV",
  });

  const ops: IommuOps = {
    name: DRIVER,
    identityDomain: staticIdentityDomain(),
    blockedDomain: staticBlockedDomain(),
    // @kernel: arm_smmu_of_xlate (fwid = StreamID | SMR mask << 16)
    ofXlate(dev, args) {
      const fwspec = devIommuFwspecGet(dev);
      if (fwspec === null) return kerr("EINVAL", `${dev.name} has no fwspec`);
      let mask = args[1];
      if (mask === undefined) {
        const m = fwspec.iommuFwnode?.props.get("stream-match-mask");
        mask = typeof m === "number" ? m : 0;
      }
      return iommuFwspecAddIds(dev, [args[0]! + mask * 2 ** SMR_ID_BITS]);
    },
    // @kernel: arm_smmu_probe_device (then arm_smmu_master_alloc_smes)
    probeDevice(dev) {
      const fwspec = devIommuFwspecGet(dev);
      if (fwspec === null) return kerr("ENODEV", `${dev.name} has no fwspec naming an SMMU`);
      // Up to v6.7 (the bus's ops are asked about every device): only fwspec->ops == &arm_smmu_ops is ours.
      if (iommuFwspecForOtherOps(k, fwspec, ops)) return kerr("ENODEV", `${dev.name}'s fwspec is not for ${DRIVER}`);
      // @kernel: arm_smmu_get_by_fwnode (an SMMU whose driver was unbound has no driver data: not found)
      const iommu = instances.find((i) => i.fwnode === fwspec.iommuFwnode && i.listed);
      if (iommu === undefined) return kerr("ENODEV", `no registered ${DRIVER} instance has fwnode ${fwspec.iommuFwnode?.name}`);
      const smmu = v2(iommu);
      for (const fwid of fwspec.ids) {
        const sid = fwidSid(fwid);
        const mask = fwidMask(fwid);
        if ((sid & ~smmu.streamidMask) !== 0) return kerr("EINVAL", `stream ID 0x${sid.toString(16)} out of range for SMMU (0x${smmu.streamidMask.toString(16)})`);
        if ((mask & ~smmu.smrMaskMask) !== 0) return kerr("EINVAL", `SMR mask 0x${mask.toString(16)} out of range for SMMU (0x${smmu.smrMaskMask.toString(16)})`);
      }
      // A fresh cfg: every id starts without a stream-map entry.
      const cfg: MasterCfg = { smmu: iommu, smendx: fwspec.ids.map(() => INVALID_SMENDX) };
      const ret = armSmmuMasterAllocSmes(cfg, fwspec.ids, dev.name);
      if (ret !== 0) return ret;
      devIommu(dev)!.priv = cfg;
      return iommu;
    },
    // @kernel: arm_smmu_release_device
    releaseDevice(dev) {
      const p = devIommu(dev);
      const cfg = p?.priv as MasterCfg | null;
      if (cfg) armSmmuMasterFreeSmes(cfg);
      if (p) p.priv = null;
    },
    // @kernel: arm_smmu_device_group (the group recorded on the stream-map entries wins)
    deviceGroup(dev): IommuGroup | KError {
      const cfg = devIommu(dev)!.priv as MasterCfg;
      const smmu = v2(cfg.smmu);
      let group: IommuGroup | null = null;
      for (const idx of cfg.smendx) {
        if (idx === INVALID_SMENDX) continue;
        const g = smmu.s2crs[idx]!.group;
        if (group !== null && g !== null && g !== group) {
          return kerr("EINVAL", `${dev.name}'s stream-map entries belong to different groups`);
        }
        group = g;
      }
      if (group !== null) return iommuGroupRefGet(group);
      const fresh = dev.pci !== null ? pciDeviceGroup(k, dev) : genericDeviceGroup(k);
      if ("errno" in fresh) return fresh;
      for (const idx of cfg.smendx) if (idx !== INVALID_SMENDX) smmu.s2crs[idx]!.group = fresh;
      return fresh;
    },
    defDomainType: (dev) => quirkDefDomainType(env, dev),
    // @kernel: arm_smmu_domain_alloc_paging (nothing meaningful until a master attaches, device or not)
    domainAllocPaging(dev) {
      // Since v6.16 the page sizes are the device's SMMU's; with no device (up to v6.12) the ops' union.
      const iommu = dev === null ? null : (devIommu(dev)?.iommuDev ?? null);
      return newUnfinalisedPagingDomain(IOMMU_DOMAIN_UNMANAGED, domainOps, iommu === null ? opsPgsizeBitmap : v2(iommu).pgsizeBitmap);
    },
    getResvRegions: (dev) => armSmmuResvRegions(env, dev),
  };

  return {
    name: DRIVER,
    ops,
    registerBus: null,
    // @kernel: arm_smmu_bus_init (up to v6.0: platform, amba, pci, each only if !iommu_present; its remove's NULL call is guarded the same way, so it clears nothing)
    busClaims: busClaims(k, ops, { buses: ["platform", "amba", "pci"], skip: "any-ops", onError: "unwind", when: "each-instance", onRemove: "keep" }, () => instances),
    newInstance(desc: IommuInstanceDesc) {
      const sidBits = desc.sidBits ?? 15;
      const mask = 2 ** sidBits - 1;
      const smmu = new ArmSmmuV2(desc.streamMapEntries ?? 128, mask, mask, desc.pgsizeBitmap ?? SZ_4K + SZ_2M + SZ_1G);
      const it = new IommuDevice(desc.name, desc.fwnode, 0, smmu);
      instances.push(it);
      return it;
    },
    // @kernel: arm_smmu_device_cfg_probe (arm_smmu_ops.pgsize_bitmap |= smmu->pgsize_bitmap, up to v6.15)
    hwProbe(iommu) {
      opsPgsizeBitmap = bitmapOr(opsPgsizeBitmap, v2(iommu).pgsizeBitmap);
    },
  };
};
