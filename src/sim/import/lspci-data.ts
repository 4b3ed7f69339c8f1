/**
 * The imported machine as scenario data (what lspci-yaml.ts writes as
 * text, without the comments): `groups` and `explain` on a dump validate
 * this directly, skipping a YAML round trip that costs more than the
 * whole import on a big machine.
 */
import { basename } from "node:path";
import { DRIVER_MANAGED_DMA, type ImportedFunction, type LspciImport, type LspciPci } from "./lspci-scenario.ts";

const h4 = (n: number) => n.toString(16).padStart(4, "0");

/** One function's device entry, keys in the order the YAML writes them. */
export function deviceEntry(x: ImportedFunction): Record<string, unknown> {
  const f = x.src;
  const d: Record<string, unknown> = { name: x.name, bus: "pci" };
  if (x.parent !== null) d.parent = x.parent;
  d.type = x.type;
  if (x.multifunction) d.multifunction = true;
  if (f.vendor !== null && f.device !== null) d.id = `${h4(f.vendor)}:${h4(f.device)}`;
  if (f.subsystem !== null) d.subsystem = `${h4(f.subsystem[0])}:${h4(f.subsystem[1])}`;
  if (f.classCode !== null) d.class = `${h4(f.classCode)}${f.progIf === null ? "" : f.progIf.toString(16).padStart(2, "0")}`;
  if (f.revision !== null) d.revision = f.revision;
  if (x.acsCap !== null) {
    d.acs_cap = x.acsCap;
    d.acs_ctl = x.acsCtl ?? [];
  }
  d.description = f.description;
  return d;
}

/** Functions the dump's kernel left out of every group while it grouped others: outside the IOMMU's scope. */
export function scopeOf(imp: LspciImport): { partial: boolean; grouped: ImportedFunction[]; left: ImportedFunction[] } {
  const grouped = imp.functions.filter((x) => x.src.iommuGroup !== null);
  const partial = grouped.length > 0 && grouped.length < imp.functions.length;
  return { partial, grouped, left: partial ? imp.functions.filter((x) => x.src.iommuGroup === null) : [] };
}

export function segmentsOf(imp: LspciImport): number[] {
  return [...new Set(imp.functions.map((x) => x.src.segment))].sort((a, b) => a - b);
}

export function iommuPrefix(imp: LspciImport): string {
  return imp.iommu === "intel-iommu" ? "dmar" : "ivhd";
}

export function driversOf(imp: LspciPci): Map<string, ImportedFunction[]> {
  const drivers = new Map<string, ImportedFunction[]>();
  for (const x of imp.functions) {
    const d = x.src.driver;
    if (d === null) continue;
    const l = drivers.get(d.name);
    if (l === undefined) drivers.set(d.name, [x]);
    else l.push(x);
  }
  return drivers;
}

export function groupsOf(imp: LspciPci): [number, ImportedFunction[]][] {
  const byId = new Map<number, ImportedFunction[]>();
  for (const x of imp.functions) {
    if (x.src.iommuGroup === null) continue;
    const l = byId.get(x.src.iommuGroup);
    if (l === undefined) byId.set(x.src.iommuGroup, [x]);
    else l.push(x);
  }
  return [...byId].sort((a, b) => a[0] - b[0]);
}

/** A `drivers` entry: a driver the dump names ('Kernel driver in use'), matching the functions bound to it. */
export function driverData(name: string, xs: readonly ImportedFunction[]): Record<string, unknown> {
  return { name, bus: "pci", match: xs.map((x) => x.name), ...(DRIVER_MANAGED_DMA.has(name) ? { driver_managed_dma: true } : {}) };
}

/** The event expecting the dump's own groups (and their count when every function has one); null when the dump has no `IOMMU group:` lines. */
export function groupsEvent(imp: LspciPci): Record<string, unknown> | null {
  const groups = groupsOf(imp);
  if (groups.length === 0) return null;
  const grouped = groups.reduce((n, [, xs]) => n + xs.length, 0);
  return {
    note: "the groups the kernel that produced the dump made",
    expect: { groups: groups.map(([id, xs]) => ({ id, devices: xs.map((x) => x.name) })), ...(grouped === imp.functions.length ? { group_count: groups.length } : {}) },
  };
}

/** The scenario, as plain data for validateScenario. */
export function lspciScenarioData(imp: LspciImport): Record<string, unknown> {
  const sc = scopeOf(imp);
  const iommus = segmentsOf(imp).map((s) => ({
    name: `${iommuPrefix(imp)}${s}`,
    driver: imp.iommu,
    scope: sc.partial ? sc.grouped.filter((x) => x.src.segment === s).map((x) => x.name) : "all",
    ...(s === 0 ? {} : { segment: s }),
  }));
  const drivers = [...driversOf(imp)].map(([name, xs]) => driverData(name, xs));
  const event = groupsEvent(imp);
  return {
    name: `lspci ${basename(imp.file)}`,
    boot: { order: "devices-first" },
    iommus,
    devices: imp.functions.map(deviceEntry),
    ...(drivers.length > 0 ? { drivers } : {}),
    ...(event !== null ? { events: [event] } : {}),
  };
}
