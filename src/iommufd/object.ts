/**
 * The iommufd context and its object table (main.c): ids from an
 * xarray-like allocator (lowest free index from 1; 0 is never valid),
 * two-step creation (an id is reserved as a placeholder, then published
 * or aborted), typed lookups, and `users` refcounts with the table's own
 * reference, so IOMMU_DESTROY refuses an object anyone else holds.
 */
import type { Device } from "../base/device.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import { kerr, type KError } from "../lib/errno.ts";
import type { IommufdObjectType } from "./uapi.ts";
import type { Mm, PhysMem } from "./user-memory.ts";

/** What iommufd needs from the machine it runs on. */
export interface IommufdEnv {
  readonly core: IommuCore;
  readonly phys: PhysMem;
  /** The selftest's mock device creation: a fresh device on the mock bus, added and probed (mock_dev_create). */
  mockDeviceAdd(flags: number): Device | KError;
  /** Unregisters a mock device (mock_dev_destroy). */
  mockDeviceDel(dev: Device): void;
  /** The mock device flags the mock driver was given (MOCK_FLAGS_DEVICE_*), 0 for other devices. */
  mockDeviceFlags(dev: Device): number;
}

export abstract class IommufdObject {
  id = 0;
  /** The table's reference plus every holder's (refcount_t users). */
  users = 1;
  abstract readonly type: IommufdObjectType;
  /** Drops what the object holds (its type's destroy op); the table entry is already gone. */
  abstract destroy(ictx: IommufdCtx): void;
}

/** Rlimit accounting (enum iommufd_account_mode). */
export type AccountMode = "none" | "user" | "mm";

export class IommufdCtx {
  /** Index = id; undefined = free, null = reserved placeholder. */
  readonly objects: (IommufdObject | null | undefined)[] = [undefined];
  /** No id in use, placeholders included (every removal goes through abort, which trims the free tail). */
  get empty(): boolean {
    return this.objects.length === 1;
  }
  accountMode: AccountMode = "user";
  /** The IOAS VFIO compatibility uses (ictx->vfio_ioas). */
  vfioIoas: IommufdObject | null = null;
  /** iommufd_group by iommu group (ictx->groups). */
  readonly groups = new Map<object, unknown>();
  /** The process that opened the fd (current->mm at open). */
  mm: Mm;
  /** Model: the fault-injection switch (iommufd_should_fail), null when off. */
  failNth: { n: number; seen: number } | null = null;
  closed = false;
  /** Files this context handed out (the selftest's access fds), by fd number. */
  readonly fds = new Map<number, object>();

  constructor(
    readonly env: IommufdEnv,
    mm: Mm,
  ) {
    this.mm = mm;
  }

  /** iommufd_should_fail: true at the Nth failure point reached while injection is armed. */
  shouldFail(): boolean {
    const f = this.failNth;
    if (f === null) return false;
    return ++f.seen === f.n;
  }

  // @kernel: _iommufd_object_alloc
  alloc(): number | KError {
    if (this.shouldFail()) return kerr("ENOMEM", "fault injection: object allocation");
    const o = this.objects;
    let id = 1;
    while (id < o.length && o[id] !== undefined) id++;
    if (id >= 2 ** 31) return kerr("ENOSPC", "the object table is full");
    o[id] = null;
    return id;
  }

  // @kernel: iommufd_object_finalize
  finalize(id: number, obj: IommufdObject): void {
    obj.id = id;
    this.objects[id] = obj;
  }

  // @kernel: iommufd_object_abort
  abort(id: number): void {
    this.objects[id] = undefined;
    while (this.objects.length > 1 && this.objects[this.objects.length - 1] === undefined) this.objects.length--;
  }

  /** Allocates an id and publishes `obj` under it at once. */
  add<T extends IommufdObject>(obj: T): T | KError {
    const id = this.alloc();
    if (typeof id !== "number") return id;
    this.finalize(id, obj);
    return obj;
  }

  // @kernel: iommufd_get_object
  get(id: number, type: IommufdObjectType | null): IommufdObject | KError {
    if (this.shouldFail()) return kerr("ENOENT", "fault injection: object lookup");
    const o = Number.isInteger(id) && id > 0 ? this.objects[id] : undefined;
    if (o === undefined || o === null) return kerr("ENOENT", `no object ${id}`);
    if (type !== null && o.type !== type) return kerr("ENOENT", `object ${id} is a ${o.type}, not a ${type}`);
    return o;
  }

  /** Removes an object only the table holds and runs its destroy (iommufd_object_remove). */
  // @kernel: iommufd_object_remove
  remove(id: number): 0 | KError {
    const o = Number.isInteger(id) && id > 0 ? this.objects[id] : undefined;
    if (o === undefined || o === null) return kerr("ENOENT", `no object ${id}`);
    if (o.users !== 1) return kerr("EBUSY", `object ${id} (${o.type}) is in use (${o.users - 1} other references)`);
    this.abort(id);
    if (this.vfioIoas === o) this.vfioIoas = null;
    o.destroy(this);
    return 0;
  }

  /** Drops a holder's reference; an object left with only the table's is removed when `destroyIfLast`. */
  put(o: IommufdObject, destroyIfLast = false): void {
    o.users--;
    if (destroyIfLast && o.users === 1 && this.objects[o.id] === o) this.remove(o.id);
  }

  /** Ids whose object was destroyed in place (XA_ZERO_ENTRY): lookups fail, the id is not reused until close. */
  readonly tombstones = new Set<number>();

  /** Removes an object, leaving its id reserved (iommufd_object_tombstone_user). */
  // @kernel: iommufd_object_tombstone_user
  tombstone(id: number): void {
    const o = this.objects[id];
    if (o === undefined || o === null) return;
    this.objects[id] = null;
    this.tombstones.add(id);
    o.destroy(this);
  }

  /** Every live object, by id. */
  live(): IommufdObject[] {
    const out: IommufdObject[] = [];
    for (const o of this.objects) if (o !== undefined && o !== null) out.push(o);
    return out;
  }
}
