/**
 * The DMAR table (Intel VT-d; include/acpi/actbl1.h): DRHD units with
 * their device scopes and INCLUDE_PCI_ALL, RMRRs (memory firmware keeps
 * using, per device), ATSRs (root ports where ATS is allowed), ANDD names
 * of ACPI namespace devices. The walk follows dmar_walk_remapping_entries:
 * a structure of length 0, or one running past the table, is corrupt.
 */
import { hex, safeNumber, type Blob } from "./fw-bytes.ts";
import { ACPI_HEADER, type AcpiTable } from "./acpi-table.ts";

export const DMAR_SCOPE_TYPES = { 1: "endpoint", 2: "bridge", 3: "ioapic", 4: "hpet", 5: "namespace" } as const;
export type DmarScopeType = (typeof DMAR_SCOPE_TYPES)[keyof typeof DMAR_SCOPE_TYPES];

export interface DmarScope {
  offset: number;
  type: DmarScopeType;
  enumerationId: number;
  bus: number;
  /** (device, function) hops from the start bus. */
  path: [number, number][];
}

export interface DmarDrhd {
  offset: number;
  includeAll: boolean;
  segment: number;
  address: bigint;
  scopes: DmarScope[];
}
export interface DmarRmrr {
  offset: number;
  segment: number;
  base: number;
  end: number;
  scopes: DmarScope[];
}
export interface DmarAtsr {
  offset: number;
  allPorts: boolean;
  segment: number;
  scopes: DmarScope[];
}

export interface Dmar {
  hostAddressWidth: number;
  flags: number;
  drhds: DmarDrhd[];
  rmrrs: DmarRmrr[];
  atsrs: DmarAtsr[];
  /** ACPI namespace device declarations: device number -> object path. */
  andd: Map<number, { offset: number; name: string }>;
  /** Structures read but not modelled: [offset, what]. */
  other: [number, string][];
}

function scopes(b: Blob, from: number, end: number): DmarScope[] {
  const out: DmarScope[] = [];
  for (let o = from; o < end; ) {
    const type = b.u8(o, "a device scope's type", end);
    const len = b.u8(o + 1, "a device scope's length", end);
    if (len < 6 || o + len > end) b.fail(o + 1, `a device scope of length ${len} (at least 6, within its structure's ${end - o} remaining bytes)`);
    const t = DMAR_SCOPE_TYPES[type as keyof typeof DMAR_SCOPE_TYPES];
    if (t === undefined) b.fail(o, `device scope type ${type} is none of endpoint 1, bridge 2, IOAPIC 3, HPET 4, namespace 5`);
    if ((len - 6) % 2 !== 0 || len === 6) b.fail(o + 1, `a device scope of length ${len}: its path is not whole (device, function) pairs`);
    const path: [number, number][] = [];
    for (let p = o + 6; p < o + len; p += 2) {
      const dev = b.u8(p, "a path's device");
      const fn = b.u8(p + 1, "a path's function");
      if (dev > 31 || fn > 7) b.fail(p, `impossible path element ${hex(dev, 2)}.${fn} (device <= 0x1f, function <= 7)`);
      path.push([dev, fn]);
    }
    out.push({ offset: o, type: t, enumerationId: b.u8(o + 4, "the enumeration ID"), bus: b.u8(o + 5, "the start bus"), path });
    o += len;
  }
  return out;
}

// @kernel: dmar_walk_remapping_entries
export function parseDmar(t: AcpiTable): Dmar {
  const b: Blob = t.blob;
  const d: Dmar = { hostAddressWidth: b.u8(36, "the host address width") + 1, flags: b.u8(37, "the flags"), drhds: [], rmrrs: [], atsrs: [], andd: new Map(), other: [] };
  for (let o = ACPI_HEADER + 12; o < t.length; ) {
    const type = b.u16le(o, "a remapping structure's type");
    const len = b.u16le(o + 2, "a remapping structure's length");
    if (len === 0) b.fail(o + 2, "a remapping structure of length 0 (the kernel stops parsing DMAR there: VT-d stays off)");
    if (o + len > t.length) b.fail(o + 2, `a remapping structure of ${len} bytes runs past the table's end (byte ${t.length})`);
    const end = o + len;
    switch (type) {
      case 0: {
        const flags = b.u8(o + 4, "DRHD flags", end);
        d.drhds.push({ offset: o, includeAll: (flags & 1) !== 0, segment: b.u16le(o + 6, "DRHD segment", end), address: b.u64le(o + 8, "DRHD register base", end), scopes: scopes(b, o + 16, end) });
        break;
      }
      case 1: {
        const base = safeNumber(b, b.u64le(o + 8, "RMRR base", end), o + 8, "RMRR base");
        const last = safeNumber(b, b.u64le(o + 16, "RMRR end", end), o + 16, "RMRR end");
        if (last < base) b.fail(o + 16, `RMRR ends at ${hex(last)}, before its base ${hex(base)}`);
        d.rmrrs.push({ offset: o, segment: b.u16le(o + 6, "RMRR segment", end), base, end: last, scopes: scopes(b, o + 24, end) });
        break;
      }
      case 2: {
        const flags = b.u8(o + 4, "ATSR flags", end);
        d.atsrs.push({ offset: o, allPorts: (flags & 1) !== 0, segment: b.u16le(o + 6, "ATSR segment", end), scopes: scopes(b, o + 8, end) });
        break;
      }
      case 4: {
        const num = b.u8(o + 7, "ANDD device number", end);
        d.andd.set(num, { offset: o, name: b.cstring(o + 8, "ANDD object name", end).text });
        break;
      }
      default:
        d.other.push([o, type === 3 ? "RHSA (NUMA proximity of a unit)" : type === 5 ? "SATC (SoC-integrated ATS)" : type === 6 ? "SIDP (SoC-integrated devices)" : `type ${type}`]);
    }
    o = end;
  }
  return d;
}
