/**
 * The IORT table (Arm; include/acpi/actbl2.h, drivers/acpi/arm64/iort.c):
 * SMMUv3 and SMMU (v1/v2) nodes, named-component and root-complex nodes
 * with their ID mappings, RMR nodes with their memory ranges, ITS groups
 * and PMCGs (read, not modelled). A mapping's output reference must be a
 * node of the table; following references through nodes that are neither
 * an SMMU nor an ITS group must end (a cycle is corrupt).
 */
import { hex, safeNumber, type Blob } from "./fw-bytes.ts";
import type { AcpiTable } from "./acpi-table.ts";

export const IORT_NODE_TYPES = ["its-group", "named-component", "root-complex", "smmu", "smmu-v3", "pmcg", "rmr"] as const;
export type IortNodeType = (typeof IORT_NODE_TYPES)[number];

export interface IortMapping {
  offset: number;
  inputBase: number;
  /** The number of IDs minus one, as the table has it. */
  idCount: number;
  outputBase: number;
  outputRef: number;
  single: boolean;
}

export interface IortNode {
  offset: number;
  type: IortNodeType;
  revision: number;
  mappings: IortMapping[];
  /** named component: the ACPI object path. */
  name?: string;
  /** root complex: the PCI segment. */
  segment?: number;
  /** smmu, smmu-v3: base address and model. */
  base?: bigint;
  model?: number;
  /** rmr: flags and memory ranges. */
  rmrFlags?: number;
  rmrs?: { offset: number; base: number; length: number }[];
}

export interface Iort {
  nodes: Map<number, IortNode>;
  /** In table order. */
  list: IortNode[];
}

export function parseIort(t: AcpiTable): Iort {
  const b: Blob = t.blob;
  const count = b.u32le(36, "the node count");
  let o = b.u32le(40, "the node offset");
  if (o < 48 || o > t.length) b.fail(40, `the first node's offset ${o} lies outside the table (48 to ${t.length})`);
  const list: IortNode[] = [];
  for (let i = 0; i < count; i++) {
    const typeNum = b.u8(o, "a node's type");
    const len = b.u16le(o + 1, "a node's length");
    if (len < 16 || o + len > t.length) b.fail(o + 1, `node ${i} of ${count}: length ${len} (at least 16, within the table's ${t.length} bytes)`);
    const end = o + len;
    const type = IORT_NODE_TYPES[typeNum];
    if (type === undefined) b.fail(o, `node type ${typeNum} is none the kernel knows (0 to 6)`);
    const mapCount = b.u32le(o + 8, "the mapping count", end);
    const mapOff = b.u32le(o + 12, "the mapping offset", end);
    if (mapCount > 0 && (mapOff < 16 || mapOff + mapCount * 20 > len)) b.fail(o + 12, `${mapCount} ID mappings at offset ${mapOff} do not fit in the node's ${len} bytes`);
    const mappings: IortMapping[] = [];
    for (let m = 0; m < mapCount; m++) {
      const p = o + mapOff + m * 20;
      mappings.push({
        offset: p,
        inputBase: b.u32le(p, "a mapping's input base"),
        idCount: b.u32le(p + 4, "a mapping's ID count"),
        outputBase: b.u32le(p + 8, "a mapping's output base"),
        outputRef: b.u32le(p + 12, "a mapping's output reference"),
        single: (b.u32le(p + 16, "a mapping's flags") & 1) !== 0,
      });
    }
    const n: IortNode = { offset: o, type, revision: b.u8(o + 3, "a node's revision"), mappings };
    if (type === "named-component") n.name = b.cstring(o + 29, "the device object name", end).text;
    else if (type === "root-complex") n.segment = b.u32le(o + 28, "the PCI segment", end);
    else if (type === "smmu") {
      n.base = b.u64le(o + 16, "the SMMU base", end);
      n.model = b.u32le(o + 32, "the SMMU model", end);
    } else if (type === "smmu-v3") {
      n.base = b.u64le(o + 16, "the SMMUv3 base", end);
      n.model = b.u32le(o + 40, "the SMMUv3 model", end);
    } else if (type === "rmr") {
      n.rmrFlags = b.u32le(o + 16, "the RMR flags", end);
      const rc = b.u32le(o + 20, "the RMR count", end);
      const ro = b.u32le(o + 24, "the RMR offset", end);
      if (rc > 0 && (ro < 28 || ro + rc * 20 > len)) b.fail(o + 24, `${rc} RMR descriptors at offset ${ro} do not fit in the node's ${len} bytes`);
      n.rmrs = [];
      for (let r = 0; r < rc; r++) {
        const p = o + ro + r * 20;
        n.rmrs.push({ offset: p, base: safeNumber(b, b.u64le(p, "an RMR base"), p, "RMR base"), length: safeNumber(b, b.u64le(p + 8, "an RMR length"), p + 8, "RMR length") });
      }
    }
    list.push(n);
    o = end;
  }
  const nodes = new Map(list.map((n) => [n.offset, n]));
  for (const n of list) {
    for (const m of n.mappings) {
      if (!nodes.has(m.outputRef)) b.fail(m.offset + 12, `the mapping's output reference ${hex(m.outputRef)} is not the offset of any node`);
    }
  }
  // Chains through nodes that are neither an SMMU nor an ITS group must end.
  for (const n of list) {
    const seen = new Set<number>([n.offset]);
    let cur = n;
    for (;;) {
      const m = cur.mappings[0];
      if (m === undefined) break;
      const next = nodes.get(m.outputRef)!;
      if (next.type === "smmu" || next.type === "smmu-v3" || next.type === "its-group") break;
      if (seen.has(next.offset)) b.fail(m.offset + 12, `mapping cycle: node ${hex(n.offset)} leads back to node ${hex(next.offset)}`);
      seen.add(next.offset);
      cur = next;
    }
  }
  return { nodes, list };
}
