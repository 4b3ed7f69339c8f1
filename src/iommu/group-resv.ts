/**
 * A group's reserved regions (iommu_get_group_resv_regions) and their
 * sysfs form (/sys/kernel/iommu_groups/N/reserved_regions).
 */
import { devHasIommu } from "./dev-iommu.ts";
import type { IommuGroup } from "./group.ts";
import { RESV_TYPE_ORDER, iommuGetResvRegions, type IommuResvRegion } from "./resv-region.ts";

// @kernel: iommu_insert_resv_region
function insertResvRegion(list: IommuResvRegion[], r: IommuResvRegion): void {
  // Insert by start address; on equal starts, before regions of a later or equal type.
  let at = list.findIndex((it) => r.start < it.start || (r.start === it.start && RESV_TYPE_ORDER[r.type] <= RESV_TYPE_ORDER[it.type]));
  if (at < 0) at = list.length;
  list.splice(at, 0, { ...r });
  // Merge overlapping or adjacent regions of the new region's type; other types never merge.
  const stack: IommuResvRegion[] = [];
  for (const it of list) {
    if (it.type !== r.type) {
      stack.push(it);
      continue;
    }
    let top: IommuResvRegion | undefined;
    for (let i = stack.length - 1; i >= 0; i--) {
      if (stack[i]!.type === it.type) {
        top = stack[i];
        break;
      }
    }
    if (top === undefined || it.start > top.start + top.length) {
      stack.push(it);
    } else {
      top.length = Math.max(top.start + top.length, it.start + it.length) - top.start;
    }
  }
  list.length = 0;
  list.push(...stack);
}

// @kernel: iommu_get_group_resv_regions (stops at the first member without a real IOMMU)
export function iommuGetGroupResvRegions(group: IommuGroup): IommuResvRegion[] {
  const list: IommuResvRegion[] = [];
  for (const gdev of group.devices) {
    if (!devHasIommu(gdev.dev)) break;
    for (const r of iommuGetResvRegions(gdev.dev)) insertResvRegion(list, r);
  }
  return list;
}

// @kernel: iommu_group_show_resv_regions (types print as in iommu_group_resv_type_string)
export function formatResvRegion(r: IommuResvRegion): string {
  const hex16 = (x: number) => "0x" + x.toString(16).padStart(16, "0");
  const type = r.type === "sw-msi" ? "msi" : r.type;
  return `${hex16(r.start)} ${hex16(r.start + r.length - 1)} ${type}`;
}
