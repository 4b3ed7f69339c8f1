/**
 * A directory of ACPI tables (or one table file) as a scenario. Tables are
 * recognised by their signature: DMAR (VT-d), IVRS (AMD-Vi), IORT (Arm
 * SMMUs); other tables are skipped. ACPI tables name IOMMUs and the
 * requester IDs each serves, not the PCI topology: the devices the
 * scenario gets are those the tables name as such (DMAR device scopes of
 * one hop, namespace devices; IORT named components and root complexes),
 * or, given an lspci dump of the same machine, its PCI functions, each
 * served by the DRHD or IVHD whose scope covers it.
 * The IORT's links are written as their DT equivalents (`iommus`,
 * `iommu-map`): iort_iommu_configure_id makes the same fwspec, and the
 * model has no IORT path; fwnodes are `IORT/<node>@<offset>`.
 */
import { basename } from "node:path";
import { FirmwareError, hex } from "./fw-bytes.ts";
import { UniqueNames, type FwEntry, type FwImport } from "./fw-scenario.ts";
import { pciName, readAcpiTable, ridName, type AcpiTable } from "./acpi-table.ts";
import { parseDmar, type Dmar, type DmarScope } from "./acpi-dmar.ts";
import { parseIvrs, type Ivhd, type Ivrs } from "./acpi-ivrs.ts";
import { parseIort, type Iort, type IortMapping, type IortNode } from "./acpi-iort.ts";
import { PciTopology } from "./acpi-pci.ts";
import { iortNodeMapId } from "./iort-map.ts";
import { deviceEntry, driversOf, groupsOf } from "./lspci-data.ts";
import { DRIVER_MANAGED_DMA, type LspciPci } from "./lspci-scenario.ts";

export const ACPI_SIGNATURES = ["DMAR", "IVRS", "IORT"] as const;
/** File names the signature should match when they name one: dmar.dat, DMAR, dmar2.dat, iort.aml, ... */
const NAMED = /^(dmar|ivrs|iort)\d*(\.(dat|aml|bin))?$/i;

interface Found {
  file: string;
  table: AcpiTable;
}

/** A file of the directory the tables were read from (the command line reads them: this layer does no I/O). */
export interface AcpiFile {
  file: string;
  bytes: Uint8Array;
}

/** The tables among `files` (DIR's, or the one file), by signature. */
function findTables(path: string, files: readonly AcpiFile[]): { found: Found[]; skipped: string[] } {
  const found: Found[] = [];
  const skipped: string[] = [];
  for (const { file: f, bytes } of files) {
    const sig = bytes.length >= 4 ? String.fromCharCode(...bytes.subarray(0, 4)) : "";
    const named = NAMED.exec(basename(f));
    if (!(ACPI_SIGNATURES as readonly string[]).includes(sig)) {
      if (named !== null) throw new FirmwareError(f, 0, `named like a ${named[1]!.toUpperCase()} table, but its signature is '${sig.replace(/[^\x20-\x7e]/g, "?")}'`);
      skipped.push(basename(f));
      continue;
    }
    if (named !== null && named[1]!.toUpperCase() !== sig) throw new FirmwareError(f, 0, `named like a ${named[1]!.toUpperCase()} table, but its signature is ${sig}`);
    found.push({ file: f, table: readAcpiTable(bytes, f) });
  }
  if (found.length === 0) throw new FirmwareError(path, 0, `no DMAR, IVRS or IORT table${files.length > 1 ? ` among its ${files.length} files` : ""} (acpidump -b or acpixtract -a write them as dmar.dat, ivrs.dat, iort.dat)`);
  // @kernel: acpi_get_table (one table per signature, the first instance)
  for (const s of ACPI_SIGNATURES) {
    const same = found.filter((x) => x.table.signature === s);
    if (same.length > 1) throw new FirmwareError(same[1]!.file, 0, `a second ${s} table (also ${same[0]!.file}); the kernel uses one`);
  }
  return { found, skipped };
}

const where = (f: Found, off: number) => `${basename(f.file)} byte ${off}`;

class Builder {
  constructor(readonly pci: PciTopology | null) {
    if (pci === null) return;
    for (const x of pci.functions) {
      const { name, ...data } = deviceEntry(x);
      this.device(name as string, data, `${name as string}: ${pci.file}:${x.src.line}`);
    }
  }

  readonly iommus: FwEntry[] = [];
  readonly devices: FwEntry[] = [];
  readonly devByName = new Map<string, FwEntry>();
  readonly names = new UniqueNames();
  readonly warnings: string[] = [];
  readonly trailer: string[] = [];

  /** The device of that name, made (with the comment) the first time; later references add `again`. */
  device(name: string, data: Record<string, unknown>, comment: string, again?: string): FwEntry {
    let e = this.devByName.get(name);
    if (e === undefined) {
      e = { data: { name, ...data }, comment: [comment] };
      this.devByName.set(name, e);
      this.devices.push(e);
    } else if (again !== undefined) e.comment.push(again);
    return e;
  }

  reserved(e: FwEntry, r: { start: number; length: number; type: string }): void {
    const list = (e.data["reserved-regions"] ??= []) as unknown[];
    list.push(r);
  }
}

/** The device a DMAR scope entry names, or why it cannot be placed. */
function dmarScopeDevice(bld: Builder, dmar: Dmar, f: Found, segment: number, s: DmarScope, what: string): FwEntry | null {
  if (s.type === "ioapic" || s.type === "hpet") {
    bld.trailer.push(`${what}: ${s.type.toUpperCase()} ${s.enumerationId} at ${pciName(segment, s.bus, ...s.path[0]!)} (${where(f, s.offset)}): interrupt remapping, not modelled`);
    return null;
  }
  if (s.type === "namespace") {
    const d = dmar.andd.get(s.enumerationId);
    if (d === undefined) {
      bld.warnings.push(`${f.file}: byte ${s.offset}: ${what} names ACPI namespace device ${s.enumerationId}, which no ANDD structure declares: skipped`);
      return null;
    }
    return bld.device(d.name, { bus: "platform", fwnode: d.name }, `${d.name}: ACPI namespace device ${s.enumerationId} (ANDD at ${where(f, d.offset)}), in ${what}'s scope (${where(f, s.offset)})`, `also in ${what}'s scope (${where(f, s.offset)})`);
  }
  const pathText = s.path.map(([d, fn]) => `${hex(d, 2)}.${fn}`).join(" ");
  if (bld.pci !== null) {
    const r = bld.pci.dmarPath(segment, s.bus, s.path);
    if (r === null) {
      bld.warnings.push(`${f.file}: byte ${s.offset}: ${what} names a PCI ${s.type} at bus ${hex(s.bus, 2)} path ${pathText}, which ${bld.pci.file} does not have: skipped`);
      return null;
    }
    // @kernel: dmar_insert_dev_scope (an endpoint entry naming a bridge, or a bridge entry naming a function without a subordinate bus, is refused)
    if ((s.type === "bridge") !== bld.pci.isBridge(r.fn)) {
      bld.warnings.push(`${f.file}: byte ${s.offset}: ${what} names ${r.fn.name} as a PCI ${s.type}, but ${bld.pci.file} says it is ${bld.pci.isBridge(r.fn) ? "a bridge" : "not a bridge"}: the kernel refuses the entry (device scope type does not match)`);
      return null;
    }
    const e = bld.devByName.get(r.fn.name)!;
    e.comment.push(`in ${what}'s scope as a PCI ${s.type} (${where(f, s.offset)}, bus ${hex(s.bus, 2)} path ${pathText})${r.fwBug ? ": matched at its own bus:dev.fn, not from a root bus (dmar_match_pci_path's workaround for broken entries)" : ""}`);
    return e;
  }
  if (s.path.length > 1) {
    bld.warnings.push(`${f.file}: byte ${s.offset}: ${what} names a PCI ${s.type} ${s.path.length} hops below bus ${hex(s.bus, 2)} (path ${pathText}); the buses behind bridges are in config space, not in the table (give an lspci dump with --lspci): skipped`);
    return null;
  }
  const [dev, fn] = s.path[0]!;
  const name = pciName(segment, s.bus, dev, fn);
  const type = s.type === "bridge" ? "root-port" : "rc-endpoint";
  return bld.device(name, { bus: "pci", type }, `${name}: in ${what}'s scope as a PCI ${s.type} (${where(f, s.offset)}); placed on root bus ${hex(s.bus, 2)} as a ${type} (the table gives no PCI topology)`, `also in ${what}'s scope (${where(f, s.offset)})`);
}

function importDmar(bld: Builder, f: Found): void {
  const d = parseDmar(f.table);
  d.drhds.forEach((h, i) => {
    const names: string[] = [];
    for (const s of h.scopes) {
      const e = dmarScopeDevice(bld, d, f, h.segment, s, `DRHD ${i}`);
      if (e !== null) names.push(e.data.name as string);
      if (h.includeAll && s.type === "namespace") bld.warnings.push(`${f.file}: byte ${s.offset}: DRHD ${i} is INCLUDE_PCI_ALL and names an ACPI namespace device: the model's INCLUDE_PCI_ALL scope serves PCI devices only, so it gets no IOMMU`);
    }
    const data: Record<string, unknown> = { name: `dmar${i}`, driver: "intel-iommu", scope: h.includeAll ? "all" : names };
    if (h.segment !== 0) data.segment = h.segment;
    const comment = [`DRHD ${i} (${where(f, h.offset)}): registers at ${hex(h.address)}, segment ${h.segment}${h.includeAll ? ", INCLUDE_PCI_ALL" : `, ${h.scopes.length} scope entr${h.scopes.length === 1 ? "y" : "ies"}`}`];
    if (h.includeAll && h.scopes.length > 0) comment.push(`its ${h.scopes.length} scope entries are IOAPIC/HPET ones (interrupt remapping)`);
    bld.iommus.push({ data, comment });
  });
  d.rmrrs.forEach((r, i) => {
    for (const s of r.scopes) {
      const e = dmarScopeDevice(bld, d, f, r.segment, s, `RMRR ${i}`);
      if (e === null) continue;
      bld.reserved(e, { start: r.base, length: r.end - r.base + 1, type: "direct" });
      e.comment.push(`RMRR ${i} (${where(f, r.offset)}): ${hex(r.base)}-${hex(r.end)}, direct (direct-relaxable if it is a USB or graphics device: device_rmrr_is_relaxable; the table does not say)`);
    }
  });
  d.atsrs.forEach((a, i) => {
    bld.trailer.push(`ATSR ${i} (${where(f, a.offset)}): segment ${a.segment}, ATS allowed below ${a.allPorts ? "every root port (ALL_PORTS)" : a.scopes.map((s) => pciName(a.segment, s.bus, ...s.path[0]!)).join(", ")}: ATS is not modelled`);
  });
  for (const [o, what] of d.other) bld.trailer.push(`${what} (${where(f, o)}): not modelled`);
}

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

function importIvrs(bld: Builder, f: Found): void {
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
    const covers = h.all ? "every requester ID (ALL)" : h.ranges.map((x) => (x.first === x.last ? ridName(h.segment, x.first) : `${ridName(h.segment, x.first)}-${ridName(h.segment, x.last)}`)).join(", ");
    comment.push(`serves ${covers || "no requester ID"}`);
    let scope: string | string[];
    if (pci !== null && own !== null) {
      const mine = pci.functions.filter((x) => own.owner.get(x.name) === i).map((x) => x.name);
      const segFns = pci.functions.filter((x) => x.src.segment === h.segment);
      scope = mine.length === segFns.length && mine.length > 0 ? "all" : mine;
      comment.push(`${mine.length} of the ${segFns.length} functions of segment ${h.segment} in ${pci.file} are its${scope === "all" ? ": scope all" : ""}`);
    } else {
      if (!h.all && !alone) {
        bld.warnings.push(`${f.file}: byte ${h.offset}: IVHD ${i} shares segment ${h.segment} with another IOMMU and serves requester-ID ranges: the scope lists no devices (the table gives no PCI topology); give an lspci dump of the machine with --lspci`);
      } else if (!h.all) comment.push(`the only IOMMU of segment ${h.segment}: scope all`);
      scope = h.all || alone ? "all" : [];
    }
    for (const a of h.aliases) comment.push(`alias ${ridName(h.segment, a.first)}${a.first === a.last ? "" : `-${ridName(h.segment, a.last)}`} -> ${ridName(h.segment, a.alias)} (byte ${a.offset})${(a.alias >> 8) === (a.first >> 8) ? ": on the same bus, a PCI DMA alias (setup_aliases)" : ""}`);
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
    const who = `${m.type === 0x20 ? `every device of segment ${m.segment} (up to its last_bdf ${hex(last, 4)})` : `${ridName(m.segment, first)}${first === last ? "" : `-${ridName(m.segment, last)}`}`}`;
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

/**
 * With the dump: a root complex's ID mappings evaluated the kernel's way
 * for every requester ID of every bus the dump's segment uses (each
 * function's bus, each bridge's secondary bus: where DMA aliases live),
 * written as iommu-map runs. An iommu-map lookup of any such RID then
 * gives the SMMU and StreamID iort_node_map_id gives: single mappings,
 * the off-by-one overlap and RIDs that reach no SMMU included.
 */
// @kernel: iort_pci_iommu_init
function rcMapFromDump(bld: Builder, f: Found, t: Iort, n: IortNode, smmus: ReadonlyMap<number, string>, map: (string | number)[][], notes: string[], pciSids: Map<string, { smmu: number; sid: number }[]>): void {
  const pci = bld.pci!;
  const seg = n.segment!;
  const fns = pci.functions.filter((x) => x.src.segment === seg);
  const buses = new Set<number>();
  for (const x of fns) {
    buses.add(x.src.bus);
    if (x.src.busLine !== null) buses.add(x.src.busLine.secondary);
  }
  const lookup = (rid: number): { smmu: string; sid: number; node: IortNode } | { smmu: null; node: IortNode | null } => {
    const r = iortNodeMapId(t, n, rid);
    if (r.smmu === null) return { smmu: null, node: null };
    const name = smmus.get(r.smmu.offset);
    return name === undefined ? { smmu: null, node: r.smmu } : { smmu: name, sid: r.id, node: r.smmu };
  };
  let run: [number, string, number, number] | null = null;
  for (const b of [...buses].sort((x, y) => x - y)) {
    for (let devfn = 0; devfn < 256; devfn++) {
      const rid = (b << 8) | devfn;
      const r = lookup(rid);
      if (r.smmu !== null && run !== null && run[1] === r.smmu && run[0] + run[3] === rid && run[2] + run[3] === r.sid) {
        run[3]++;
        continue;
      }
      if (run !== null) map.push(run);
      run = r.smmu === null ? null : [rid, r.smmu, r.sid, 1];
    }
  }
  if (run !== null) map.push(run);
  notes.push(`its ID mappings evaluated (iort_node_map_id) for every requester ID of bus${buses.size === 1 ? "" : "es"} ${[...buses].sort((x, y) => x - y).map((b) => hex(b, 2)).join(", ")} of ${pci.file}: ${map.length} iommu-map run${map.length === 1 ? "" : "s"}`);
  for (const x of fns) {
    const e = bld.devByName.get(x.name)!;
    const rid = pci.rid(x);
    const r = lookup(rid);
    if (r.smmu !== null) {
      e.comment.push(`IORT: RID ${hex(rid, 4)} at the root complex (${where(f, n.offset)}) -> ${r.smmu} StreamID ${hex(r.sid)} (iort_node_map_id)`);
      pciSids.set(x.name, [{ smmu: r.node!.offset, sid: r.sid }]);
    } else e.comment.push(`IORT: RID ${hex(rid, 4)} at the root complex (${where(f, n.offset)}) reaches ${r.node === null ? "no SMMU" : `the SMMU node at ${hex(r.node.offset)}, not imported`}: no IOMMU (iort_iommu_xlate: ENODEV)`);
  }
}

const IORT_SMMU_MODELS: Record<number, string> = { 0: "SMMUv1", 1: "SMMUv2", 2: "CoreLink MMU-400", 3: "CoreLink MMU-500", 4: "CoreLink MMU-401", 5: "Cavium ThunderX SMMUv2" };

function importIort(bld: Builder, f: Found): void {
  const t: Iort = parseIort(f.table);
  const fwnode = (n: IortNode) => `IORT/${n.type}@${hex(n.offset)}`;
  const smmus = new Map<number, string>();
  for (const n of t.list) {
    if (n.type !== "smmu" && n.type !== "smmu-v3") continue;
    const base = `0x${n.base!.toString(16).padStart(16, "0")}`;
    if (n.type === "smmu" && IORT_SMMU_MODELS[n.model!] === undefined) {
      bld.warnings.push(`${f.file}: byte ${n.offset}: SMMU model ${n.model}, which arm-smmu's acpi_smmu_get_data does not know: not imported; its clients are imported without an IOMMU`);
      continue;
    }
    const name = bld.names.take(`${n.type === "smmu-v3" ? "smmu3" : "smmu"}.${base}`, fwnode(n));
    smmus.set(n.offset, name);
    bld.iommus.push({
      data: { name, driver: n.type === "smmu-v3" ? "arm-smmu-v3" : "arm-smmu", fwnode: fwnode(n), "#iommu-cells": 1 },
      comment: [`IORT ${n.type === "smmu-v3" ? `SMMUv3 (model ${n.model})` : IORT_SMMU_MODELS[n.model!]} node (${where(f, n.offset)}) at ${base}`],
    });
  }
  const len = (m: IortMapping) => m.idCount + 1;
  const target = (m: IortMapping) => t.nodes.get(m.outputRef)!;
  const ncSids = new Map<string, { smmu: number; sid: number }[]>();
  const pciSids = new Map<string, { smmu: number; sid: number }[]>();
  for (const n of t.list) {
    if (n.type === "named-component") {
      // @kernel: iort_nc_iommu_map (each single mapping in turn, stopping at the first that reaches no SMMU)
      const entries: (string | number)[][] = [];
      const sids: { smmu: number; sid: number }[] = [];
      const notes: string[] = [];
      for (const m of n.mappings) {
        const to = target(m);
        if (!m.single) {
          notes.push(`mapping at byte ${m.offset} is not a single mapping: iort_nc_iommu_map stops there`);
          break;
        }
        const smmu = smmus.get(to.offset);
        if (smmu === undefined) {
          notes.push(`mapping at byte ${m.offset} leads to the ${to.type} node at ${hex(to.offset)}${to.type === "smmu" ? " (not imported)" : ""}: no IOMMU`);
          break;
        }
        entries.push([smmu, m.outputBase]);
        sids.push({ smmu: to.offset, sid: m.outputBase });
      }
      const name = n.name!;
      // @kernel: iort_match_node_callback (a device's node is the first whose path, or segment, is its own)
      if (name === "" || bld.devByName.has(name)) {
        bld.warnings.push(`${f.file}: byte ${n.offset}: a named component ${name === "" ? "without a name" : `named ${name} like an earlier node`}: ${name === "" ? "no device matches it" : "the kernel uses the first"}; skipped`);
        continue;
      }
      const e = bld.device(name, { bus: "platform", fwnode: fwnode(n) }, `IORT named component ${name} (${where(f, n.offset)})`);
      if (entries.length > 0) e.data.iommus = entries;
      e.comment.push(...notes);
      ncSids.set(name, sids);
    } else if (n.type === "root-complex") {
      const dup = `pci${n.segment!.toString(16).padStart(4, "0")}`;
      if (bld.devByName.has(dup)) {
        bld.warnings.push(`${f.file}: byte ${n.offset}: a second root complex for PCI segment ${n.segment}: the kernel uses the first; skipped`);
        continue;
      }
      const map: (string | number)[][] = [];
      const notes: string[] = [];
      if (bld.pci !== null) {
        rcMapFromDump(bld, f, t, n, smmus, map, notes, pciSids);
      } else for (const m of n.mappings) {
        const to = target(m);
        const smmu = smmus.get(to.offset);
        if (m.single) {
          notes.push(`single mapping at byte ${m.offset}: every RID to ID ${hex(m.outputBase)}, which iommu-map cannot say: skipped`);
          bld.warnings.push(`${f.file}: byte ${m.offset}: a root complex's single mapping (every RID to one StreamID) is not imported`);
        } else if (smmu === undefined) notes.push(`RIDs ${hex(m.inputBase)}-${hex(m.inputBase + m.idCount)} go to the ${to.type} node at ${hex(to.offset)}: no IOMMU`);
        else {
          let l = len(m);
          // @kernel: iort_id_map (a match at the end of a range yields to a range that starts there: the off-by-one firmware)
          if (n.mappings.some((o) => o !== m && o.inputBase === m.inputBase + m.idCount) && l > 1) {
            l -= 1;
            notes.push(`RIDs ${hex(m.inputBase)}-${hex(m.inputBase + m.idCount)} overlap the next range by one: the last yields to it (iort_id_map)`);
          }
          map.push([m.inputBase, smmu, m.outputBase, l]);
        }
      }
      const seg = n.segment!;
      const name = `pci${seg.toString(16).padStart(4, "0")}`;
      const h: Record<string, unknown> = { segment: seg };
      if (map.length > 0) h["iommu-map"] = map;
      const e = bld.device(name, { bus: "platform", fwnode: fwnode(n), "pci-host": h }, `IORT root complex, PCI segment ${seg} (${where(f, n.offset)})`);
      e.comment.push(...notes);
    }
  }
  for (const n of t.list) {
    if (n.type !== "rmr") continue;
    // @kernel: iort_get_rmrs (remapping permitted: direct-relaxable, else direct)
    const type = (n.rmrFlags! & 1) !== 0 ? "direct-relaxable" : "direct";
    for (const m of n.mappings) {
      const smmu = m.outputRef;
      const first = m.outputBase;
      const last = m.outputBase + m.idCount;
      const hit = [...ncSids, ...pciSids].filter(([, s]) => s.some((x) => x.smmu === smmu && x.sid >= first && x.sid <= last)).map(([nm]) => nm);
      for (const nm of hit) {
        const e = bld.devByName.get(nm)!;
        for (const r of n.rmrs!) bld.reserved(e, { start: r.base, length: r.length, type });
        e.comment.push(`RMR node (${where(f, n.offset)}): ${n.rmrs!.length} range(s), ${type}, for StreamIDs ${hex(first)}-${hex(last)}${pciSids.has(nm) ? " (matched on the StreamID of the function's own requester ID)" : ""}`);
      }
      if (hit.length === 0) {
        bld.trailer.push(`RMR node (${where(f, n.offset)}): ${n.rmrs!.map((r) => `${hex(r.base)}+${hex(r.length)}`).join(", ")} ${type} for StreamIDs ${hex(first)}-${hex(last)} of ${smmus.get(smmu) ?? `node ${hex(smmu)}`}: no device of the scenario has them${bld.pci === null ? " (PCI functions would, once added: give the dump with --lspci)" : ""}`);
      }
    }
  }
  if (bld.pci !== null) {
    // @kernel: iort_iommu_configure_id (a PCI device's root complex is found by segment: iort_scan_node; none is ENODEV)
    const rcSegs = new Set(t.list.filter((n) => n.type === "root-complex").map((n) => n.segment!));
    for (const x of bld.pci.functions) {
      if (!rcSegs.has(x.src.segment)) bld.devByName.get(x.name)!.comment.push(`IORT: no root-complex node for PCI segment ${x.src.segment}: no IOMMU (iort_scan_node finds none)`);
    }
  }
  const other = t.list.filter((n) => n.type === "its-group" || n.type === "pmcg");
  if (other.length > 0) bld.trailer.push(`IORT ITS groups and PMCGs (${other.map((n) => hex(n.offset)).join(", ")}): MSI and PMU routing, not modelled`);
}

/**
 * The tables `files` holds (read from `path`, a directory or one table
 * file) as a scenario; with `lspci`, an import of the same machine's lspci
 * dump, whose functions become the devices.
 */
export function importAcpiTables(path: string, files: readonly AcpiFile[], lspci?: LspciPci): FwImport {
  const { found, skipped } = findTables(path, files);
  const bld = new Builder(lspci !== undefined ? new PciTopology(lspci) : null);
  for (const f of found) {
    if (f.table.signature === "DMAR") importDmar(bld, f);
    else if (f.table.signature === "IVRS") importIvrs(bld, f);
    else importIort(bld, f);
  }
  const sigs = found.map((f) => f.table.signature);
  const x86 = sigs.includes("DMAR") || sigs.includes("IVRS");
  if (x86 && sigs.includes("IORT")) throw new FirmwareError(found.find((f) => f.table.signature === "IORT")!.file, 0, "an IORT table beside DMAR/IVRS: one machine is x86 or arm64, not both");
  const header = [
    `Imported by iommu-sim import acpi from ${path}: ${found.map((f) => `${f.table.signature} (${basename(f.file)}, ${f.table.length} bytes, revision ${f.table.revision}, OEM ${f.table.oemId.trim()} ${f.table.oemTableId.trim()})`).join(", ")}${skipped.length > 0 ? `; ${skipped.length} other file(s) skipped` : ""}.`,
    "ACPI tables name the IOMMUs and whom they serve, not the PCI topology: the devices are those the tables name. Comments give each structure's byte offset.",
  ];
  if (sigs.includes("IORT")) header.push("IORT links are written as their device-tree equivalents (iommus, iommu-map), which give the same fwspecs; the model has no IORT path.");
  const pci = bld.pci;
  if (pci !== null) {
    header[1] = `The PCI functions are ${pci.file}'s (lspci), in the kernel's enumeration order; each is served by ${x86 ? "the DRHD or IVHD whose scope covers it" : "the SMMU its root complex's ID mappings lead its requester ID to"}. Comments give each structure's byte offset and each function's line.`;
    header[0] = header[0]!.replace(/\.$/, `; ${pci.functions.length} PCI functions from ${pci.file}.`);
  }
  const drivers: FwEntry[] =
    pci === null
      ? []
      : [...driversOf(pci.imp)].map(([name, xs]) => ({
          data: { name, bus: "pci", match: xs.map((x) => x.name), ...(DRIVER_MANAGED_DMA.has(name) ? { driver_managed_dma: true } : {}) },
          comment: [`${pci.file}: 'Kernel driver in use' at line${xs.length === 1 ? "" : "s"} ${xs.map((x) => x.src.driver!.line).join(", ")}`],
        }));
  const groups = pci === null ? [] : groupsOf(pci.imp);
  const events: FwEntry[] =
    groups.length === 0
      ? []
      : [
          {
            data: {
              note: "the groups the kernel that produced the lspci dump made",
              expect: { groups: groups.map(([id, xs]) => ({ id, devices: xs.map((x) => x.name) })), ...(groups.reduce((n, [, xs]) => n + xs.length, 0) === pci!.functions.length ? { group_count: groups.length } : {}) },
            },
            comment: [`${pci!.file}: the kernel's own groups, from the 'IOMMU group:' lines`],
          },
        ];
  return {
    source: `acpi ${path}`,
    name: `acpi ${basename(path)}`,
    header,
    boot: x86 ? { arch: "x86", order: "devices-first" } : { arch: "arm64" },
    iommus: bld.iommus,
    devices: bld.devices,
    ...(drivers.length > 0 ? { drivers } : {}),
    ...(events.length > 0 ? { events } : {}),
    trailer: bld.trailer,
    warnings: bld.warnings,
  };
}
