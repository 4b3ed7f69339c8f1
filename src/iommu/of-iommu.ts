/**
 * Device-tree IOMMU configuration (drivers/iommu/of_iommu.c, v6.15+): turn
 * a device's `iommus` (or, for PCI, the host bridge's `iommu-map` applied
 * to each DMA alias) into an iommu_fwspec, deferring while the named
 * instance is not registered. Whether it then replays the probe follows
 * the fwspec_owner strategy, and its lock the probe_serialisation one.
 */
import type { Device } from "../base/device.ts";
import type { FwnodeHandle } from "../base/fwnode.ts";
import { access, touch, type Path } from "../base/path.ts";
import { pciForEachDmaAlias } from "../base/pci/pci-search.ts";
import { kernelPath } from "../base/traced.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { ofDeviceIsAvailable, ofMapId, ofParsePhandleWithArgs, type OfPhandleArgs } from "../firmware/of.ts";
import { devIommu, devIommuFree, devIommuFwspecGet, type IommuFwspec } from "./dev-iommu.ts";
import { iommuFwspecFree, iommuFwspecInit, iommuOpsFromFwnode } from "./fwspec.ts";
import type { IommuCore } from "./iommu-core.ts";
import { iommuProbeDevice } from "./probe.ts";
import { fwspecLock, fwspecUnlock } from "./probe-lock.ts";

// @kernel: of_iommu_xlate
function ofIommuXlate(k: IommuCore, dev: Device, spec: OfPhandleArgs): 0 | KError {
  if (!ofDeviceIsAvailable(spec.np)) return kerr("ENODEV", `IOMMU node ${spec.np.name} is not available`);
  const ret = iommuFwspecInit(k, dev, spec.np);
  if (ret !== 0) return ret;
  const ops = iommuOpsFromFwnode(k, spec.np);
  if (!ops?.ofXlate) return kerr("ENODEV", `the driver of ${spec.np.name} has no of_xlate`);
  return ops.ofXlate(dev, spec.args);
}

// @kernel: of_pci_iommu_init (one DMA alias through iommu-map)
function ofPciIommuInit(k: IommuCore, dev: Device, hostNp: FwnodeHandle, alias: number): 0 | KError {
  const m = ofMapId(hostNp, alias, "iommu-map", "iommu-map-mask");
  if (isErr(m)) return m;
  if (m.target === null) {
    return kerr("ENODEV", `${hostNp.name}: no iommu-map translation for RID 0x${alias.toString(16)}`);
  }
  return ofIommuXlate(k, dev, { np: m.target, args: [m.idOut] });
}

// @kernel: of_iommu_configure_dev (each `iommus` entry, stopping at the first error)
function ofIommuConfigureDev(k: IommuCore, dev: Device, masterNp: FwnodeHandle): 0 | KError {
  let idx = 0;
  for (; ; idx++) {
    const spec = ofParsePhandleWithArgs(masterNp, "iommus", "#iommu-cells", idx);
    if (spec === null) break;
    if (isErr(spec)) return spec;
    const err = ofIommuXlate(k, dev, spec);
    if (err !== 0) return err;
  }
  return idx > 0 ? 0 : kerr("ENODEV", `${masterNp.name} has no iommus property`);
}

export const ofIommuConfigure = kernelPath("of_iommu_configure", function* (k: IommuCore, dev: Device, masterNp: FwnodeHandle | null): Path<0 | KError> {
  if (masterNp === null) return kerr("ENODEV", `${dev.name} has no firmware node`);
  touch(k.sched, dev);
  // "Serialise to make dev->iommu stable under our potential fwspec" (v6.7+; none before).
  yield* fwspecLock(k);
  yield* access(k.sched, "read", "dev->iommu->fwspec");
  const fw = devIommuFwspecGet(dev);
  // A fwspec is kept; up to v6.10 (fwspec-carries-ops) only one with ops: an ops-less one a deferral left is freed ("start again from scratch").
  if (fw !== null && k.strategy.fwspecOps.keepsExisting(fw)) {
    yield* fwspecUnlock(k);
    return 0;
  }
  const devIommuPresent = devIommu(dev) !== null;
  if (fw !== null) iommuFwspecFree(dev);
  const err = ofIommuConfigureLocked(k, dev, masterNp, devIommuPresent, fw);
  yield* fwspecUnlock(k);
  // The replay: since v6.15 only off the iommu_probe_device path (no dev->iommu on entry); before, after every parse.
  if (err === 0 && dev.registered && k.strategy.fwspecOwner.replayAtBind(devIommuPresent)) return yield* iommuProbeDevice(k, dev);
  return err;
}, { subject: (_k, dev) => dev.name, detail: (_k, _dev, masterNp) => masterNp?.name ?? "" });

/** The fwspec from firmware, under iommu_probe_device_lock; on failure the fwspec (or the dev_iommu made for it) goes again. */
function ofIommuConfigureLocked(k: IommuCore, dev: Device, masterNp: FwnodeHandle, devIommuPresent: boolean, entry: IommuFwspec | null): 0 | KError {
  const err =
    dev.pci !== null
      ? pciForEachDmaAlias<0 | KError>(dev, (_pdev, alias) => ofPciIommuInit(k, dev, masterNp, alias), 0)
      : ofIommuConfigureDev(k, dev, masterNp);
  if (err !== 0) {
    // fwspec-carries-ops (up to v6.10) leaves what a failed parse made (an empty fwspec waiting for its IOMMU).
    if (k.strategy.fwspecOps.keepsFailedParse) {
      const left = devIommuFwspecGet(dev);
      // Recorded where the state changes: not a probe's own parse (dev->iommu, no fwspec, on entry), which the failed probe undoes.
      if (left !== null && (!devIommuPresent || (entry !== null && !sameFwspec(entry, left)))) {
        k.effect("fwspec-left-after-failed-parse", dev.name, `of_iommu_configure failed with ${err.errno} and left the fwspec it made`);
      }
      return err;
    }
    if (devIommuPresent) iommuFwspecFree(dev);
    else if (devIommu(dev) !== null) devIommuFree(dev);
    return err;
  }
  if (k.tracing) {
    const fw = devIommuFwspecGet(dev)!;
    k.note("iommu_fwspec_init", dev.name, `${fw.iommuFwnode?.name ?? "(null)"} ids [${fw.ids.map((i) => "0x" + i.toString(16)).join(", ")}]`);
  }
  return 0;
}

/** Whether two fwspecs say the same (an ops-less fwspec freed and made again by the next parse). */
function sameFwspec(a: IommuFwspec, b: IommuFwspec): boolean {
  return a.iommuFwnode === b.iommuFwnode && a.ops === b.ops && a.ids.length === b.ids.length && a.ids.every((id, i) => id === b.ids[i]);
}
