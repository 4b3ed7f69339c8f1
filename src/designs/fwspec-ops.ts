/**
 * The fwspec_ops axis (docs/design-axes.md): does a device's iommu_fwspec
 * carry the ops that probe it, or does its fwnode name them?
 */
import {
  deferredProbeCheckState,
  fwspecExisting,
  fwspecInstall,
  iommuFromFwnode,
  fwspecExistingNow,
  fwspecInstallNow,
  iommuFwspecInitFromFwnode,
  iommuFwspecInitFromFwnodeNow,
  iommuFwspecNotReady,
  iommuFwspecNotReadyNow,
  iommuFwspecOps,
  iommuOpsFromFwnode,
} from "../iommu/fwspec.ts";
import type { IommuFwspec } from "../iommu/dev-iommu.ts";
import type { IommuOps } from "../iommu/ops.ts";
import type { FwspecOps } from "../iommu/strategy-types.ts";
import { axis } from "./axis.ts";

/**
 * v6.11+ (Robin Murphy's "iommu: Remove iommu_fwspec ops", merged as
 * 3f7c32091628 "iommu: Resolve fwspec ops automatically", 5f937bc48a6a
 * "OF: Simplify of_iommu_configure()", 3e36c15fc1cc "iommu: Remove
 * iommu_fwspec ops"): iommu_fwspec_init(dev, fwnode) finds the instance
 * itself and defers, leaving nothing, while none has that fwnode ("fwspecs
 * aren't allocated unless and until we know they will be usable"); the
 * ops are the fwnode's instance's (`iommu_fwspec_ops`), a NULL fwnode's
 * the first instance without one. of_iommu_configure keeps any fwspec it
 * finds and frees the one a failed parse made.
 */
export const fromFwnodeFwspecOps: FwspecOps = {
  name: "from-fwnode",
  init: (k, dev, fwnode) => iommuFwspecInitFromFwnode(k, dev, fwnode),
  initNow: (k, dev, fwnode) => iommuFwspecInitFromFwnodeNow(k, dev, fwnode),
  opsOf: (k, fwspec) => iommuFwspecOps(k, fwspec),
  probeOps: (k, fwspec) => iommuFwspecOps(k, fwspec),
  namesOps: () => true,
  keepsExisting: () => true,
  keepsExistingReadsOps: false,
  keepsFailedParse: false,
};

/**
 * Up to v6.10: `struct iommu_fwspec` has `ops`, and
 * iommu_fwspec_init(dev, fwnode, ops) stores both; an existing fwspec is
 * kept for the same ops and EINVAL for others. of_iommu_xlate passes the
 * ops of the instance with that fwnode, NULL while none is registered: the
 * "otherwise-empty" fwspec then stays, naming the IOMMU waited for, and the
 * bind defers (driver_deferred_probe_check_state); the next
 * of_iommu_configure frees an ops-less fwspec and parses again ("In the
 * deferred case, start again from scratch"), and a failed parse leaves
 * what it made. Ops for probe (v6.8-v6.10): `fwspec->ops` when set, else
 * the first instance without a fwnode; in the bus-ops eras the bus's ops
 * probe and drivers check `fwspec->ops` themselves. iommu_mock_device_add
 * installs a fwspec carrying the mock's ops whatever the instance's fwnode
 * (NULL included): the bus-code pre-allocation of Lu Baolu's "[PATCH 1/1]
 * iommufd/selftest: Use right iommu_ops for mock device" (11 Jan 2024, not
 * merged), which gives the mock device its ops on x86 beside VT-d.
 */
export const fwspecCarriesOpsFwspecOps: FwspecOps = {
  name: "fwspec-carries-ops",
  // @kernel: iommu_fwspec_init (up to v6.10: (dev, iommu_fwnode, ops))
  *init(k, dev, fwnode, ops) {
    const existing = yield* fwspecExisting(k, dev, ops, (fw) => describeOther(fw, ops));
    if (existing !== null) return existing;
    const iommu = fwnode === null ? null : iommuFromFwnode(k, fwnode);
    const notReady = iommu === null ? null : yield* iommuFwspecNotReady(k, dev, fwnode, iommu);
    if (notReady !== null) return notReady;
    yield* fwspecInstall(k, dev, fwnode, ops);
    // @kernel: of_iommu_xlate (no ops yet: the otherwise-empty fwspec names the IOMMU waited for)
    if (ops === null) return deferredProbeCheckState(dev, fwnode);
    return 0;
  },
  initNow(k, dev, fwnode, ops) {
    const existing = fwspecExistingNow(k, dev, ops, (fw) => describeOther(fw, ops));
    if (existing !== null) return existing;
    const iommu = fwnode === null ? null : iommuFromFwnode(k, fwnode);
    const notReady = iommu === null ? null : iommuFwspecNotReadyNow(k, dev, fwnode, iommu);
    if (notReady !== null) return notReady;
    fwspecInstallNow(dev, fwnode, ops);
    if (ops === null) return deferredProbeCheckState(dev, fwnode);
    return 0;
  },
  opsOf: (_k, fwspec) => fwspec.ops,
  // @kernel: __iommu_probe_device (v6.8-v6.10: fwspec && fwspec->ops ? fwspec->ops : iommu_ops_from_fwnode(NULL))
  probeOps: (k, fwspec) => fwspec?.ops ?? iommuOpsFromFwnode(k, null),
  namesOps: (fwspec) => fwspec.ops !== null,
  // @kernel: of_iommu_configure (up to v6.10: a fwspec with ops is kept; one without is freed)
  keepsExisting: (fwspec) => fwspec.ops !== null,
  keepsExistingReadsOps: true,
  keepsFailedParse: true,
};

function describeOther(fw: IommuFwspec, ops: IommuOps | null): string {
  return `${fw.ops?.name ?? "no"} ops, not ${ops?.name ?? "none"}`;
}

/** The fwspec_ops axis. */
export const FWSPEC_OPS = axis({
  field: "fwspecOps",
  doc: "whether a fwspec carries the ops that probe its device (up to v6.10) or its fwnode names them (default, v6.11+)",
  implementations: {
    "fwspec-carries-ops": fwspecCarriesOpsFwspecOps,
    "from-fwnode": fromFwnodeFwspecOps,
  },
  default: "from-fwnode",
});
