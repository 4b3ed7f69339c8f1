/** The DMAR table (VT-d) into the scenario: DRHDs as IOMMUs, their device scopes, RMRRs as direct regions. */
import { hex } from "./fw-bytes.ts";
import type { FwEntry } from "./fw-scenario.ts";
import { pciName } from "./acpi-table.ts";
import { parseDmar, type Dmar, type DmarScope } from "./acpi-dmar.ts";
import { where, type Builder, type Found } from "./acpi-import-common.ts";
import type { ImportedFunction } from "./lspci-scenario.ts";

/** The device a DMAR scope entry names, or why it cannot be placed; an entry the kernel refuses with an error goes to `refused`. */
function dmarScopeDevice(bld: Builder, dmar: Dmar, f: Found, segment: number, s: DmarScope, what: string, refused: DmarScope[]): FwEntry | null {
  if (s.type === "ioapic" || s.type === "hpet") {
    bld.trailer.push(`${what}: ${s.type.toUpperCase()} ${s.enumerationId} at ${pciName(segment, s.bus, ...s.path[0]!)} (${where(f, s.offset)}): interrupt remapping, not modelled`);
    return null;
  }
  if (s.type === "namespace") {
    const d = dmar.andd.get(s.enumerationId);
    if (d === undefined) {
      bld.warn(f, s.offset, `${what} names ACPI namespace device ${s.enumerationId}, which no ANDD structure declares: skipped`);
      return null;
    }
    return bld.device(d.name, { bus: "platform", fwnode: d.name }, `${d.name}: ACPI namespace device ${s.enumerationId} (ANDD at ${where(f, d.offset)}), in ${what}'s scope (${where(f, s.offset)})`, `also in ${what}'s scope (${where(f, s.offset)})`);
  }
  const pathText = s.path.map(([d, fn]) => `${hex(d, 2)}.${fn}`).join(" ");
  if (bld.pci !== null) {
    const r = bld.pci.dmarPath(segment, s.bus, s.path);
    if (r === null) {
      bld.warn(f, s.offset, `${what} names a PCI ${s.type} at bus ${hex(s.bus, 2)} path ${pathText}, which ${bld.pci.file} does not have: skipped`);
      return null;
    }
    // @kernel: dmar_insert_dev_scope (EINVAL for an endpoint entry naming a bridge, or a bridge entry naming a normal-header function whose class is not a bridge's)
    const bridge = bld.pci.isBridge(r.fn);
    const bridgeClass = !bridge && isBridgeClass(r.fn);
    if (s.type === "endpoint" ? bridge : !bridge && !bridgeClass) {
      bld.warn(f, s.offset, `${what} names ${r.fn.name} as a PCI ${s.type}, but ${bld.pci.file} says it is ${bridge ? "a bridge" : "neither a bridge nor of a bridge class"}: dmar_insert_dev_scope refuses it with EINVAL ("Device scope type does not match")`);
      refused.push(s);
      return null;
    }
    const e = bld.devByName.get(r.fn.name)!;
    e.comment.push(`in ${what}'s scope as a PCI ${s.type} (${where(f, s.offset)}, bus ${hex(s.bus, 2)} path ${pathText})${r.fwBug ? ": matched at its own bus:dev.fn, not from a root bus (dmar_match_pci_path's workaround for broken entries)" : ""}${s.type === "bridge" && bridgeClass ? ": no subordinate bus, but of a bridge class (06), which dmar_insert_dev_scope accepts" : ""}`);
    return e;
  }
  if (s.path.length > 1) {
    bld.warn(f, s.offset, `${what} names a PCI ${s.type} ${s.path.length} hops below bus ${hex(s.bus, 2)} (path ${pathText}); the buses behind bridges are in config space, not in the table (give an lspci dump with --lspci): skipped`);
    return null;
  }
  const [dev, fn] = s.path[0]!;
  const name = pciName(segment, s.bus, dev, fn);
  const type = s.type === "bridge" ? "root-port" : "rc-endpoint";
  return bld.device(name, { bus: "pci", type }, `${name}: in ${what}'s scope as a PCI ${s.type} (${where(f, s.offset)}); placed on root bus ${hex(s.bus, 2)} as a ${type} (the table gives no PCI topology)`, `also in ${what}'s scope (${where(f, s.offset)})`);
}
/** A function of base class 06 (bridge); lspci without -nn names the class only ('... bridge'). */
function isBridgeClass(x: ImportedFunction): boolean {
  const c = x.src.classCode;
  return c !== null ? c >> 8 === 0x06 : /(^| )bridge$/i.test(x.src.className);
}

/** lspci's names of the classes below (printed alone without -nn): base class 03 and 0c03. */
const DISPLAY_OR_USB = new Set(["VGA compatible controller", "XGA compatible controller", "3D controller", "Display controller", "USB controller"]);

/** USB controllers (class 0c03) and display devices (base class 03) may have their RMRRs relaxed. */
// @kernel: device_rmrr_is_relaxable
function rmrrIsRelaxable(x: ImportedFunction): boolean {
  const c = x.src.classCode;
  return c !== null ? c === 0x0c03 || c >> 8 === 0x03 : DISPLAY_OR_USB.has(x.src.className);
}

export function importDmar(bld: Builder, f: Found): void {
  const d = parseDmar(f.table);
  const refused: DmarScope[] = [];
  const units: FwEntry[] = [];
  d.drhds.forEach((h, i) => {
    const names: string[] = [];
    for (const s of h.scopes) {
      const e = dmarScopeDevice(bld, d, f, h.segment, s, `DRHD ${i}`, refused);
      if (e !== null) names.push(e.data.name as string);
      if (h.includeAll && s.type === "namespace") bld.warn(f, s.offset, `DRHD ${i} is INCLUDE_PCI_ALL and names an ACPI namespace device: the model's INCLUDE_PCI_ALL scope serves PCI devices only, so it gets no IOMMU`);
    }
    const data: Record<string, unknown> = { name: `dmar${i}`, driver: "intel-iommu", scope: h.includeAll ? "all" : names };
    if (h.segment !== 0) data.segment = h.segment;
    const comment = [`DRHD ${i} (${where(f, h.offset)}): registers at ${hex(h.address)}, segment ${h.segment}${h.includeAll ? ", INCLUDE_PCI_ALL" : `, ${h.scopes.length} scope entr${h.scopes.length === 1 ? "y" : "ies"}`}`];
    if (h.includeAll && h.scopes.length > 0) comment.push(`its ${h.scopes.length} scope entries are IOAPIC/HPET ones (interrupt remapping)`);
    units.push({ data, comment });
  });
  d.rmrrs.forEach((r, i) => {
    for (const s of r.scopes) {
      const e = dmarScopeDevice(bld, d, f, r.segment, s, `RMRR ${i}`, refused);
      if (e === null) continue;
      const region = `RMRR ${i} (${where(f, r.offset)}): ${hex(r.base)}-${hex(r.end)}`;
      const fn = bld.pci?.named(e.data.name as string) ?? null;
      if (fn === null) {
        // Without the dump a PCI entry's class is unknown; a namespace device is not PCI (never relaxable).
        bld.reserved(e, { start: r.base, length: r.end - r.base + 1, type: "direct" });
        e.comment.push(`${region}, direct${e.data.bus === "pci" ? " (direct-relaxable if it is a USB or graphics device: device_rmrr_is_relaxable; the table does not say)" : ""}`);
        continue;
      }
      // @kernel: intel_iommu_get_resv_regions (an RMRR's entry covers that device and every device below it when it is a bridge)
      for (const x of [fn, ...bld.pci!.downstream(fn)]) {
        const type = rmrrIsRelaxable(x) ? "direct-relaxable" : "direct";
        const xe = bld.devByName.get(x.name)!;
        bld.reserved(xe, { start: r.base, length: r.end - r.base + 1, type });
        xe.comment.push(`${region}, ${type}${type === "direct" ? "" : " (a USB or graphics device: device_rmrr_is_relaxable)"}${x === fn ? "" : ` (below ${fn.name}, the bridge in its scope)`}`);
      }
    }
  });
  // @kernel: intel_iommu_init (dmar_dev_scope_init failing, VT-d is not brought up: no DRHD registers)
  if (refused.length === 0) bld.iommus.push(...units);
  else {
    bld.warn(f, refused[0]!.offset, `${refused.length} device scope entr${refused.length === 1 ? "y" : "ies"} the kernel refuses (above): dmar_dev_scope_init fails and intel_iommu_init gives up, so VT-d is off; the scenario has no intel-iommu (the DRHDs are comments at the end)`);
    for (const u of units) bld.trailer.push(`${u.comment[0]!}: not registered (intel_iommu_init gave up: dmar_dev_scope_init failed)`);
  }
  d.atsrs.forEach((a, i) => {
    bld.trailer.push(`ATSR ${i} (${where(f, a.offset)}): segment ${a.segment}, ATS allowed below ${a.allPorts ? "every root port (ALL_PORTS)" : a.scopes.map((s) => pciName(a.segment, s.bus, ...s.path[0]!)).join(", ")}: ATS is not modelled`);
  });
  for (const [o, what] of d.other) bld.trailer.push(`${what} (${where(f, o)}): not modelled`);
}
