/**
 * A snapshot's rows by name and by id, made once per snapshot: the steps'
 * snapshots never change and share their unchanged rows, and a step
 * compares the rows of two snapshots by identity. Made afresh at each step,
 * these maps (2,000 entries each on a large machine) were the garbage that
 * set off the page's major collections.
 */
import type { DeviceSnap, GroupSnap, IommuSnap, Snapshot } from "./types.ts";

const devices = new WeakMap<Snapshot, Map<string, DeviceSnap>>();
const groups = new WeakMap<Snapshot, Map<number, GroupSnap>>();
const iommus = new WeakMap<Snapshot, Map<string, IommuSnap>>();

export function devicesByName(s: Snapshot): Map<string, DeviceSnap> {
  let m = devices.get(s);
  if (m === undefined) devices.set(s, (m = new Map(s.devices.map((d) => [d.name, d]))));
  return m;
}

export function groupsById(s: Snapshot): Map<number, GroupSnap> {
  let m = groups.get(s);
  if (m === undefined) groups.set(s, (m = new Map(s.groups.map((g) => [g.id, g]))));
  return m;
}

export function iommusByName(s: Snapshot): Map<string, IommuSnap> {
  let m = iommus.get(s);
  if (m === undefined) iommus.set(s, (m = new Map(s.iommus.map((i) => [i.name, i]))));
  return m;
}

const EMPTY_DEVICES = new Map<string, DeviceSnap>();
const EMPTY_GROUPS = new Map<number, GroupSnap>();
const EMPTY_IOMMUS = new Map<string, IommuSnap>();

/** The same for a snapshot that may be missing (no step before the first): empty maps. */
export const devicesOf = (s: Snapshot | null): ReadonlyMap<string, DeviceSnap> => (s === null ? EMPTY_DEVICES : devicesByName(s));
export const groupsOf = (s: Snapshot | null): ReadonlyMap<number, GroupSnap> => (s === null ? EMPTY_GROUPS : groupsById(s));
export const iommusOf = (s: Snapshot | null): ReadonlyMap<string, IommuSnap> => (s === null ? EMPTY_IOMMUS : iommusByName(s));

const loose = new WeakMap<Snapshot, DeviceSnap[]>();

/** The devices on no group's list (without a group, or mid-probe in a race not listed by theirs yet). */
export function looseDevices(s: Snapshot): readonly DeviceSnap[] {
  let l = loose.get(s);
  if (l === undefined) {
    const onLists = new Set(s.groups.flatMap((g) => g.devices));
    loose.set(s, (l = s.devices.filter((d) => !onLists.has(d.name))));
  }
  return l;
}
