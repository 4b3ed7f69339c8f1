/** The DMAR table (VT-d) into the scenario: DRHDs as IOMMUs, their device scopes, RMRRs as direct regions. */
import { hex } from "./fw-bytes.ts";
import type { FwEntry } from "./fw-scenario.ts";
import { pciName } from "./acpi-table.ts";
import { parseDmar, type Dmar, type DmarScope } from "./acpi-dmar.ts";
import { where, type Builder, type Found } from "./acpi-import-common.ts";

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
export function importDmar(bld: Builder, f: Found): void {
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
