/**
 * ACPI DMAR (Intel VT-d) and IVRS (AMD-Vi) device scopes: which hardware
 * unit translates a device. These drivers register with no fwnode; their
 * clients carry no fwspec, and `probe_device` finds the unit by scope.
 */
import type { Device } from "../base/device.ts";

/** One DRHD (or IVHD) unit's scope. */
export interface DmarUnitScope {
  /** PCI segment the unit serves. */
  segment: number;
  /** DMAR INCLUDE_PCI_ALL: every PCI device of the segment not claimed by another unit. */
  includeAll: boolean;
  /** Explicit device scope entries by device name; a bridge entry covers everything below it (VT-d). */
  devices: ReadonlySet<string>;
  /** AMD-Vi: each name is one requester ID, looked up as such; a bridge's entry does not cover the devices below it. */
  exact?: boolean;
}

/** The scope of a unit whose firmware entry says nothing else: INCLUDE_PCI_ALL on segment 0. */
export function dmarIncludeAllScope(): DmarUnitScope {
  return { segment: 0, includeAll: true, devices: new Set<string>() };
}

/** True if `dev` or one of the bridges above it is named in the explicit scope (only `dev` itself for an exact scope). */
export function dmarScopeNames(scope: DmarUnitScope, dev: Device): boolean {
  // @kernel: rlookup_amd_iommu (AMD-Vi: the requester ID's own rlookup_table entry, which IVHD entries wrote)
  if (scope.exact === true) return scope.devices.has(dev.name);
  for (let d: Device | null = dev; d !== null; d = d.parent) {
    if (scope.devices.has(d.name)) return true;
  }
  return false;
}

/**
 * @kernel: dmar_find_matched_drhd_unit
 * Units with explicit scopes are searched first; INCLUDE_PCI_ALL units sit
 * at the tail of the list and catch the remaining PCI devices of their
 * segment.
 */
export function dmarFindMatchedUnit<U extends { scope: DmarUnitScope }>(units: readonly U[], dev: Device): U | null {
  for (const u of units) if (!u.scope.includeAll && dmarScopeNames(u.scope, dev)) return u;
  if (dev.pci === null) return null;
  for (const u of units) if (u.scope.includeAll && u.scope.segment === dev.pci.segment) return u;
  return null;
}
