/**
 * A machine imported from firmware (a device tree, ACPI tables) as scenario
 * data and as YAML: one flow mapping per instance and device, each with
 * comment lines naming where in the firmware it came from.
 */

/** One `iommus` or `devices` entry and the comment lines written above it. */
export interface FwEntry {
  data: Record<string, unknown>;
  comment: string[];
}

export interface FwImport {
  /** What the command imported: `dtb FILE` or `acpi DIR`. */
  source: string;
  name: string;
  /** Comment lines at the top of the YAML. */
  header: string[];
  boot: Record<string, unknown>;
  iommus: FwEntry[];
  devices: FwEntry[];
  /** `drivers` entries (from an lspci dump merged with ACPI tables). */
  drivers?: FwEntry[];
  /** `events` (the lspci dump's own groups as an expectation). */
  events?: FwEntry[];
  /** Comment lines at the end: what the firmware has that the scenario does not carry. */
  trailer: string[];
  warnings: string[];
}

/** The scenario as plain data (what the YAML says, without its comments). */
export function fwScenarioData(imp: FwImport): Record<string, unknown> {
  return {
    name: imp.name,
    boot: imp.boot,
    iommus: imp.iommus.map((e) => e.data),
    devices: imp.devices.map((e) => e.data),
    ...(imp.drivers !== undefined && imp.drivers.length > 0 ? { drivers: imp.drivers.map((e) => e.data) } : {}),
    ...(imp.events !== undefined && imp.events.length > 0 ? { events: imp.events.map((e) => e.data) } : {}),
  };
}

const PLAIN = /^[A-Za-z_][\w.@,/+-]*$/;
const RESERVED = new Set(["true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"]);
/** A double-quoted YAML string: JSON's escapes, and C1 controls escaped too (YAML does not print them). */
export const yamlQuote = (s: string) => JSON.stringify(s).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
const scalar = (s: string) => (PLAIN.test(s) && !RESERVED.has(s.toLowerCase()) ? s : yamlQuote(s));
/** Numbers at or above this are written in hex. */
const HEX_FROM = 0x100;

/** A value as YAML flow text. */
export function flowYaml(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(flowYaml).join(", ")}]`;
  if (typeof x === "string") return scalar(x);
  if (typeof x === "number") return x >= HEX_FROM && Number.isInteger(x) ? `0x${x.toString(16)}` : String(x);
  if (x !== null && typeof x === "object") {
    return `{${Object.entries(x as Record<string, unknown>)
      .map(([k, v]) => `${/^[A-Za-z_][\w-]*$/.test(k) ? k : yamlQuote(k)}: ${flowYaml(v)}`)
      .join(", ")}}`;
  }
  return String(x);
}

/** Comment lines; control characters firmware strings may carry are shown as '?'. */
const printable = (l: string) => Array.from(l, (c) => (c.charCodeAt(0) < 0x20 || (c.charCodeAt(0) >= 0x7f && c.charCodeAt(0) <= 0x9f) ? "?" : c)).join("");
const comment = (indent: string, lines: readonly string[]) => lines.map((l) => `${indent}# ${printable(l)}`);

export function fwScenarioYaml(imp: FwImport): string {
  const out: string[] = [...comment("", imp.header)];
  out.push(`name: ${yamlQuote(imp.name)}`);
  out.push(`boot: ${flowYaml(imp.boot)}`);
  out.push(imp.iommus.length === 0 ? "iommus: []" : "iommus:");
  for (const e of imp.iommus) out.push(...comment("  ", e.comment), `  - ${flowYaml(e.data)}`);
  out.push(imp.devices.length === 0 ? "devices: []" : "devices:");
  for (const e of imp.devices) out.push(...comment("  ", e.comment), `  - ${flowYaml(e.data)}`);
  for (const [key, list] of [["drivers", imp.drivers], ["events", imp.events]] as const) {
    if (list === undefined || list.length === 0) continue;
    out.push(`${key}:`);
    for (const e of list) out.push(...comment("  ", e.comment), `  - ${flowYaml(e.data)}`);
  }
  out.push(...comment("", imp.trailer));
  return out.join("\n") + "\n";
}

/** Hands out names unique within one list: the preferred one, else the fallback, else with a counter. */
export class UniqueNames {
  private readonly used = new Set<string>();
  take(preferred: string, fallback: string): string {
    for (const n of [preferred, fallback]) {
      if (!this.used.has(n)) {
        this.used.add(n);
        return n;
      }
    }
    for (let i = 2; ; i++) {
      const n = `${fallback}#${i}`;
      if (!this.used.has(n)) {
        this.used.add(n);
        return n;
      }
    }
  }
}
