/**
 * A group's reserved regions (iommu_get_group_resv_regions) and their
 * sysfs form (/sys/kernel/iommu_groups/N/reserved_regions).
 */
import { devHasIommu } from "./dev-iommu.ts";
import type { IommuGroup } from "./group.ts";
import { RESV_TYPE_ORDER, iommuGetResvRegions, type IommuResvRegion } from "./resv-region.ts";

// @kernel: iommu_insert_resv_region
function insertResvRegion(list: IommuResvRegion[], r: IommuResvRegion): void {
  if (list.length === 0) {
    list.push({ ...r });
    return;
  }
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

const hex16 = (x: number) => "0x" + x.toString(16).padStart(16, "0");

/** Formatted regions by type, start and length: groups of one machine repeat a few (the MSI window). */
const formatted = new Map<string, Map<number, Map<number, string>>>();

// @kernel: iommu_group_show_resv_regions (types print as in iommu_group_resv_type_string)
export function formatResvRegion(r: IommuResvRegion): string {
  let byStart = formatted.get(r.type);
  if (byStart === undefined) formatted.set(r.type, (byStart = new Map()));
  let byLength = byStart.get(r.start);
  if (byLength === undefined) {
    if (byStart.size >= 4096) byStart.clear();
    byStart.set(r.start, (byLength = new Map()));
  }
  let text = byLength.get(r.length);
  if (text === undefined) {
    const type = r.type === "sw-msi" ? "msi" : r.type;
    text = `${hex16(r.start)} ${hex16(r.start + r.length - 1)} ${type}`;
    byLength.set(r.length, text);
  }
  return text;
}
