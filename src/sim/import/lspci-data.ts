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

/** The scenario, as plain data for validateScenario. */
export function lspciScenarioData(imp: LspciImport): Record<string, unknown> {
  const sc = scopeOf(imp);
  const iommus = segmentsOf(imp).map((s) => ({
    name: `${iommuPrefix(imp)}${s}`,
    driver: imp.iommu,
    scope: sc.partial ? sc.grouped.filter((x) => x.src.segment === s).map((x) => x.name) : "all",
    ...(s === 0 ? {} : { segment: s }),
  }));
  const drivers = [...driversOf(imp)].map(([name, xs]) => ({ name, bus: "pci", match: xs.map((x) => x.name), ...(DRIVER_MANAGED_DMA.has(name) ? { driver_managed_dma: true } : {}) }));
  const groups = groupsOf(imp);
  const events =
    groups.length === 0
      ? []
      : [
          {
            note: "the groups the kernel that produced the dump made",
            expect: { groups: groups.map(([id, xs]) => ({ id, devices: xs.map((x) => x.name) })), ...(sc.grouped.length === imp.functions.length ? { group_count: groups.length } : {}) },
          },
        ];
  return {
    name: `lspci ${basename(imp.file)}`,
    boot: { order: "devices-first" },
    iommus,
    devices: imp.functions.map(deviceEntry),
    ...(drivers.length > 0 ? { drivers } : {}),
    ...(events.length > 0 ? { events } : {}),
  };
}
