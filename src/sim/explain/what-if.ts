/**
 * What-if questions about groups: the machine run again with one change,
 * and the groups compared. A change is the out-of-tree ACS override patch
 * (`acs-override=downstream,multifunction,id:vvvv:dddd`), a function
 * treated as isolated (`id:BB:DD.F`), or a device moved under another port
 * (`move:BB:DD.F=BB:DD.F`). Both runs are of the machine as booted (the
 * scenario's events are left out).
 */
import { parsePciName, PCI_BRIDGE_TYPES, type PciDevType } from "../../base/pci/pci-dev.ts";
import type { AcsOverride } from "../../base/pci/quirks/acs-override.ts";
import type { Scenario } from "../scenario/schema.ts";
import { shortAddress } from "./group-view.ts";

export interface WhatIf {
  /** What was asked, as written. */
  spec: string;
  /** What it means, in a sentence. */
  label: string;
  override: AcsOverride | null;
  move: { device: string; port: string } | null;
}

/** A PCI function's full name from BB:DD.F or SSSS:BB:DD.F, or null. */
export function fullPciName(s: string): string | null {
  const full = /^[0-9a-fA-F]{4}:/.test(s) ? s : `0000:${s}`;
  const p = parsePciName(full);
  return p === null ? null : full.toLowerCase();
}

/** Parses the --what-if values: the changes, or an error line. */
export function parseWhatIf(specs: readonly string[]): WhatIf[] | string {
  const out: WhatIf[] = [];
  for (const spec of specs) {
    if (spec.startsWith("acs-override=")) {
      const o: { downstream: boolean; multifunction: boolean; ids: [number, number][]; functions: Set<string> } = { downstream: false, multifunction: false, ids: [], functions: new Set() };
      for (const part of spec.slice("acs-override=".length).split(",")) {
        const id = /^id:([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$/.exec(part);
        if (part === "downstream") o.downstream = true;
        else if (part === "multifunction") o.multifunction = true;
        else if (id !== null) o.ids.push([parseInt(id[1]!, 16), parseInt(id[2]!, 16)]);
        else return `--what-if ${spec.slice(0, 80)}: '${part.slice(0, 40)}' is not downstream, multifunction or id:vvvv:dddd`;
      }
      out.push({ spec, label: `pcie_acs_override=${spec.slice("acs-override=".length)} (the out-of-tree ACS override patch; mainline Linux has no such option)`, override: o, move: null });
    } else if (spec.startsWith("id:")) {
      const n = fullPciName(spec.slice(3));
      if (n === null) return `--what-if ${spec.slice(0, 80)}: expected id:BB:DD.F or id:SSSS:BB:DD.F`;
      out.push({ spec, label: `${shortAddress(n)} treated as isolated (as if its ACS, or a quirk, isolated it)`, override: { downstream: false, multifunction: false, ids: [], functions: new Set([n]) }, move: null });
    } else if (spec.startsWith("move:")) {
      const m = /^move:([^=]+)=(.+)$/.exec(spec);
      const dev = m === null ? null : fullPciName(m[1]!);
      const port = m === null ? null : fullPciName(m[2]!);
      if (dev === null || port === null) return `--what-if ${spec.slice(0, 80)}: expected move:BB:DD.F=BB:DD.F (a device, and the port to put it under)`;
      out.push({ spec, label: `the device at ${shortAddress(dev)} moved under ${shortAddress(port)}`, override: null, move: { device: dev, port } });
    } else {
      return `--what-if ${spec.slice(0, 80)}: expected acs-override=downstream,multifunction, id:BB:DD.F or move:BB:DD.F=BB:DD.F`;
    }
  }
  return out;
}

/** Merges the overrides of several changes into one. */
export function mergedOverride(ws: readonly WhatIf[]): AcsOverride | undefined {
  const os = ws.map((w) => w.override).filter((o): o is AcsOverride => o !== null);
  if (os.length === 0) return undefined;
  return {
    downstream: os.some((o) => o.downstream),
    multifunction: os.some((o) => o.multifunction),
    ids: os.flatMap((o) => [...o.ids]),
    functions: new Set(os.flatMap((o) => [...o.functions])),
  };
}

/** The scenario with a device (all functions of its slot) moved under a port: the new scenario and the renames, or an error line. */
export function applyMove(s: Scenario, mv: { device: string; port: string }): { scenario: Scenario; renames: Map<string, string> } | string {
  const port = s.devices.find((d) => d.name === mv.port);
  if (port === undefined) return `--what-if move: no PCI function ${mv.port} in the machine`;
  if (!PCI_BRIDGE_TYPES.has((port.type ?? "endpoint") as PciDevType)) return `--what-if move: ${mv.port} is a ${port.type ?? "endpoint"}, not a port`;
  const d = parsePciName(mv.device);
  if (d === null || !s.devices.some((x) => x.name === mv.device)) return `--what-if move: no PCI function ${mv.device} in the machine`;
  const slot = mv.device.slice(0, -2);
  const moving = s.devices.filter((x) => x.bus === "pci" && x.name.startsWith(slot) && parsePciName(x.name) !== null);
  if (moving.some((x) => PCI_BRIDGE_TYPES.has((x.type ?? "endpoint") as PciDevType))) return `--what-if move: ${mv.device} is a bridge; only endpoints move`;
  if (mv.port.startsWith(slot)) return `--what-if move: ${mv.port} is part of the device being moved`;
  const seg = mv.port.slice(0, 4);
  const sibling = s.devices.find((x) => x.parent === mv.port && !moving.includes(x));
  let bus: number;
  if (sibling !== undefined) bus = parsePciName(sibling.name)!.bus;
  else {
    const used = s.devices.filter((x) => x.name.startsWith(seg)).map((x) => parsePciName(x.name)?.bus ?? 0);
    bus = Math.max(0, ...used) + 1;
    if (bus > 255) return `--what-if move: no free bus number under ${mv.port}`;
  }
  const renames = new Map<string, string>();
  const bb = bus.toString(16).padStart(2, "0");
  for (const x of moving) {
    const nn = `${seg}:${bb}:${x.name.slice(-4)}`;
    if (nn !== x.name && s.devices.some((y) => y.name === nn && !moving.includes(y))) return `--what-if move: ${mv.port} already has a device at ${nn} below it (a port's link leads to one device): move that one away first`;
    renames.set(x.name, nn);
  }
  const rn = (n: string) => renames.get(n) ?? n;
  const devices = s.devices.filter((x) => !moving.includes(x));
  const at = devices.findIndex((x) => x.name === mv.port);
  // After the port and the functions already below it, so parents still come first.
  let insert = at + 1;
  while (insert < devices.length && devices[insert]!.parent === mv.port) insert++;
  devices.splice(insert, 0, ...moving.map((x) => ({ ...x, name: rn(x.name), parent: mv.port })));
  const scenario: Scenario = {
    ...s,
    iommus: s.iommus.map((m) => (Array.isArray(m.scope) ? { ...m, scope: m.scope.map(rn) } : m)),
    devices,
    drivers: s.drivers.map((dr) => (Array.isArray(dr.match) ? { ...dr, match: dr.match.map(rn) } : dr)),
    events: [],
  };
  return { scenario, renames };
}
