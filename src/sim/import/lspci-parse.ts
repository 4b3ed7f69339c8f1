/**
 * Parses `lspci -vv` output (also -vvv, -n, -nn, -D, -P/-PP, -xxx hex lines)
 * into PCI functions with the source lines each fact came from. Anything
 * that is not lspci output, or a dump cut short, is an LspciError naming
 * the line and the problem; nothing else is thrown.
 */
import { ACS_BITS, type AcsName } from "../../base/pci/pci-dev.ts";

export class LspciError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly problem: string,
  ) {
    super(`${file}:${line}: ${problem}`);
    this.name = "LspciError";
  }
}

/** lspci's ACS flag names and the model's. */
const ACS_FLAG_NAMES: Record<string, AcsName> = {
  SrcValid: "SV",
  TransBlk: "TB",
  ReqRedir: "RR",
  CmpltRedir: "CR",
  UpstreamFwd: "UF",
  EgressCtrl: "EC",
  DirectTrans: "DT",
};

/** The port types lspci prints after "Express (vN) ". */
export const EXPRESS_TYPES = [
  "Root Complex Integrated Endpoint",
  "Root Complex Event Collector",
  "Legacy Endpoint",
  "Endpoint",
  "Root Port",
  "Upstream Port",
  "Downstream Port",
  "PCI-Express to PCI/PCI-X Bridge",
  "PCI/PCI-X to PCI-Express Bridge",
] as const;
export type ExpressType = (typeof EXPRESS_TYPES)[number];

export interface LspciFunction {
  /** Line of the function's first line. */
  line: number;
  header: string;
  segment: number;
  bus: number;
  dev: number;
  fn: number;
  /** With -P (no bus in the last path element): the bus is the parent's secondary, resolved later. */
  busFromPath: boolean;
  /** The address of the bridge above, from a -P/-PP path. */
  pathParent: string | null;
  className: string;
  classCode: number | null;
  progIf: number | null;
  description: string;
  vendor: number | null;
  device: number | null;
  revision: number | null;
  subsystem: [number, number] | null;
  subsystemLine: number | null;
  iommuGroup: number | null;
  iommuGroupLine: number | null;
  busLine: { primary: number; secondary: number; subordinate: number; line: number } | null;
  express: { type: ExpressType; line: number } | null;
  acsCap: { set: AcsName[]; line: number } | null;
  acsCtl: { set: AcsName[]; line: number } | null;
  /** The capability header of ACS, to tell a cut dump from one without ACS lines. */
  acsHeaderLine: number | null;
  accessDenied: number | null;
  driver: { name: string; line: number } | null;
  /** Config space header type byte (from -xxx hex), when the dump has it. */
  headerType: number | null;
  hexLine: number | null;
}

export interface LspciDump {
  file: string;
  functions: LspciFunction[];
}

const ADDR = /^(?:([0-9a-fA-F]{4,8}):)?([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$/;
const PATH_ELEM = /^(?:([0-9a-fA-F]{2}):)?([0-1][0-9a-fA-F])\.([0-7])$/;
const HEX_LINE = /^([0-9a-f]{2,3}):((?: [0-9a-f]{2}){1,16})\s*$/;

/** A short, printable quote of a source line. */
function quote(s: string): string {
  const t = s.replace(/[^\x20-\x7e]/g, "?");
  return `'${t.length > 60 ? `${t.slice(0, 60)}…` : t}'`;
}

function hexByte(s: string, file: string, line: number, what: string): number {
  if (!/^[0-9a-fA-F]{1,2}$/.test(s)) throw new LspciError(file, line, `${what}: '${s.slice(0, 20)}' is not a hex byte`);
  return parseInt(s, 16);
}

function parseAcsFlags(text: string, file: string, line: number, key: string): AcsName[] {
  const out: AcsName[] = [];
  const seen = new Set<string>();
  for (const tok of text.trim().split(/\s+/)) {
    const m = /^([A-Za-z]+)([+-])$/.exec(tok);
    if (m === null) throw new LspciError(file, line, `${key} ${quote(tok)}: expected flags like SrcValid+ or ReqRedir-`);
    const name = ACS_FLAG_NAMES[m[1]!];
    if (name === undefined) continue; // newer pciutils print more flags (e.g. UnclaimedReqRedir, DirectTrans...): only the seven ACS_BITS count
    seen.add(m[1]!);
    if (m[2] === "+") out.push(name);
  }
  if (!seen.has("SrcValid") || !seen.has("ReqRedir") || !seen.has("CmpltRedir") || !seen.has("UpstreamFwd")) {
    throw new LspciError(file, line, `${key} lacks some of SrcValid, ReqRedir, CmpltRedir, UpstreamFwd: the line is cut`);
  }
  return out.sort((a, b) => ACS_BITS[a] - ACS_BITS[b]);
}

/** Parses the first line of a function: its address (or -P path) and what lspci says it is. */
function parseHeader(text: string, file: string, line: number): LspciFunction {
  const sp = text.indexOf(" ");
  if (sp < 0) throw new LspciError(file, line, `${quote(text)}: a function's first line is an address and a description`);
  const addr = text.slice(0, sp);
  const rest = text.slice(sp + 1);
  const parts = addr.split("/");
  const first = ADDR.exec(parts[0]!);
  if (first === null) throw new LspciError(file, line, `${quote(addr)} is not a PCI address ([DDDD:]BB:DD.F)`);
  let segment = first[1] === undefined ? 0 : parseInt(first[1], 16);
  let bus = parseInt(first[2]!, 16);
  let dev = parseInt(first[3]!, 16);
  let fn = parseInt(first[4]!, 10);
  let busFromPath = false;
  let pathParent: string | null = null;
  if (dev > 31) throw new LspciError(file, line, `${quote(addr)}: device number ${dev} is above 31`);
  for (let i = 1; i < parts.length; i++) {
    const m = PATH_ELEM.exec(parts[i]!);
    if (m === null) throw new LspciError(file, line, `${quote(addr)}: path element ${quote(parts[i]!)} is not [BB:]DD.F`);
    pathParent = `${segment.toString(16).padStart(4, "0")}:${bus.toString(16).padStart(2, "0")}:${dev.toString(16).padStart(2, "0")}.${fn}`;
    busFromPath = m[1] === undefined;
    if (m[1] !== undefined) bus = parseInt(m[1], 16);
    dev = parseInt(m[2]!, 16);
    fn = parseInt(m[3]!, 10);
    if (dev > 31) throw new LspciError(file, line, `${quote(addr)}: device number ${dev} is above 31`);
  }
  segment = segment & 0xffff;
  const colon = rest.indexOf(": ");
  if (colon < 0) throw new LspciError(file, line, `${quote(text)}: expected 'class: description' after the address (the line is cut?)`);
  const clsText = rest.slice(0, colon);
  const clsM = /^(.*?)(?: \[([0-9a-fA-F]{4})\])?$/.exec(clsText)!;
  let desc = rest.slice(colon + 2);
  let progIf: number | null = null;
  const pi = /\s*\(prog-if ([0-9a-fA-F]{2})(?: \[[^\]]*\])?\)\s*$/.exec(desc);
  if (pi !== null) {
    progIf = parseInt(pi[1]!, 16);
    desc = desc.slice(0, pi.index);
  }
  let revision: number | null = null;
  const rv = /\s*\(rev ([0-9a-fA-F]{2})\)\s*$/.exec(desc);
  if (rv !== null) {
    revision = parseInt(rv[1]!, 16);
    desc = desc.slice(0, rv.index);
  }
  let vendor: number | null = null;
  let device: number | null = null;
  const ids = /\s*\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\]\s*$/.exec(desc);
  // -n (numbers only): the class is 'cccc' and the description is 'vvvv:dddd'.
  const numeric = /^[0-9a-fA-F]{4}$/.test(clsText) ? /^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$/.exec(desc.trim()) : null;
  if (ids !== null) {
    vendor = parseInt(ids[1]!, 16);
    device = parseInt(ids[2]!, 16);
    desc = desc.slice(0, ids.index);
  } else if (numeric !== null) {
    vendor = parseInt(numeric[1]!, 16);
    device = parseInt(numeric[2]!, 16);
  }
  return {
    line,
    header: text,
    segment,
    bus,
    dev,
    fn,
    busFromPath,
    pathParent,
    className: numeric !== null ? `Class ${clsText}` : clsM[1]!,
    classCode: numeric !== null ? parseInt(clsText, 16) : clsM[2] === undefined ? null : parseInt(clsM[2], 16),
    progIf,
    description: numeric !== null ? `Class ${clsText}: Device ${desc.trim()}` : `${clsM[1]!}: ${desc.trim()}`,
    vendor,
    device,
    revision,
    subsystem: null,
    subsystemLine: null,
    iommuGroup: null,
    iommuGroupLine: null,
    busLine: null,
    express: null,
    acsCap: null,
    acsCtl: null,
    acsHeaderLine: null,
    accessDenied: null,
    driver: null,
    headerType: null,
    hexLine: null,
  };
}

/** One indented line of a function's block. */
function parseBodyLine(f: LspciFunction, raw: string, file: string, line: number): void {
  const t = raw.trim();
  const depth = /^\t*/.exec(raw)![0].length;
  if (depth === 1) {
    let m: RegExpExecArray | null;
    if ((m = /^Subsystem: (?:.*\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\]|([0-9a-fA-F]{4}):([0-9a-fA-F]{4}))\s*$/.exec(t)) !== null) {
      // -nn: 'Subsystem: name [vvvv:dddd]'; -n: 'Subsystem: vvvv:dddd'
      f.subsystem = [parseInt(m[1] ?? m[3]!, 16), parseInt(m[2] ?? m[4]!, 16)];
      f.subsystemLine = line;
    } else if ((m = /^IOMMU group: ?(.*)$/.exec(t)) !== null) {
      if (!/^[0-9]{1,6}$/.test(m[1]!)) throw new LspciError(file, line, `IOMMU group ${quote(m[1]!)}: expected a number`);
      f.iommuGroup = parseInt(m[1]!, 10);
      f.iommuGroupLine = line;
    } else if (t.startsWith("Bus: ")) {
      m = /^Bus: primary=([0-9a-fA-F]{2}), secondary=([0-9a-fA-F]{2}), subordinate=([0-9a-fA-F]{2})(?:, sec-latency=\d+)?\s*$/.exec(t);
      if (m === null) throw new LspciError(file, line, `${quote(t)}: expected 'Bus: primary=BB, secondary=BB, subordinate=BB'`);
      const [p, s, sub] = [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)];
      f.busLine = { primary: p, secondary: s, subordinate: sub, line };
    } else if (t === "Capabilities: <access denied>") {
      f.accessDenied = line;
    } else if ((m = /^Capabilities: \[[0-9a-fA-F]+(?: v\d+)?\] (.*)$/.exec(t)) !== null) {
      const cap = m[1]!;
      if (cap.startsWith("Express ")) {
        const em = /^Express (?:\(v\d+\) )?(.*?)(?: \(Slot[+-]\))?(?:, (?:MSI|IntMsgNum) [0-9a-fA-F]+)?\s*$/.exec(cap)!;
        const type = EXPRESS_TYPES.find((x) => x === em[1]);
        if (type === undefined) throw new LspciError(file, line, `unknown PCI Express port type ${quote(em[1]!)} (the line is cut?)`);
        f.express = { type, line };
      } else if (cap.startsWith("Access Control Services")) {
        f.acsHeaderLine = line;
      }
    } else if ((m = /^Kernel driver in use: ?(.*)$/.exec(t)) !== null) {
      if (!/^[A-Za-z0-9_.+-]{1,64}$/.test(m[1]!)) throw new LspciError(file, line, `driver name ${quote(m[1]!)}: expected a kernel module name`);
      f.driver = { name: m[1]!, line };
    }
    return;
  }
  if (t.startsWith("ACSCap:")) f.acsCap = { set: parseAcsFlags(t.slice(7), file, line, "ACSCap:"), line };
  else if (t.startsWith("ACSCtl:")) f.acsCtl = { set: parseAcsFlags(t.slice(7), file, line, "ACSCtl:"), line };
}

/** Checks what one function's block must hold once it ends. */
function endBlock(f: LspciFunction, file: string): void {
  if (f.acsHeaderLine !== null && (f.acsCap === null || f.acsCtl === null)) {
    throw new LspciError(file, f.acsHeaderLine, "Access Control Services without both ACSCap: and ACSCtl: lines (the dump is cut?)");
  }
  if (f.acsCap !== null && f.acsCtl === null) throw new LspciError(file, f.acsCap.line, "ACSCap: without ACSCtl: (the dump is cut?)");
  if (f.acsCtl !== null && f.acsCap === null) throw new LspciError(file, f.acsCtl.line, "ACSCtl: without ACSCap:");
  const b = f.busLine;
  if (b !== null) {
    if (b.secondary <= b.primary || b.subordinate < b.secondary) {
      throw new LspciError(file, b.line, `impossible bus range: primary=${hex2(b.primary)}, secondary=${hex2(b.secondary)}, subordinate=${hex2(b.subordinate)} (secondary must be above primary, subordinate at least secondary)`);
    }
    if (!f.busFromPath && b.primary !== f.bus) throw new LspciError(file, b.line, `the bridge sits on bus ${hex2(f.bus)} but says primary=${hex2(b.primary)}`);
  }
}

export function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

/** Parses the dump's text. */
export function parseLspci(text: string, file: string): LspciDump {
  const lines = text.split(/\r?\n/);
  const functions: LspciFunction[] = [];
  let cur: LspciFunction | null = null;
  const close = () => {
    if (cur !== null) endBlock(cur, file);
    cur = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const n = i + 1;
    if (raw.trim() === "") {
      close();
      continue;
    }
    if (raw.startsWith("\t") || raw.startsWith("        ")) {
      if (cur === null) throw new LspciError(file, n, `${quote(raw.trim())}: an indented line outside any function's block`);
      parseBodyLine(cur, raw.replace(/^( {8})+/, (s) => "\t".repeat(s.length / 8)), file, n);
      continue;
    }
    const hx = HEX_LINE.exec(raw);
    if (hx !== null && cur !== null) {
      const f: LspciFunction = cur;
      const off = parseInt(hx[1]!, 16);
      const bytes = hx[2]!.trim().split(" ").map((b) => hexByte(b, file, n, "hex dump"));
      if (off === 0) {
        if (bytes.length < 16) throw new LspciError(file, n, "the first hex line has fewer than 16 bytes (the dump is cut?)");
        f.headerType = bytes[0x0e]!;
        f.hexLine = n;
        const v = bytes[0]! | (bytes[1]! << 8);
        const d = bytes[2]! | (bytes[3]! << 8);
        if (f.vendor !== null && (f.vendor !== v || f.device !== d)) {
          throw new LspciError(file, n, `the hex dump says ${v.toString(16).padStart(4, "0")}:${d.toString(16).padStart(4, "0")}, the function's line ${f.line} says ${f.vendor.toString(16).padStart(4, "0")}:${f.device!.toString(16).padStart(4, "0")}`);
        }
        f.vendor = v;
        f.device = d;
        f.revision ??= bytes[8]!;
        f.classCode ??= (bytes[0x0b]! << 8) | bytes[0x0a]!;
        f.progIf ??= bytes[9]!;
      }
      continue;
    }
    if (!/^[0-9a-fA-F]{2,8}:/.test(raw)) throw new LspciError(file, n, `${quote(raw)} is not lspci -vv output (expected a function's address at the start of the line)`);
    close();
    cur = parseHeader(raw, file, n);
    functions.push(cur);
  }
  close();
  if (functions.length === 0) throw new LspciError(file, Math.max(1, lines.length), "no PCI function in the file (is it lspci -vv output?)");
  return { file, functions };
}
