/** The IVRS table (AMD-Vi) into the scenario: IVHDs as IOMMUs, their requester-ID scopes and aliases, IVMDs as direct regions. */
import { hex } from "./fw-bytes.ts";
import { ridName } from "./acpi-table.ts";
import { parseIvrs, type Ivhd, type Ivrs } from "./acpi-ivrs.ts";
import type { PciTopology } from "./acpi-pci.ts";
import { where, type Builder, type Found } from "./acpi-import-common.ts";

/**
 * Which used IVHD serves each PCI function of the dump, and the IVRS alias
 * of each: entries write the requester-ID lookup and the alias table in
 * table order, so a later block's entry wins.
 */
// @kernel: init_iommu_from_acpi
function ivrsOwners(pci: PciTopology, used: readonly Ivhd[]): { owner: Map<string, number>; alias: Map<string, { to: number; ivhd: number; offset: number }> } {
  const owner = new Map<string, number>();
  const alias = new Map<string, { to: number; ivhd: number; offset: number }>();
  used.forEach((h, i) => {
    for (const x of pci.functions) {
      if (x.src.segment !== h.segment) continue;
      const rid = pci.rid(x);
      // set_dev_entry_from_acpi -> set_iommu_for_device: ALL, selects, ranges, and an alias entry's target
      if (h.all || h.ranges.some((r) => rid >= r.first && rid <= r.last) || h.aliases.some((a) => a.alias === rid)) owner.set(x.name, i);
      for (const a of h.aliases) if (rid >= a.first && rid <= a.last) alias.set(x.name, { to: a.alias, ivhd: i, offset: a.offset });
    }
  });
  return { owner, alias };
}

/** Requester IDs first..last as names: one name when they are the same. */
const ridRange = (seg: number, first: number, last: number) => (first === last ? ridName(seg, first) : `${ridName(seg, first)}-${ridName(seg, last)}`);

const PAGE = 4096;
const pageAlign = (x: number) => Math.ceil(x / PAGE) * PAGE;

/** A segment's highest requester ID the used IVHDs name: ALL is 0xffff; selects, range ends and alias entries count; none is 0. */
// @kernel: find_last_devid_acpi
function lastBdf(used: readonly Ivhd[], segment: number): number {
  let last = 0;
  for (const h of used) {
    if (h.segment !== segment) continue;
    if (h.all) return 0xffff;
    for (const r of h.ranges) last = Math.max(last, r.last);
    for (const a of h.aliases) last = Math.max(last, a.last);
  }
  return last;
}
export function importIvrs(bld: Builder, f: Found): void {
  const r: Ivrs = parseIvrs(f.table);
  const used = r.ivhds.filter((h) => h.type === r.targetType);
  const ignored = r.ivhds.filter((h) => h.type !== r.targetType);
  const perSegment = new Map<number, number>();
  for (const h of used) perSegment.set(h.segment, (perSegment.get(h.segment) ?? 0) + 1);
  const pci = bld.pci;
  const own = pci === null ? null : ivrsOwners(pci, used);
  used.forEach((h, i) => {
    const alone = perSegment.get(h.segment) === 1;
    const comment = [`IVHD type ${hex(h.type, 2)} (${where(f, h.offset)}): the IOMMU at ${ridName(h.segment, h.devid)}, registers at ${hex(h.base)}, segment ${h.segment}`];
    const covers = h.all ? "every requester ID (ALL)" : h.ranges.map((x) => ridRange(h.segment, x.first, x.last)).join(", ");
    comment.push(`serves ${covers || "no requester ID"}`);
    let scope: string | string[];
    if (pci !== null && own !== null) {
      const mine = pci.functions.filter((x) => own.owner.get(x.name) === i).map((x) => x.name);
      const segFns = pci.functions.filter((x) => x.src.segment === h.segment);
      scope = mine.length === segFns.length && mine.length > 0 ? "all" : mine;
      comment.push(`${mine.length} of the ${segFns.length} functions of segment ${h.segment} in ${pci.file} are its${scope === "all" ? ": scope all" : ""}`);
    } else {
      if (!h.all && !alone) {
        bld.warn(f, h.offset, `IVHD ${i} shares segment ${h.segment} with another IOMMU and serves requester-ID ranges: the scope lists no devices (the table gives no PCI topology); give an lspci dump of the machine with --lspci`);
      } else if (!h.all) comment.push(`the only IOMMU of segment ${h.segment}: scope all`);
      scope = h.all || alone ? "all" : [];
    }
    for (const a of h.aliases) comment.push(`alias ${ridRange(h.segment, a.first, a.last)} -> ${ridName(h.segment, a.alias)} (byte ${a.offset})${(a.alias >> 8) === (a.first >> 8) ? ": on the same bus, a PCI DMA alias (setup_aliases)" : ""}`);
    for (const s of h.specials) comment.push(`special: ${s.variety} ${s.handle} at ${ridName(h.segment, s.devid)} (byte ${s.offset}): interrupt remapping, not modelled`);
    for (const x of h.hids) comment.push(`ACPI HID ${x.hid}${x.uid === "" ? "" : ` UID ${x.uid}`} as ${ridName(h.segment, x.devid)} (byte ${x.offset}): not modelled (AMD-Vi serves PCI devices here)`);
    const data: Record<string, unknown> = { name: `ivhd${i}`, driver: "amd-iommu", scope };
    if (h.segment !== 0) data.segment = h.segment;
    bld.iommus.push({ data, comment });
  });
  if (pci !== null && own !== null) ivrsDevices(bld, f, pci, own, used);
  if (ignored.length > 0) bld.trailer.push(`IVHD blocks of type${ignored.length === 1 ? "" : "s"} ${[...new Set(ignored.map((h) => hex(h.type, 2)))].join(", ")} at ${ignored.map((h) => where(f, h.offset)).join(", ")}: the kernel uses type ${hex(r.targetType ?? 0, 2)} (get_highest_supported_ivhd_type)`);
  for (const m of r.ivmds) {
    const kind = (m.flags & 8) !== 0 ? "exclusion range (reserved)" : (m.flags & 1) !== 0 ? "unity map (direct)" : "no unity or exclusion flag";
    // @kernel: init_unity_map_range (type 20h covers the segment's requester IDs up to its last_bdf; start and length page-aligned up)
    const first = m.type === 0x20 ? 0 : m.first;
    const last = m.type === 0x20 ? lastBdf(used, m.segment) : m.last;
    const start = pageAlign(m.start);
    const length = pageAlign(m.length);
    const aligned = start !== m.start || length !== m.length ? ` (PAGE_ALIGN: ${hex(start)}+${hex(length)})` : "";
    const who = m.type === 0x20 ? `every device of segment ${m.segment} (up to its last_bdf ${hex(last, 4)})` : ridRange(m.segment, first, last);
    if (pci === null) {
      bld.trailer.push(`IVMD type ${hex(m.type, 2)} (${where(f, m.offset)}): ${hex(m.start)}+${hex(m.length)}${aligned}, ${kind}, for ${who}: becomes a reserved region of those devices once the scenario has them (amd_iommu_get_resv_regions)`);
      continue;
    }
    // @kernel: init_memory_definitions (unity maps and exclusion ranges alike: init_unity_map_range treats an exclusion range as a r/w unity map)
    if ((m.flags & 9) === 0) {
      bld.trailer.push(`IVMD type ${hex(m.type, 2)} (${where(f, m.offset)}): neither a unity map nor an exclusion range: the kernel skips it`);
      continue;
    }
    // The block's own segment: the unity map joins that segment's list (get_pci_segment), which only its devices read.
    const hit = pci.functions.filter((x) => x.src.segment === m.segment && pci.rid(x) >= first && pci.rid(x) <= last);
    for (const x of hit) {
      const e = bld.devByName.get(x.name)!;
      bld.reserved(e, { start, length, type: "direct" });
      e.comment.push(`IVMD type ${hex(m.type, 2)} (${where(f, m.offset)}), segment ${m.segment}: ${hex(m.start)}+${hex(m.length)}${aligned}, ${(m.flags & 8) !== 0 ? "an exclusion range, which init_unity_map_range unity-maps read/write" : "a unity map"}: a direct region (amd_iommu_get_resv_regions)`);
    }
    if (hit.length === 0) bld.trailer.push(`IVMD type ${hex(m.type, 2)} (${where(f, m.offset)}): ${hex(m.start)}+${hex(m.length)}${aligned}, ${kind}, for ${who}: no function of ${pci.file} has those requester IDs`);
  }
}

/** With the dump's functions: the IVHD of each, and IVRS aliases as PCI DMA aliases. */
function ivrsDevices(bld: Builder, f: Found, pci: PciTopology, own: ReturnType<typeof ivrsOwners>, used: readonly Ivhd[]): void {
  for (const x of pci.functions) {
    const e = bld.devByName.get(x.name)!;
    const i = own.owner.get(x.name);
    e.comment.push(i === undefined ? `no IVHD entry names requester ID ${hex(pci.rid(x), 4)}: no IOMMU (rlookup_amd_iommu finds none)` : `served by ivhd${i} (${where(f, used[i]!.offset)})`);
    const a = own.alias.get(x.name);
    if (a === undefined || a.to === pci.rid(x)) continue;
    // @kernel: setup_aliases (an IVRS alias on the same bus becomes a PCI DMA alias; another bus's only copies the device table entry)
    const to = ridName(x.src.segment, a.to);
    if (a.to >> 8 === x.src.bus) {
      const list = (e.data["dma-alias"] ??= []) as string[];
      const devfn = `${((a.to >> 3) & 0x1f).toString(16).padStart(2, "0")}.${a.to & 7}`;
      if (!list.includes(devfn)) list.push(devfn);
      e.comment.push(`IVRS alias -> ${to} (byte ${a.offset}): same bus, a PCI DMA alias (setup_aliases)`);
    } else e.comment.push(`IVRS alias -> ${to} (byte ${a.offset}): another bus, not a PCI DMA alias (setup_aliases adds same-bus ones only); grouping is unchanged`);
  }
}
