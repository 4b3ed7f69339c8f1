/**
 * The IORT table (Arm) into the scenario: SMMU nodes as IOMMUs, named
 * components and root complexes as devices with their DT equivalents
 * (`iommus`, `iommu-map`), RMR nodes as reserved regions.
 */
import { hex } from "./fw-bytes.ts";
import { parseIort, type Iort, type IortMapping, type IortNode } from "./acpi-iort.ts";
import { iortNodeMapId } from "./iort-map.ts";
import { where, type Builder, type Found } from "./acpi-import-common.ts";

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
export function importIort(bld: Builder, f: Found): void {
  const t: Iort = parseIort(f.table);
  const fwnode = (n: IortNode) => `IORT/${n.type}@${hex(n.offset)}`;
  const smmus = new Map<number, string>();
  for (const n of t.list) {
    if (n.type !== "smmu" && n.type !== "smmu-v3") continue;
    const base = `0x${n.base!.toString(16).padStart(16, "0")}`;
    if (n.type === "smmu" && IORT_SMMU_MODELS[n.model!] === undefined) {
      bld.warn(f, n.offset, `SMMU model ${n.model}, which arm-smmu's acpi_smmu_get_data does not know: not imported; its clients are imported without an IOMMU`);
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
        bld.warn(f, n.offset, `a named component ${name === "" ? "without a name" : `named ${name} like an earlier node`}: ${name === "" ? "no device matches it" : "the kernel uses the first"}; skipped`);
        continue;
      }
      const e = bld.device(name, { bus: "platform", fwnode: fwnode(n) }, `IORT named component ${name} (${where(f, n.offset)})`);
      if (entries.length > 0) e.data.iommus = entries;
      e.comment.push(...notes);
      ncSids.set(name, sids);
    } else if (n.type === "root-complex") {
      const seg = n.segment!;
      const name = `pci${seg.toString(16).padStart(4, "0")}`;
      if (bld.devByName.has(name)) {
        bld.warn(f, n.offset, `a second root complex for PCI segment ${n.segment}: the kernel uses the first; skipped`);
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
          bld.warn(f, m.offset, `a root complex's single mapping (every RID to one StreamID) is not imported`);
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
        e.comment.push(`RMR node (${where(f, n.offset)}): ${n.rmrs!.length} range(s), ${type}, for StreamIDs ${hex(first)}-${hex(last)}${pciSids.has(nm) ? " (matched on the StreamID of the function's own requester ID; the kernel applies it to a PCI function only when its host bridge keeps the boot configuration, the DSDT's _DSM function 5, which the IORT does not say: iort_rmr_has_dev)" : ""}`);
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
