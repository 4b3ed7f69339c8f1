/**
 * A flattened device tree as a scenario (arm64): IOMMU nodes (those with
 * `#iommu-cells`) become instances of the driver their `compatible`
 * selects; nodes with `iommus` become platform (or, `arm,primecell`, amba)
 * devices; PCI host bridges with `iommu-map` become `pci-host` devices.
 * Disabled nodes are kept, never probed: devices not added, instances not
 * registered. What the model has no driver or key for is a warning naming
 * the node, never a guess. Links that do not resolve are warnings (the
 * kernel boots such trees; the client gets no IOMMU), structural damage
 * and phandle cycles are FirmwareErrors.
 */
import type { IommuDriverName } from "../../drivers/index.ts";
import { dtIommuDriver } from "./dt-compatibles.ts";
import { hex } from "./fw-bytes.ts";
import { UniqueNames, type FwEntry, type FwImport } from "./fw-scenario.ts";
import { propCells, propString, propStrings, propU32, type Fdt, type FdtNode } from "./fdt-parse.ts";

/** The scenario format's largest `#iommu-cells`. */
const MAX_CELLS = 4;

interface IommuNode {
  node: FdtNode;
  cells: number;
  /** The model's driver, or null: unknown compatible, or cells the format cannot hold. */
  driver: IommuDriverName | null;
  why: string;
  name: string | null;
}

// @kernel: of_device_is_available
function available(n: FdtNode): boolean {
  const s = propString(n, "status");
  return s === null || s === "okay" || s === "ok";
}

/** Why a node is never probed: its own status, or a disabled ancestor (of_platform_populate stops there); null when it is. */
function disabledWhy(n: FdtNode): string | null {
  if (!available(n)) return `status = "${propString(n, "status")}"`;
  for (let p = n.parent; p !== null; p = p.parent) if (!available(p)) return `below ${p.path}, status = "${propString(p, "status")}"`;
  return null;
}

const at = (n: FdtNode, prop?: string) => `byte ${prop === undefined ? n.offset : n.props.get(prop)!.offset}`;

export function importDtb(t: Fdt, file: string): FwImport {
  const warnings: string[] = [];
  const warn = (n: FdtNode, prop: string | undefined, msg: string) => warnings.push(`${file}: ${n.path}${prop === undefined ? "" : ` ${prop}`} (${at(n, prop)}): ${msg}`);

  // Phandles.
  const byPhandle = new Map<number, FdtNode>();
  for (const n of t.nodes) {
    for (const key of ["phandle", "linux,phandle"]) {
      const ph = propU32(t, n, key);
      if (ph === null) continue;
      if (ph === 0 || ph === 0xffffffff) t.blob.fail(n.props.get(key)!.offset, `${n.path}: ${key} ${hex(ph)} is not a valid phandle`);
      const other = byPhandle.get(ph);
      if (other !== undefined && other !== n) t.blob.fail(n.props.get(key)!.offset, `${n.path}: phandle ${hex(ph)} is also ${other.path}'s`);
      byPhandle.set(ph, n);
    }
  }

  // IOMMU nodes, in tree order.
  const iommus = new Map<FdtNode, IommuNode>();
  const instNames = new UniqueNames();
  for (const n of t.nodes) {
    const cells = propU32(t, n, "#iommu-cells");
    if (cells === null) continue;
    const compatible = propStrings(n, "compatible");
    const m = dtIommuDriver(compatible);
    let driver: IommuDriverName | null = m?.driver ?? null;
    let why = m === null ? "" : `compatible "${m.compatible}"`;
    if (m === null) {
      warn(n, undefined, `an IOMMU (#iommu-cells = ${cells}) with compatible ${compatible.length === 0 ? "(none)" : compatible.map((c) => `"${c}"`).join(", ")}, which no driver of the model matches: not imported; its clients are imported without an IOMMU`);
      why = "unknown compatible";
    } else if (cells > MAX_CELLS) {
      warn(n, "#iommu-cells", `#iommu-cells = ${cells}: the scenario format holds at most ${MAX_CELLS}; not imported, its clients are imported without an IOMMU`);
      driver = null;
      why = `#iommu-cells = ${cells}`;
    }
    const base = n.name === "" ? "root" : n.name;
    iommus.set(n, { node: n, cells, driver, why, name: driver === null ? null : instNames.take(base, n.path.slice(1)) });
  }

  // Phandle cycles through IOMMU nodes' own `iommus` (an IOMMU behind another IOMMU).
  for (const im of iommus.values()) {
    const seen: FdtNode[] = [];
    let cur: FdtNode | undefined = im.node;
    while (cur !== undefined && cur.props.has("iommus")) {
      if (seen.includes(cur)) {
        t.blob.fail(cur.props.get("iommus")!.offset, `phandle cycle: ${[...seen.slice(seen.indexOf(cur)), cur].map((x) => x.path).join(" -> ")} through their iommus properties`);
      }
      seen.push(cur);
      const c: number[] = propCells(t, cur, "iommus")!;
      cur = c.length === 0 ? undefined : byPhandle.get(c[0]!);
    }
    if (im.node.props.has("iommus")) warn(im.node, "iommus", "an IOMMU that is itself behind an IOMMU: the model does not stack them; its own iommus is ignored");
  }

  const instances: FwEntry[] = [];
  for (const im of iommus.values()) {
    if (im.driver === null || im.name === null) continue;
    const n = im.node;
    const data: Record<string, unknown> = { name: im.name, driver: im.driver, fwnode: n.path, "#iommu-cells": im.cells };
    const comment = [`${n.path} (${at(n)}): ${im.why} -> ${im.driver}`];
    const off = disabledWhy(n);
    if (off !== null) {
      if (!available(n)) data.status = "disabled";
      data.registered = false;
      comment.push(`${off}: never probed, so never registered`);
    }
    if (im.driver === "arm-smmu" && n.props.has("mmu-masters")) {
      warn(n, "mmu-masters", "the legacy arm-smmu mmu-masters binding is not modelled: the masters it lists are not imported");
    }
    instances.push({ data, comment });
  }

  /** Resolves a phandle to an IOMMU node the model has a driver for; a reason otherwise. */
  const target = (ph: number): { im: IommuNode } | { problem: string; node?: FdtNode } => {
    const n = byPhandle.get(ph);
    if (n === undefined) return { problem: `phandle ${hex(ph)} does not resolve to any node` };
    const im = iommus.get(n);
    if (im === undefined) return { problem: `${n.path} has no #iommu-cells: not an IOMMU`, node: n };
    return { im };
  };

  const devNames = new UniqueNames();
  const devices: FwEntry[] = [];
  const usedSegments = new Set<number>();
  const hosts: { n: FdtNode; segment: number | null }[] = [];
  for (const n of t.nodes) {
    if (!n.props.has("iommu-map") || propString(n, "device_type") !== "pci") continue;
    const dom = propU32(t, n, "linux,pci-domain");
    if (dom !== null && usedSegments.has(dom)) warn(n, "linux,pci-domain", `PCI domain ${dom} is another host bridge's too: given the next free one`);
    const seg = dom !== null && !usedSegments.has(dom) ? dom : null;
    if (seg !== null) usedSegments.add(seg);
    hosts.push({ n, segment: seg });
  }
  let nextSegment = 0;
  const hostSegment = new Map<FdtNode, { segment: number; why: string }>();
  for (const h of hosts) {
    if (h.segment !== null) {
      hostSegment.set(h.n, { segment: h.segment, why: "linux,pci-domain" });
      continue;
    }
    while (usedSegments.has(nextSegment)) nextSegment++;
    usedSegments.add(nextSegment);
    hostSegment.set(h.n, { segment: nextSegment, why: "no linux,pci-domain: allocated in tree order" });
  }

  let unknownClients = 0;
  for (const n of t.nodes) {
    const hasIommus = n.props.has("iommus") && !iommus.has(n);
    const hasMap = n.props.has("iommu-map");
    if (!hasIommus && !hasMap) continue;
    const data: Record<string, unknown> = {};
    const comment: string[] = [];
    const compatible = propStrings(n, "compatible");
    // @kernel: of_platform_bus_create (an "arm,primecell" node becomes an amba device)
    const bus = compatible.includes("arm,primecell") ? "amba" : "platform";
    data.name = n.name === "" ? devNames.take("root", "/") : devNames.take(n.name, n.path.slice(1));
    data.bus = bus;
    data.fwnode = n.path;
    comment.push(`${n.path} (${at(n)})${compatible.length > 0 ? `: ${compatible[0]}` : ""}${bus === "amba" ? " (arm,primecell: an amba device)" : ""}`);
    let useful = false;
    if (hasIommus) {
      // @kernel: of_iommu_configure_dev (each iommus entry: a phandle, then #iommu-cells cells, for of_iommu_xlate)
      const c = propCells(t, n, "iommus")!;
      const entries: (string | number)[][] = [];
      let problem: string | null = null;
      let unknown: string | null = null;
      for (let i = 0; i < c.length && problem === null; ) {
        const r = target(c[i]!);
        if ("problem" in r) {
          problem = r.problem;
          break;
        }
        const im = r.im;
        if (i + 1 + im.cells > c.length) {
          problem = `the entry for ${im.node.path} needs ${im.cells} cell${im.cells === 1 ? "" : "s"} after the phandle, ${c.length - i - 1} remain`;
          break;
        }
        if (im.name === null) unknown ??= `${im.node.path} (${im.why})`;
        else entries.push([im.name, ...c.slice(i + 1, i + 1 + im.cells)]);
        i += 1 + im.cells;
      }
      if (problem !== null) {
        warn(n, "iommus", `${problem}: the kernel's of_iommu_configure fails, so the device is imported without an IOMMU`);
        comment.push(`iommus does not resolve: ${problem}`);
      } else if (unknown !== null) {
        unknownClients++;
        comment.push(`iommus names ${unknown}, which the model has no driver for: imported without an IOMMU`);
      } else if (entries.length > 0) {
        data.iommus = entries;
        useful = true;
      }
    }
    if (hasMap) {
      const host = hostSegment.get(n);
      if (host === undefined) {
        warn(n, "iommu-map", `iommu-map on a node that is not a PCI host bridge (device_type "${propString(n, "device_type") ?? ""}"): not modelled${hasIommus ? "" : ", node not imported"}`);
      } else {
        const br = propCells(t, n, "bus-range");
        if (br !== null && (br.length !== 2 || br[0]! > br[1]! || br[1]! > 0xff)) {
          t.blob.fail(n.props.get("bus-range")!.offset, `${n.path}: impossible bus-range <${br.map((x) => hex(x)).join(" ")}> (expected <start end>, start <= end <= 0xff)`);
        }
        const map = propCells(t, n, "iommu-map")!;
        const mapData: (string | number)[][] = [];
        if (map.length % 4 !== 0) {
          warn(n, "iommu-map", `${map.length} cells, not a whole number of (rid-base, phandle, iommu-base, length) entries: of_map_id refuses it, so its functions get no IOMMU`);
          comment.push("iommu-map is malformed: dropped");
        } else {
          for (let i = 0; i < map.length; i += 4) {
            const [ridBase, ph, outBase, len] = map.slice(i, i + 4) as [number, number, number, number];
            const r = target(ph);
            const e = `iommu-map entry ${i / 4}`;
            if ("problem" in r) warn(n, "iommu-map", `${e}: ${r.problem}: dropped (RIDs ${hex(ridBase)}+${hex(len)} get no IOMMU)`);
            else if (r.im.name === null) {
              unknownClients++;
              comment.push(`${e} maps RIDs ${hex(ridBase)}+${hex(len)} to ${r.im.node.path} (${r.im.why}): dropped, those functions get no IOMMU`);
            } else if (len === 0) warn(n, "iommu-map", `${e}: length 0 maps nothing: dropped`);
            else {
              if (r.im.cells !== 1) warn(n, "iommu-map", `${e}: ${r.im.node.path} has #iommu-cells = ${r.im.cells}; iommu-map passes it one cell`);
              mapData.push([ridBase, r.im.name, outBase, len]);
            }
          }
        }
        const h: Record<string, unknown> = { segment: host.segment };
        if (mapData.length > 0) h["iommu-map"] = mapData;
        const mask = propU32(t, n, "iommu-map-mask");
        if (mask !== null) h["iommu-map-mask"] = mask;
        data["pci-host"] = h;
        comment.push(`PCI host bridge, segment ${host.segment} (${host.why})`);
        useful = true;
      }
    }
    if (!useful && !hasMap) {
      // A client of an IOMMU the model lacks, or whose link does not resolve: kept, without an IOMMU.
      useful = true;
    }
    if (!useful) continue;
    const pasid = propU32(t, n, "pasid-num-bits");
    if (pasid !== null && pasid <= 20 && bus === "platform") data["pasid-bits"] = pasid;
    const off = disabledWhy(n);
    if (off !== null) {
      data.added = false;
      comment.push(`${off}: never probed (not added)`);
    }
    devices.push({ data, comment });
  }

  const model = propString(t.root, "model") ?? propStrings(t.root, "compatible")[0] ?? null;
  const base = file.split("/").at(-1)!;
  const skipped = [...iommus.values()].filter((x) => x.driver === null);
  const header = [
    `Imported by iommu-sim import dtb from ${file}${model === null ? "" : ` (${model})`}: device tree version ${t.version}, ${t.nodes.length} nodes, ${t.memReserve.length} /memreserve/ entr${t.memReserve.length === 1 ? "y" : "ies"}.`,
    `${instances.length} IOMMU instance(s); ${devices.length} device(s) with iommus or iommu-map. Comments name each DT node and its byte offset in the blob.`,
  ];
  const trailer: string[] = [];
  if (skipped.length > 0) {
    trailer.push(`IOMMUs not imported (${skipped.length}): ${skipped.map((x) => `${x.node.path} (${x.why})`).join(", ")}; ${unknownClients} client link(s) to them dropped`);
  }
  return { source: `dtb ${file}`, name: `dtb ${base}`, header, boot: { arch: "arm64" }, iommus: instances, devices, trailer, warnings };
}
