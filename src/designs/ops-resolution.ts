/**
 * The ops_resolution axis (docs/design-axes.md): which iommu_ops serve a
 * device, and so whose probe_device decides whether the device is theirs.
 */
import { devIommuFwspecGet } from "../iommu/dev-iommu.ts";
import { iommuFwspecOps } from "../iommu/fwspec.ts";
import type { IommuOps } from "../iommu/ops.ts";
import type { OpsResolution } from "../iommu/strategy-types.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { axis } from "./axis.ts";

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

/** The ops_resolution axis. */
export const OPS_RESOLUTION = axis({
  field: "opsResolution",
  doc: "which ops serve a device (default upstream)",
  implementations: {
    upstream: upstreamOpsResolution,
    "ask-each": askEachOpsResolution,
  },
  default: "upstream",
});

