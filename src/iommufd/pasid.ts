/**
 * PASID attachments of iommufd devices (device.c, igroup->pasid_attach):
 * which HWPT each PASID of a device's group is attached to.
 */
import type { IommufdDevice, IommufdGroup } from "./device.ts";
import type { Hwpt } from "./hw-pagetable.ts";

/** igroup->pasid_attach: the HWPT at each PASID. */
const pasidAttach = new WeakMap<IommufdGroup, Map<number, Hwpt>>();

export function groupPasids(ig: IommufdGroup): Map<number, Hwpt> {
  let m = pasidAttach.get(ig);
  if (m === undefined) pasidAttach.set(ig, (m = new Map()));
  return m;
}

/** The HWPT attached at `pasid` of idev's group, or null. */
export function pasidHwpt(idev: IommufdDevice, pasid: number): Hwpt | null {
  return pasidAttach.get(idev.igroup)?.get(pasid) ?? null;
}
