/**
 * HW queues (viommu.c, IOMMU_HW_QUEUE_ALLOC): a guest queue in the nesting
 * parent's IOAS that the IOMMU reads by physical address. Its pages are
 * pinned through an internal access, must be physically contiguous, and
 * their areas are locked: IOAS_UNMAP of them is EBUSY until the queue goes.
 */
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { PAGE_SIZE } from "../pgtable/sizes.ts";
import { iommufdAccessChangeIoas, iommufdAccessCreate, iommufdAccessDestroy, iommufdAccessPinPages, iommufdAccessUnpinPages, type IommufdAccess } from "./access.ts";
import { IommufdObject, type IommufdCtx } from "./object.ts";
import { IOMMU_HW_QUEUE_TYPE_DEFAULT, U64_MAX, type IommuHwQueueAlloc } from "./uapi.ts";
import { USER_PHYS_BASE } from "./user-memory.ts";
import type { Viommu } from "./viommu.ts";

export class HwQueue extends IommufdObject {
  readonly type = "HW_QUEUE" as const;
  viommu!: Viommu;
  access: IommufdAccess | null = null;
  /** The driver's destroy (hw_queue->destroy), set by its init. */
  driverDestroy: (() => void) | null = null;
  constructor(
    readonly queueType: number,
    readonly baseAddr: number,
    readonly length: number,
  ) {
    super();
  }

  destroy(ictx: IommufdCtx): void {
    // @kernel: iommufd_hw_queue_destroy
    this.driverDestroy?.();
    if (this.access !== null) hwQueueDestroyAccess(ictx, this.access, this.baseAddr, this.length);
    this.access = null;
    this.viommu.users--;
  }

  snapshotDetail(): unknown {
    return { viommu: this.viommu.id, queueType: this.queueType, baseAddr: this.baseAddr, length: this.length, access: this.access?.id ?? 0 };
  }
}

/** The page-aligned span [iova aligned down, end aligned up) a queue pins. */
function span(baseAddr: number, length: number): [number, number] {
  const aligned = Math.floor(baseAddr / PAGE_SIZE) * PAGE_SIZE;
  return [aligned, Math.ceil((baseAddr - aligned + length) / PAGE_SIZE) * PAGE_SIZE];
}

/** num_locks of the areas under [iova, iova + length) (an internal access's pins lock their areas). */
function lockAreas(a: IommufdAccess, iova: number, length: number, delta: number): void {
  for (const area of a.ioas!.iopt.areasIn(iova, iova + length - 1)) area.numLocks += delta;
}

// @kernel: iommufd_hw_queue_destroy_access
function hwQueueDestroyAccess(ictx: IommufdCtx, a: IommufdAccess, baseAddr: number, length: number): void {
  const [aligned, len] = span(baseAddr, length);
  lockAreas(a, aligned, len, -1);
  iommufdAccessUnpinPages(a, aligned, len);
  iommufdAccessDestroy(ictx, a);
}

/** Pins the queue's pages through an internal access; the access and the queue's physical address. */
// @kernel: iommufd_hw_queue_alloc_phys
function hwQueueAllocPhys(ictx: IommufdCtx, cmd: IommuHwQueueAlloc, viommu: Viommu): [IommufdAccess, number] | KError {
  const [aligned, length] = span(cmd.nesting_parent_iova, cmd.length);
  // @kernel: iommufd_access_create_internal
  const a = iommufdAccessCreate(ictx, { needsPinPages: true, unmap: () => {} });
  if (isErr(a)) return a;
  let rc = iommufdAccessChangeIoas(ictx, a, viommu.hwpt.ioas.id);
  if (rc !== 0) {
    iommufdAccessDestroy(ictx, a);
    return rc;
  }
  rc = iommufdAccessPinPages(a, aligned, length, false);
  if (rc !== 0) {
    iommufdAccessDestroy(ictx, a);
    return rc;
  }
  const iopt = a.ioas!.iopt;
  const pfns: number[] = [];
  for (let iova = aligned; iova < aligned + length; iova += PAGE_SIZE) {
    const area = iopt.areaIterFirst(iova, iova)!;
    pfns.push(area.pages.peekPfn(Math.floor((area.pagesByte + (iova - area.iova)) / PAGE_SIZE)));
  }
  for (let i = 1; i < pfns.length; i++) {
    if (pfns[i] !== pfns[i - 1]! + 1) {
      iommufdAccessUnpinPages(a, aligned, length);
      iommufdAccessDestroy(ictx, a);
      return kerr("EFAULT", `the queue's pages are not physically contiguous at IOVA 0x${(aligned + i * PAGE_SIZE).toString(16)}`);
    }
  }
  lockAreas(a, aligned, length, 1);
  return [a, USER_PHYS_BASE + pfns[0]! * PAGE_SIZE + (cmd.nesting_parent_iova - aligned)];
}

// @kernel: iommufd_hw_queue_alloc_ioctl
export function hwQueueAllocIoctl(ictx: IommufdCtx, cmd: IommuHwQueueAlloc): 0 | KError {
  if (cmd.flags !== 0 || cmd.type === IOMMU_HW_QUEUE_TYPE_DEFAULT) return kerr("EOPNOTSUPP", "flags must be 0 and the type not DEFAULT");
  if (cmd.length === 0) return kerr("EINVAL", "length must not be 0");
  if (cmd.nesting_parent_iova + cmd.length - 1 >= U64_MAX) return kerr("EOVERFLOW", "nesting_parent_iova + length overflows");
  const vo = ictx.get(cmd.viommu_id, "VIOMMU");
  if (isErr(vo)) return vo;
  const viommu = vo as Viommu;
  const ops = viommu.ops;
  if (ops?.getHwQueueSize === undefined || ops.hwQueueInitPhys === undefined) return kerr("EOPNOTSUPP", `vIOMMU ${viommu.id} has no HW queues`);
  if (ops.getHwQueueSize(viommu, cmd.type) === 0) return kerr("EOPNOTSUPP", `vIOMMU ${viommu.id} has no HW queue of type 0x${cmd.type.toString(16)}`);
  const id = ictx.alloc();
  if (typeof id !== "number") return id;
  const q = new HwQueue(cmd.type, cmd.nesting_parent_iova, cmd.length);
  const r = hwQueueAllocPhys(ictx, cmd, viommu);
  if (isErr(r)) {
    ictx.abort(id);
    return r;
  }
  q.viommu = viommu;
  viommu.users++;
  [q.access] = r;
  const rc = ops.hwQueueInitPhys(q, cmd.index, r[1]);
  if (rc !== 0) {
    ictx.abort(id);
    q.destroy(ictx);
    return rc;
  }
  ictx.finalize(id, q);
  cmd.out_hw_queue_id = id;
  return 0;
}
