/**
 * A flattened device tree (DTB, the devicetree specification's format) read
 * into nodes: the header, the memory reservation block, the structure
 * block's nodes and properties, the strings block. Every structural
 * problem (a bad magic, a block outside the blob, a token out of place, a
 * name or string without its NUL, a property running past its block) is a
 * FirmwareError with the byte offset; nothing else is thrown.
 */
import { Blob, hex } from "./fw-bytes.ts";

const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 1;
const FDT_END_NODE = 2;
const FDT_PROP = 3;
const FDT_NOP = 4;
const FDT_END = 9;
/** unflatten_dt_nodes refuses trees nested deeper (FDT_MAX_DEPTH). */
export const FDT_MAX_DEPTH = 64;

export interface FdtProp {
  value: Uint8Array;
  /** Byte offset of the property's FDT_PROP token in the blob. */
  offset: number;
}

export interface FdtNode {
  /** The node's name with its unit address, e.g. `iommu@2b400000` ("" for the root). */
  name: string;
  path: string;
  parent: FdtNode | null;
  children: FdtNode[];
  props: Map<string, FdtProp>;
  /** Byte offset of the node's FDT_BEGIN_NODE token. */
  offset: number;
}

export interface Fdt {
  file: string;
  blob: Blob;
  version: number;
  /** /memreserve/ entries: [address, size]. */
  memReserve: [bigint, bigint][];
  root: FdtNode;
  /** Every node, in structure-block order. */
  nodes: FdtNode[];
}

const align4 = (n: number) => (n + 3) & ~3;

export function parseFdt(bytes: Uint8Array, file: string): Fdt {
  const b: Blob = new Blob(bytes, file);
  if (b.length < 4 || b.u32be(0, "the magic") !== FDT_MAGIC) {
    b.fail(0, `not a flattened device tree: the magic is ${b.length < 4 ? "missing" : hex(b.u32be(0, "the magic"))}, not 0xd00dfeed`);
  }
  b.need(0, 40, "the header");
  const totalsize = b.u32be(4, "totalsize");
  const offStruct = b.u32be(8, "off_dt_struct");
  const offStrings = b.u32be(12, "off_dt_strings");
  const offRsv = b.u32be(16, "off_mem_rsvmap");
  const version = b.u32be(20, "version");
  const lastComp = b.u32be(24, "last_comp_version");
  const sizeStrings = b.u32be(32, "size_dt_strings");
  if (totalsize > b.length) b.fail(4, `totalsize says ${totalsize} bytes, the file has ${b.length} (truncated)`);
  if (totalsize < 40) b.fail(4, `totalsize ${totalsize} is smaller than the header`);
  if (version < 16 || lastComp > 17) b.fail(20, `version ${version} (last compatible ${lastComp}) is not one this reader takes (16 or 17)`);
  const sizeStruct = version >= 17 ? b.u32be(36, "size_dt_struct") : totalsize - offStruct;
  const block = (off: number, size: number, at: number, what: string) => {
    if (off < 40 || off > totalsize || size > totalsize - off) b.fail(at, `the ${what} block (${off}, ${size} bytes) lies outside the blob's ${totalsize} bytes`);
  };
  block(offStruct, sizeStruct, 8, "structure");
  block(offStrings, sizeStrings, 12, "strings");
  if (offStruct % 4 !== 0) b.fail(8, `off_dt_struct ${offStruct} is not 4-byte aligned`);
  if (offRsv % 8 !== 0 || offRsv < 40 || offRsv >= totalsize) b.fail(16, `off_mem_rsvmap ${offRsv} is not an 8-byte aligned offset inside the blob`);

  const memReserve: [bigint, bigint][] = [];
  for (let o = offRsv; ; o += 16) {
    const addr = b.u64be(o, "a memory reservation entry", totalsize);
    const size = b.u64be(o + 8, "a memory reservation entry", totalsize);
    if (addr === 0n && size === 0n) break;
    memReserve.push([addr, size]);
  }

  const stringsEnd = offStrings + sizeStrings;
  const structEnd = offStruct + sizeStruct;
  const propName = (nameoff: number, at: number) => {
    if (nameoff >= sizeStrings) b.fail(at + 8, `the property's name offset ${nameoff} lies outside the strings block (${sizeStrings} bytes)`);
    return b.cstring(offStrings + nameoff, "a property name in the strings block", stringsEnd).text;
  };

  const nodes: FdtNode[] = [];
  let root: FdtNode | null = null;
  let cur: FdtNode | null = null;
  let depth = 0;
  let o = offStruct;
  for (;;) {
    const at = o;
    const tok = b.u32be(o, "a structure token", structEnd);
    o += 4;
    if (tok === FDT_NOP) continue;
    if (tok === FDT_BEGIN_NODE) {
      if (root !== null && cur === null) b.fail(at, "a second root node after the first ended");
      const { text, next } = b.cstring(o, "a node name", structEnd);
      o = align4(next);
      if (cur === null && text !== "") b.fail(at, `the root node is named '${text.slice(0, 40)}', not ''`);
      if (cur !== null && text === "") b.fail(at, `a node without a name below ${cur.path}`);
      if (/[/\0]/.test(text)) b.fail(at + 4, `node name '${text.slice(0, 40)}' contains '/'`);
      // @kernel: unflatten_dt_nodes (FDT_MAX_DEPTH)
      if (++depth > FDT_MAX_DEPTH) b.fail(at, `nodes nested deeper than ${FDT_MAX_DEPTH} levels (the kernel's unflatten_dt_nodes refuses them)`);
      const path = cur === null ? "/" : cur.path === "/" ? `/${text}` : `${cur.path}/${text}`;
      const n: FdtNode = { name: text, path, parent: cur, children: [], props: new Map(), offset: at };
      if (cur === null) root = n;
      else cur.children.push(n);
      nodes.push(n);
      cur = n;
    } else if (tok === FDT_END_NODE) {
      if (cur === null) b.fail(at, "FDT_END_NODE without a node open");
      cur = cur.parent;
      depth--;
    } else if (tok === FDT_PROP) {
      if (cur === null) b.fail(at, "a property outside any node");
      const len = b.u32be(o, "a property's length", structEnd);
      const nameoff = b.u32be(o + 4, "a property's name offset", structEnd);
      o += 8;
      if (len > structEnd - o) b.fail(at, `a property of ${len} bytes runs past the structure block's end (byte ${structEnd})`);
      const name = propName(nameoff, at);
      if (!cur.props.has(name)) cur.props.set(name, { value: bytes.subarray(o, o + len), offset: at });
      o = align4(o + len);
    } else if (tok === FDT_END) {
      if (cur !== null) b.fail(at, `FDT_END while ${cur.path} is still open (truncated?)`);
      if (root === null) b.fail(at, "FDT_END before any node");
      break;
    } else {
      b.fail(at, `unknown structure token ${hex(tok)} (expected BEGIN_NODE 1, END_NODE 2, PROP 3, NOP 4 or END 9)`);
    }
  }
  return { file, blob: b, version, memReserve, root: root!, nodes };
}

/** A property's cells (big-endian u32s); null when absent, a FirmwareError when its length is not a multiple of 4. */
export function propCells(t: Fdt, n: FdtNode, name: string): number[] | null {
  const p = n.props.get(name);
  if (p === undefined) return null;
  if (p.value.length % 4 !== 0) t.blob.fail(p.offset, `${n.path}: ${name} is ${p.value.length} bytes, not a whole number of 32-bit cells`);
  const out: number[] = [];
  const v = new DataView(p.value.buffer, p.value.byteOffset, p.value.byteLength);
  for (let i = 0; i < p.value.length; i += 4) out.push(v.getUint32(i, false));
  return out;
}

/** A one-cell property's value (null when absent); a FirmwareError when it is not one cell. */
export function propU32(t: Fdt, n: FdtNode, name: string): number | null {
  const c = propCells(t, n, name);
  if (c === null) return null;
  if (c.length !== 1) t.blob.fail(n.props.get(name)!.offset, `${n.path}: ${name} has ${c.length} cells, not 1`);
  return c[0]!;
}

/** A string-list property (compatible): its NUL-terminated strings; [] when absent. */
export function propStrings(n: FdtNode, name: string): string[] {
  const p = n.props.get(name);
  if (p === undefined) return [];
  const out: string[] = [];
  let s = "";
  for (const c of p.value) {
    if (c === 0) {
      out.push(s);
      s = "";
    } else s += String.fromCharCode(c);
  }
  if (s !== "") out.push(s);
  return out;
}

/** A string property's value (the first string), or null. */
export function propString(n: FdtNode, name: string): string | null {
  return propStrings(n, name)[0] ?? null;
}
