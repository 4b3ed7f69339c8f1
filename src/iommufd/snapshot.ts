/**
 * A plain-data view of an iommufd context: its objects with their users,
 * each IOAS's areas, reserved and allowed ranges and alignment, the HWPT
 * each group is attached to and the domain the core has the group on, the
 * HWPT at each PASID a device is attached at, and the pages pinned. Two snapshots compare equal when nothing changed.
 */
import { IommufdAccess } from "./access.ts";
import { IommufdDevice } from "./device.ts";
import { HwptPaging } from "./hw-pagetable.ts";
import { IommufdIoas } from "./ioas.ts";
import type { IommufdCtx } from "./object.ts";
import { devicePasids } from "./pasid.ts";

export interface IommufdSnapshot {
  objects: { id: number; type: string; users: number; detail: unknown }[];
  /** Pages pinned in the whole of user memory, and on the context's process's account. */
  pinnedPages: number;
  pinnedVm: number;
  accessFds: number[];
  vfioIoas: number;
}

function detail(o: unknown): unknown {
  if (o instanceof IommufdIoas) {
    const t = o.iopt;
    return {
      areas: t.areas.map((a) => [a.iova, a.last, a.iommuProt, a.numAccesses]),
      reserved: t.reserved.map((r) => [r.start, r.last]),
      allowed: t.allowed.map((r) => [r.start, r.last]),
      domains: t.domains.map((d) => d.id),
      alignment: t.iovaAlignment,
      disableLargePages: t.disableLargePages,
      hwpts: o.hwptList.map((h) => (h as HwptPaging).id),
    };
  }
  if (o instanceof HwptPaging) return { ioas: o.ioas.id, auto: o.autoDomain, domain: o.domain?.id ?? 0, fault: o.fault?.id ?? 0 };
  if (o instanceof IommufdDevice) return { dev: o.dev.name, hwpt: o.attached ? (o.igroup.hwpt?.id ?? 0) : 0, groupDomain: o.igroup.group.domain?.id ?? 0, owner: o.igroup.group.owner !== null, pasids: devicePasids(o) };
  if (o instanceof IommufdAccess) return { ioas: o.ioas?.id ?? 0 };
  // The other object types describe themselves.
  const own = (o as { snapshotDetail?: () => unknown }).snapshotDetail;
  return own !== undefined ? own.call(o) : null;
}

export function iommufdSnapshot(ictx: IommufdCtx): IommufdSnapshot {
  return {
    objects: ictx.live().map((o) => ({ id: o.id, type: o.type, users: o.users, detail: detail(o) })),
    pinnedPages: ictx.env.phys.pinnedTotal,
    pinnedVm: ictx.mm.pinnedVm,
    accessFds: [...ictx.fds.keys()],
    vfioIoas: ictx.vfioIoas?.id ?? 0,
  };
}
