/**
 * The points at which lifecycle paths touch a device's `dev->iommu` and its
 * fwspec, and the two rules checked there while a scheduler wants points
 * (docs/invariants.md): a task that took a pointer before another task
 * freed the object uses freed memory (I34 use-after-free), and a task that
 * reaches a dev_iommu or fwspec another task is still filling in sees it
 * half-initialised (I35 half-initialised). Each point comes right before
 * its access; the check runs when the task resumes, so an interleaving
 * that lets another task free or start building the object in between is
 * caught at the use. With points off nothing here yields or checks.
 *
 * Instances are named per device: `dev->iommu NAME` (the pointer and the
 * dev_iommu's fields, `fwspec` among them), `fwspec NAME` (the fwspec's
 * contents), `dev->iommu_group NAME`.
 */
import type { Device } from "../base/device.ts";
import { NO_POINT, type Path, type StepOp } from "../base/path.ts";
import { devIommu, devIommuFree, type DevIommu, type IommuFwspec } from "./dev-iommu.ts";
import type { IommuCore } from "./iommu-core.ts";

type Access = "read" | "write";

export function devIommuWhat(dev: Device): string {
  return `dev->iommu ${dev.name}`;
}

export function fwspecWhat(dev: Device): string {
  return `fwspec ${dev.name}`;
}

/**
 * A point before the running task reads or writes `dev->iommu`: the pointer
 * itself (`held` null: the check looks at what it points to once the task
 * resumes) or a field of the dev_iommu `held` it took earlier.
 */
export function devIommuAccess(k: IommuCore, op: Access, dev: Device, held: DevIommu | null = null): Path {
  return k.sched.points ? devIommuPoint(k, op, dev, held) : NO_POINT;
}

function* devIommuPoint(k: IommuCore, op: Access, dev: Device, held: DevIommu | null): Path {
  yield { op, what: devIommuWhat(dev), lock: null };
  const p = held ?? devIommu(dev);
  if (p !== null) checkDevIommu(k, op, dev, p);
}

/** A point before the running task reads or writes the contents of the fwspec `fw` it took from `dev`'s dev_iommu. */
export function fwspecAccess(k: IommuCore, op: Access, dev: Device, fw: IommuFwspec | null): Path {
  return k.sched.points && fw !== null ? fwspecPoint(k, op, dev, fw) : NO_POINT;
}

function* fwspecPoint(k: IommuCore, op: Access, dev: Device, fw: IommuFwspec): Path {
  yield { op, what: fwspecWhat(dev), lock: null };
  checkFwspec(k, op, dev, fw);
}

/** A point before `dev->iommu_group` is read or written. */
export function devGroupAccess(k: IommuCore, op: Access, dev: Device): Path {
  return k.sched.points ? devGroupPoint(op, dev) : NO_POINT;
}

function* devGroupPoint(op: StepOp, dev: Device): Path {
  yield { op, what: `dev->iommu_group ${dev.name}`, lock: null };
}

const verb = (op: Access) => (op === "read" ? "reads" : "writes");

// @kernel: dev_iommu_free (kfree of a dev_iommu other tasks may still hold)
function checkDevIommu(k: IommuCore, op: Access, dev: Device, p: DevIommu): void {
  const me = k.sched.current;
  if (p.freed) {
    k.ctx.diag.violation(
      `I34 use-after-free: ${dev.name}: ${me.name} ${verb(op)} the dev_iommu of ${dev.name} it took before ${p.freedBy ?? "another path"} freed it`,
    );
  } else if (p.builder !== null && p.builder !== me) {
    k.ctx.diag.violation(
      `I35 half-initialised: ${dev.name}: ${me.name} ${verb(op)} the dev_iommu of ${dev.name} while ${p.builder.name} is still filling it in (${p.building})`,
    );
  }
}

// @kernel: iommu_fwspec_free (kfree of a fwspec other tasks may still hold)
function checkFwspec(k: IommuCore, op: Access, dev: Device, fw: IommuFwspec): void {
  const me = k.sched.current;
  if (fw.freed) {
    k.ctx.diag.violation(`I34 use-after-free: ${dev.name}: ${me.name} ${verb(op)} the fwspec of ${dev.name} it took before ${fw.freedBy ?? "another path"} freed it`);
  } else if (fw.builder !== null && fw.builder !== me) {
    k.ctx.diag.violation(
      `I35 half-initialised: ${dev.name}: ${me.name} ${verb(op)} the fwspec of ${dev.name} while ${fw.builder.name} is still building it (iommu_fwspec_init, ids not all added)`,
    );
  }
}

/** The running task starts filling in `p` (`fn` names what it does): another task reaching it meanwhile sees it half-initialised. */
export function beginBuild(k: IommuCore, p: DevIommu, fn: string): void {
  if (!k.sched.points || p.builder !== null) return;
  p.builder = k.sched.current;
  p.building = fn;
}

/**
 * The running task is done with `p` (and the fwspec it built): other tasks
 * may read them now. Ending a build is a write (of the model's mark), so
 * each end comes after its own point: an explorer then orders it against
 * other tasks' reads.
 */
export function endBuild(k: IommuCore, dev: Device, p: DevIommu | null): Path {
  if (!k.sched.points || p === null) return NO_POINT;
  const me = k.sched.current;
  const fw = p.fwspec !== null && p.fwspec.builder === me ? p.fwspec : null;
  if (p.builder !== me && fw === null) return NO_POINT;
  return endBuildPoints(k, dev, p, fw);
}

function* endBuildPoints(k: IommuCore, dev: Device, p: DevIommu, fw: IommuFwspec | null): Path {
  const me = k.sched.current;
  if (p.builder === me) {
    yield { op: "write", what: devIommuWhat(dev), lock: null };
    p.builder = null;
    p.building = "";
  }
  if (fw !== null) {
    yield { op: "write", what: fwspecWhat(dev), lock: null };
    if (fw.builder === me) fw.builder = null;
  }
}

/**
 * dev_iommu_free as points: `dev->iommu` is cleared first, then the fwspec
 * freed (the kernel's order), each after its own point so a task holding
 * either is caught at its next use. Without points, the plain free.
 */
// @kernel: dev_iommu_free
export function devIommuFreePath(k: IommuCore, dev: Device, fn = "dev_iommu_free"): Path {
  if (!k.sched.points) {
    devIommuFree(dev);
    return NO_POINT;
  }
  return devIommuFreePoints(k, dev, fn);
}

function* devIommuFreePoints(k: IommuCore, dev: Device, fn: string): Path {
  yield* devIommuPoint(k, "write", dev, null);
  const p = devIommu(dev);
  if (p === null) return;
  const by = `${k.sched.current.name} in ${fn}`;
  dev.iommu = null;
  p.freed = true;
  p.freedBy = by;
  const fw = p.fwspec;
  if (fw === null || fw.freed) return;
  yield* fwspecPoint(k, "write", dev, fw);
  fw.freed = true;
  fw.freedBy = by;
}

/** iommu_fwspec_free as points: the pointer cleared, then the fwspec freed. Without points, the plain free. */
// @kernel: iommu_fwspec_free
export function iommuFwspecFreePath(k: IommuCore, dev: Device): Path {
  if (!k.sched.points) {
    const p = devIommu(dev);
    if (p !== null && p.fwspec !== null) {
      p.fwspec.freed = true;
      p.fwspec = null;
    }
    return NO_POINT;
  }
  return fwspecFreePoints(k, dev);
}

function* fwspecFreePoints(k: IommuCore, dev: Device): Path {
  yield* devIommuPoint(k, "write", dev, null);
  const p = devIommu(dev);
  const fw = p?.fwspec ?? null;
  if (p === null || fw === null) return;
  p.fwspec = null;
  yield* fwspecPoint(k, "write", dev, fw);
  fw.freed = true;
  fw.freedBy = `${k.sched.current.name} in iommu_fwspec_free`;
}
