/**
 * The IVRS table (AMD-Vi; include/acpi/actbl2.h, drivers/iommu/amd/init.c):
 * IVHD blocks of types 10h, 11h and 40h with their device entries (all,
 * select, range start/end, alias select/range, extended select/range,
 * special IOAPIC/HPET, ACPI HID), and IVMD blocks (unity-mapped and
 * exclusion ranges). The kernel uses only the IVHD blocks of one type
 * (get_highest_supported_ivhd_type); the others are kept for the comments.
 */
import { hex, safeNumber, type Blob } from "./fw-bytes.ts";
import { ACPI_HEADER, type AcpiTable } from "./acpi-table.ts";

export interface IvrsAlias {
  offset: number;
  first: number;
  last: number;
  alias: number;
}
export interface IvrsSpecial {
  offset: number;
  variety: "IOAPIC" | "HPET" | string;
  handle: number;
  devid: number;
}
export interface Ivhd {
  offset: number;
  type: number;
  /** The IOMMU's own requester ID. */
  devid: number;
  segment: number;
  base: bigint;
  all: boolean;
  /** Requester-ID ranges the unit translates (selects are one-ID ranges), inclusive. */
  ranges: { offset: number; first: number; last: number; how: string }[];
  aliases: IvrsAlias[];
  specials: IvrsSpecial[];
  hids: { offset: number; hid: string; uid: string; devid: number }[];
}
export interface Ivmd {
  offset: number;
  type: number;
  /** Unity map (bit 0), read (1), write (2), exclusion range (3). */
  flags: number;
  /** The block's PCI segment (bytes 8-9, the kernel's ivmd_header.pci_seg). */
  segment: number;
  /** Requester IDs; for type 20h (all) 0-0xffff here, cut to the segment's last_bdf by the importer. */
  first: number;
  last: number;
  start: number;
  length: number;
}
export interface Ivrs {
  info: number;
  ivhds: Ivhd[];
  ivmds: Ivmd[];
  /** The IVHD type the kernel uses. */
  targetType: number | null;
}

const IVHD_TYPES = new Set([0x10, 0x11, 0x40]);
/** ACPI_IVHD_TYPE_MAX_SUPPORTED */
const IVHD_TYPE_MAX = 0x40;

// @kernel: ivhd_entry_length
function entryLength(b: Blob, o: number, end: number): number {
  const type = b.u8(o, "a device entry's type", end);
  if (type < 0x80) return 4 << (type >> 6);
  if (type === 0xf0) return b.u8(o + 21, "an ACPI HID entry's UID length", end) + 22;
  return b.fail(o, `device entry type ${hex(type, 2)} has no length the kernel knows (types below 0x80, or 0xf0)`);
}

function parseIvhd(b: Blob, o: number, len: number, type: number): Ivhd {
  const end = o + len;
  const h: Ivhd = {
    offset: o,
    type,
    devid: b.u16le(o + 4, "IVHD device ID", end),
    segment: b.u16le(o + 16, "IVHD PCI segment", end),
    base: b.u64le(o + 8, "IVHD base address", end),
    all: false,
    ranges: [],
    aliases: [],
    specials: [],
    hids: [],
  };
  let open: { offset: number; first: number; how: string; alias: number | null } | null = null;
  for (let p = o + (type === 0x10 ? 24 : 40); p < end; ) {
    const n = entryLength(b, p, end);
    b.need(p, n, "a device entry", end);
    const et = b.u8(p, "a device entry's type");
    const devid = b.u16le(p + 1, "a device entry's device ID");
    const startRange = (how: string, alias: number | null) => {
      if (open !== null) b.fail(p, `a range start while the range started at byte ${open.offset} is still open`);
      open = { offset: p, first: devid, how, alias };
    };
    switch (et) {
      case 0x01:
        h.all = true;
        break;
      case 0x02:
        h.ranges.push({ offset: p, first: devid, last: devid, how: "select" });
        break;
      case 0x03:
        startRange("range", null);
        break;
      case 0x04: {
        const r = open as { offset: number; first: number; how: string; alias: number | null } | null;
        if (r === null) b.fail(p, "a range end without a range start");
        if (devid < r.first) b.fail(p + 1, `impossible range: it ends at ${hex(devid, 4)}, before its start ${hex(r.first, 4)} (byte ${r.offset})`);
        h.ranges.push({ offset: r.offset, first: r.first, last: devid, how: r.how });
        if (r.alias !== null) h.aliases.push({ offset: r.offset, first: r.first, last: devid, alias: r.alias });
        open = null;
        break;
      }
      case 0x42: {
        const alias = b.u16le(p + 5, "an alias entry's alias");
        h.ranges.push({ offset: p, first: devid, last: devid, how: "alias select" });
        h.aliases.push({ offset: p, first: devid, last: devid, alias });
        break;
      }
      case 0x43:
        startRange("alias range", b.u16le(p + 5, "an alias range's alias"));
        break;
      case 0x46:
        h.ranges.push({ offset: p, first: devid, last: devid, how: "extended select" });
        break;
      case 0x47:
        startRange("extended range", null);
        break;
      case 0x48: {
        const v = b.u8(p + 7, "a special entry's variety");
        h.specials.push({ offset: p, variety: v === 1 ? "IOAPIC" : v === 2 ? "HPET" : `variety ${v}`, handle: b.u8(p + 4, "a special entry's handle"), devid: b.u16le(p + 5, "a special entry's device ID") });
        break;
      }
      case 0xf0: {
        const uidLen = b.u8(p + 21, "the UID length");
        h.hids.push({ offset: p, hid: b.ascii(p + 4, 8, "the HID"), uid: b.ascii(p + 22, uidLen, "the UID"), devid });
        break;
      }
      default:
        break;
    }
    p += n;
  }
  if (open !== null) b.fail((open as { offset: number }).offset, "a range start without a range end before the IVHD block ends");
  return h;
}

export function parseIvrs(t: AcpiTable): Ivrs {
  const b: Blob = t.blob;
  const r: Ivrs = { info: b.u32le(36, "IVinfo"), ivhds: [], ivmds: [], targetType: null };
  let firstDevid: number | null = null;
  let scanning = true;
  for (let o = ACPI_HEADER + 12; o < t.length; ) {
    const type = b.u8(o, "an IVRS block's type");
    const len = b.u16le(o + 2, "an IVRS block's length");
    if (len < 4) b.fail(o + 2, `an IVRS block of length ${len} (the walk would not advance)`);
    if (o + len > t.length) b.fail(o + 2, `an IVRS block of ${len} bytes runs past the table's end (byte ${t.length})`);
    if (IVHD_TYPES.has(type)) {
      const h = parseIvhd(b, o, len, type);
      r.ivhds.push(h);
      // @kernel: get_highest_supported_ivhd_type (the last type among the blocks of the first IOMMU's device ID)
      firstDevid ??= h.devid;
      if (scanning && h.devid === firstDevid) r.targetType = type;
    } else if (type >= 0x20 && type <= 0x22) {
      b.need(o, 32, "an IVMD block", o + len);
      const devid = b.u16le(o + 4, "IVMD device ID");
      const aux = b.u16le(o + 6, "IVMD auxiliary data");
      const first = type === 0x20 ? 0 : devid;
      const last = type === 0x20 ? 0xffff : type === 0x21 ? devid : aux;
      if (last < first) b.fail(o + 6, `impossible IVMD range: it ends at ${hex(last, 4)}, before its start ${hex(first, 4)}`);
      r.ivmds.push({ offset: o, type, flags: b.u8(o + 1, "IVMD flags"), segment: b.u16le(o + 8, "IVMD PCI segment"), first, last, start: safeNumber(b, b.u64le(o + 16, "IVMD start"), o + 16, "IVMD start"), length: safeNumber(b, b.u64le(o + 24, "IVMD length"), o + 24, "IVMD length") });
    }
    if (type > IVHD_TYPE_MAX) scanning = false;
    o += len;
  }
  return r;
}
