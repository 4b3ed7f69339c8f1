/**
 * Design axes as strategy objects (DESIGN.md "Design axes are seams"). Each
 * contested decision is one named object chosen at boot; `UPSTREAM_STRATEGIES`
 * reproduces current upstream behaviour.
 */
import type { Device } from "../base/device.ts";
import { kerr, isErr, type KError } from "../lib/errno.ts";
import { devIommuFwspecGet } from "./dev-iommu.ts";
import { iommuDomainAllocBus, iommuPagingDomainAlloc } from "./domain-alloc.ts";
import type { IommuDomain } from "./domain.ts";
import { iommuFwspecOps } from "./fwspec.ts";
import type { IommuCore } from "./iommu-core.ts";
import type { IommuDevice } from "./iommu-device.ts";
import type { IommuOps } from "./ops.ts";

export interface ProbeTarget {
  ops: IommuOps;
  iommuDev: IommuDevice;
}

/** Which ops serve a device, and so which driver's probe_device decides whether it is theirs. */
export interface OpsResolution {
  readonly name: string;
  probe(k: IommuCore, dev: Device): ProbeTarget | KError;
}

/**
 * Current kernels: ops from the fwspec's fwnode (first listed instance with
 * that fwnode); a device without a fwspec goes to the first listed instance
 * without a fwnode, whose probe_device may refuse it.
 */
export const upstreamOpsResolution: OpsResolution = {
  name: "upstream",
  probe(k, dev) {
    // @kernel: iommu_init_device (ops = iommu_fwspec_ops(dev->iommu->fwspec))
    const fwspec = devIommuFwspecGet(dev);
    const ops = iommuFwspecOps(k, fwspec);
    if (k.tracing) k.note(
      "iommu_fwspec_ops",
      dev.name,
      `${fwspec === null ? "no fwspec: first instance without a fwnode" : `fwnode ${fwspec.iommuFwnode?.name ?? "(null)"}`} -> ${ops?.name ?? "no ops"}`,
    );
    if (ops === null) {
      return kerr(
        "ENODEV",
        fwspec?.iommuFwnode
          ? `no registered IOMMU instance has fwnode ${fwspec.iommuFwnode.name}`
          : `${dev.name} has no fwspec and no IOMMU instance without a fwnode is registered`,
      );
    }
    const r = ops.probeDevice(dev);
    if (k.tracing && isErr(r)) k.note("probe_device", dev.name, `${ops.name} refused: ${r.errno}: ${r.message}`);
    return isErr(r) ? r : { ops, iommuDev: r };
  },
};

/**
 * The January 2024 proposal from the mock-device thread ("iommu: Probe right
 * iommu_ops for device"): a device without a fwspec asks every registered
 * instance without a fwnode, in list order and skipping ops already asked,
 * until one's probe_device accepts it.
 */
export const askEachOpsResolution: OpsResolution = {
  name: "ask-each",
  probe(k, dev) {
    if (devIommuFwspecGet(dev) !== null) return upstreamOpsResolution.probe(k, dev);
    const asked = new Set<IommuOps>();
    let last: KError | null = null;
    for (const inst of k.deviceList) {
      const ops = inst.ops;
      if (inst.fwnode !== null || ops === null || asked.has(ops)) continue;
      asked.add(ops);
      const r = ops.probeDevice(dev);
      if (k.tracing) k.note("probe_device", dev.name, `asked ${inst.name} (${ops.name}): ${isErr(r) ? `refused: ${r.errno}` : "accepted"}`);
      if (!isErr(r)) return { ops, iommuDev: r };
      last = r;
    }
    return last ?? kerr("ENODEV", `no IOMMU instance without a fwnode accepted ${dev.name}`);
  },
};

export const OPS_RESOLUTIONS = {
  upstream: upstreamOpsResolution,
  "ask-each": askEachOpsResolution,
} as const satisfies Record<string, OpsResolution>;
export type OpsResolutionName = keyof typeof OPS_RESOLUTIONS;
export const OPS_RESOLUTION_NAMES = Object.keys(OPS_RESOLUTIONS) as [OpsResolutionName, ...OpsResolutionName[]];

/** How a caller (VFIO, a driver) gets an UNMANAGED domain meant for a device. */
export interface DomainAllocation {
  readonly name: string;
  alloc(k: IommuCore, dev: Device): IommuDomain | KError;
}

/** Current kernels (v6.11+): through the device's ops, finalised for the instance serving it. */
export const deviceOpsDomainAllocation: DomainAllocation = {
  name: "device-ops",
  // @kernel: iommu_paging_domain_alloc
  alloc: (k, dev) => iommuPagingDomainAlloc(k, dev),
};

/**
 * Kernels up to v6.12: iommu_domain_alloc(dev->bus) — ops from the bus's
 * devices and no device, so the driver cannot know which instance the
 * domain is for: the Arm drivers leave it unfinalised until its first
 * attach decides (docs/design-axes.md).
 */
export const busNullDeviceDomainAllocation: DomainAllocation = {
  name: "bus-null-device",
  alloc: (k, dev) => iommuDomainAllocBus(k, dev.bus),
};

export const DOMAIN_ALLOCATIONS = {
  "device-ops": deviceOpsDomainAllocation,
  "bus-null-device": busNullDeviceDomainAllocation,
} as const satisfies Record<string, DomainAllocation>;
export type DomainAllocationName = keyof typeof DOMAIN_ALLOCATIONS;
export const DOMAIN_ALLOC_NAMES = Object.keys(DOMAIN_ALLOCATIONS) as [DomainAllocationName, ...DomainAllocationName[]];

export interface IommuStrategies {
  opsResolution: OpsResolution;
  domainAllocation: DomainAllocation;
}

export const UPSTREAM_STRATEGIES: IommuStrategies = {
  opsResolution: upstreamOpsResolution,
  domainAllocation: deviceOpsDomainAllocation,
};
