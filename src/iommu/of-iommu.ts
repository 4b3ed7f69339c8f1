/**
 * Device-tree IOMMU configuration (drivers/iommu/of_iommu.c, v6.15+): turn
 * a device's `iommus` (or, for PCI, the host bridge's `iommu-map` applied
 * to each DMA alias) into an iommu_fwspec, deferring while the named
 * instance is not registered. Whether it then replays the probe follows
 * the fwspec_owner strategy, and its lock the probe_serialisation one.
 */
import type { Device } from "../base/device.ts";
import type { FwnodeHandle } from "../base/fwnode.ts";
import { touch, type Path } from "../base/path.ts";
import { pciForEachDmaAlias } from "../base/pci/pci-search.ts";
import { kernelPath } from "../base/traced.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { ofDeviceIsAvailable, ofMapId, ofParsePhandleWithArgs, type OfPhandleArgs } from "../firmware/of.ts";
import { devIommu, devIommuFwspecGet, type IommuFwspec } from "./dev-iommu.ts";
import { iommuFwspecInit, iommuFwspecInitNow, iommuOpsFromFwnode } from "./fwspec.ts";
import type { IommuCore } from "./iommu-core.ts";
import { iommuProbeDevice } from "./probe.ts";
import { fwspecLock, fwspecUnlock } from "./probe-lock.ts";
import { devIommuAccess, devIommuFreePath, endBuild, fwspecAccess, iommuFwspecFreePath } from "./lifetime.ts";

/*
 * The parse comes in two forms that do the same: plain functions for a run
 * without points (one step, no generator per device), and paths that yield
 * at each access for a scheduler that wants points (a test runs every
 * scenario both ways and compares the states).
 */

// @kernel: of_iommu_xlate
function ofIommuXlateNow(k: IommuCore, dev: Device, spec: OfPhandleArgs): 0 | KError {
  if (!ofDeviceIsAvailable(spec.np)) return kerr("ENODEV", `IOMMU node ${spec.np.name} is not available`);
  const ret = iommuFwspecInitNow(k, dev, spec.np);
  if (ret !== 0) return ret;
  return ofXlate(k, dev, spec);
}

/** of_iommu_xlate, stepped: iommu_fwspec_init's points, then iommu_fwspec_add_ids's (the fwspec pointer, then its ids: a free in between is a use after free). */
function* ofIommuXlate(k: IommuCore, dev: Device, spec: OfPhandleArgs): Path<0 | KError> {
  if (!ofDeviceIsAvailable(spec.np)) return kerr("ENODEV", `IOMMU node ${spec.np.name} is not available`);
  const ret = yield* iommuFwspecInit(k, dev, spec.np);
  if (ret !== 0) return ret;
  yield* devIommuAccess(k, "read", dev);
  yield* fwspecAccess(k, "write", dev, devIommuFwspecGet(dev));
  return ofXlate(k, dev, spec);
}

/** The driver's of_xlate, which adds the ids to the fwspec (iommu_fwspec_add_ids). */
function ofXlate(k: IommuCore, dev: Device, spec: OfPhandleArgs): 0 | KError {
  const ops = iommuOpsFromFwnode(k, spec.np);
  if (!ops?.ofXlate) return kerr("ENODEV", `the driver of ${spec.np.name} has no of_xlate`);
  return ops.ofXlate(dev, spec.args);
}

// @kernel: of_pci_iommu_init (one DMA alias through iommu-map)
function ofPciIommuSpec(hostNp: FwnodeHandle, alias: number): OfPhandleArgs | KError {
  const m = ofMapId(hostNp, alias, "iommu-map", "iommu-map-mask");
  if (isErr(m)) return m;
  if (m.target === null) {
    return kerr("ENODEV", `${hostNp.name}: no iommu-map translation for RID 0x${alias.toString(16)}`);
  }
  return { np: m.target, args: [m.idOut] };
}

/** The `iommus` entry `idx` of the device's node: null past the last. */
function ofIommuSpec(masterNp: FwnodeHandle, idx: number): OfPhandleArgs | KError | null {
  return ofParsePhandleWithArgs(masterNp, "iommus", "#iommu-cells", idx);
}

function noIommus(masterNp: FwnodeHandle): KError {
  return kerr("ENODEV", `${masterNp.name} has no iommus property`);
}

/** The whole parse in one step: of_iommu_configure_dev (each `iommus` entry), or pci_for_each_dma_alias over of_pci_iommu_init, stopping at the first error. */
// @kernel: of_iommu_configure_dev
function ofParseNow(k: IommuCore, dev: Device, masterNp: FwnodeHandle): 0 | KError {
  if (dev.pci !== null) {
    return pciForEachDmaAlias<0 | KError>(dev, (_pdev, alias) => {
      const spec = ofPciIommuSpec(masterNp, alias);
      return isErr(spec) ? spec : ofIommuXlateNow(k, dev, spec);
    }, 0);
  }
  let idx = 0;
  for (; ; idx++) {
    const spec = ofIommuSpec(masterNp, idx);
    if (spec === null) break;
    if (isErr(spec)) return spec;
    const err = ofIommuXlateNow(k, dev, spec);
    if (err !== 0) return err;
  }
  return idx > 0 ? 0 : noIommus(masterNp);
}

/** The same parse, stepped. */
function* ofParse(k: IommuCore, dev: Device, masterNp: FwnodeHandle): Path<0 | KError> {
  if (dev.pci !== null) {
    const aliases: number[] = [];
    pciForEachDmaAlias<0>(dev, (_pdev, alias) => (aliases.push(alias), 0), 0);
    for (const alias of aliases) {
      const spec = ofPciIommuSpec(masterNp, alias);
      const err = isErr(spec) ? spec : yield* ofIommuXlate(k, dev, spec);
      if (err !== 0) return err;
    }
    return 0;
  }
  let idx = 0;
  for (; ; idx++) {
    const spec = ofIommuSpec(masterNp, idx);
    if (spec === null) break;
    if (isErr(spec)) return spec;
    const err = yield* ofIommuXlate(k, dev, spec);
    if (err !== 0) return err;
  }
  return idx > 0 ? 0 : noIommus(masterNp);
}

export const ofIommuConfigure = kernelPath("of_iommu_configure", function* (k: IommuCore, dev: Device, masterNp: FwnodeHandle | null): Path<0 | KError> {
  if (masterNp === null) return kerr("ENODEV", `${dev.name} has no firmware node`);
  touch(k.sched, dev);
  // "Serialise to make dev->iommu stable under our potential fwspec" (v6.7+; none before).
  yield* fwspecLock(k);
  if (k.sched.points) yield* devIommuAccess(k, "read", dev);
  const fw = devIommuFwspecGet(dev);
  // Up to v6.10 the fwspec's ops are read (a free since the pointer was taken is a use after free).
  if (fw !== null && k.strategy.fwspecOps.keepsExistingReadsOps) yield* fwspecAccess(k, "read", dev, fw);
  // A fwspec is kept; up to v6.10 (fwspec-carries-ops) only one with ops: an ops-less one a deferral left is freed ("start again from scratch").
  if (fw !== null && k.strategy.fwspecOps.keepsExisting(fw)) {
    yield* fwspecUnlock(k);
    return 0;
  }
  const devIommuPresent = devIommu(dev) !== null;
  if (fw !== null) yield* iommuFwspecFreePath(k, dev);
  const err = k.sched.points ? yield* ofParse(k, dev, masterNp) : ofParseNow(k, dev, masterNp);
  if (err !== 0) yield* ofParseFailed(k, dev, err, devIommuPresent, fw);
  else if (k.sched.points || k.tracing) yield* ofParsed(k, dev);
  // The fwspec (and a dev_iommu made for it) is complete: other tasks may read it now.
  if (k.sched.points) yield* endBuild(k, dev, devIommu(dev));
  yield* fwspecUnlock(k);
  // The replay: since v6.15 only off the iommu_probe_device path (no dev->iommu on entry); before, after every parse.
  if (err === 0 && dev.registered && k.strategy.fwspecOwner.replayAtBind(devIommuPresent)) return yield* iommuProbeDevice(k, dev);
  return err;
}, { subject: (_k, dev) => dev.name, detail: (_k, _dev, masterNp) => masterNp?.name ?? "" });

/** A failed parse, under iommu_probe_device_lock: the fwspec (or the dev_iommu made for it) goes again. */
function* ofParseFailed(k: IommuCore, dev: Device, err: KError, devIommuPresent: boolean, entry: IommuFwspec | null): Path {
  // fwspec-carries-ops (up to v6.10) leaves what a failed parse made (an empty fwspec waiting for its IOMMU).
  if (k.strategy.fwspecOps.keepsFailedParse) {
    const left = devIommuFwspecGet(dev);
    // Recorded where the state changes: not a probe's own parse (dev->iommu, no fwspec, on entry), which the failed probe undoes.
    if (left !== null && (!devIommuPresent || (entry !== null && !sameFwspec(entry, left)))) {
      k.effect("fwspec-left-after-failed-parse", dev.name, `of_iommu_configure failed with ${err.errno} and left the fwspec it made`);
    }
    return;
  }
  if (devIommuPresent) yield* iommuFwspecFreePath(k, dev);
  else if (devIommu(dev) !== null) yield* devIommuFreePath(k, dev);
}

/** A successful parse: the fwspec re-read (up to v6.10, with points on) and traced. */
function* ofParsed(k: IommuCore, dev: Device): Path {
  // Up to v6.10 the parse is followed by `fwspec = dev_iommu_fwspec_get(dev); ops = fwspec->ops`.
  if (k.strategy.fwspecOps.keepsExistingReadsOps && k.sched.points) yield* fwspecReread(k, dev);
  const fw = devIommuFwspecGet(dev);
  if (k.tracing && fw !== null) {
    k.note("iommu_fwspec_init", dev.name, `${fw.iommuFwnode?.name ?? "(null)"} ids [${fw.ids.map((i) => "0x" + i.toString(16)).join(", ")}]`);
  }
}

/**
 * of_iommu_configure's read of the fwspec it just built (up to v6.10): a
 * fwspec freed since (by a failed probe's dev_iommu_free) is a use after
 * free, as is finding it gone (the kernel then dereferences NULL).
 */
function* fwspecReread(k: IommuCore, dev: Device): Path {
  yield* devIommuAccess(k, "read", dev);
  const fw = devIommuFwspecGet(dev);
  if (fw !== null) {
    yield* fwspecAccess(k, "read", dev, fw);
    return;
  }
  k.ctx.diag.violation(`I34 use-after-free: ${dev.name}: ${k.sched.current.name} reads the fwspec of ${dev.name} it just built and finds it freed by another path (of_iommu_configure then dereferences fwspec->ops)`);
}

/** Whether two fwspecs say the same (an ops-less fwspec freed and made again by the next parse). */
function sameFwspec(a: IommuFwspec, b: IommuFwspec): boolean {
  return a.iommuFwnode === b.iommuFwnode && a.ops === b.ops && a.ids.length === b.ids.length && a.ids.every((id, i) => id === b.ids[i]);
}
