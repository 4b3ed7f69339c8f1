/**
 * Words for messages about bad input: "did you mean" by edit distance, and
 * values quoted in part so that no message echoes a 100k-character string.
 */

/** A quoted value is cut after this many characters. */
export const QUOTE_MAX = 80;

export { closest, didYouMean, editDistance } from "../../lib/did-you-mean.ts";

/** A string in quotes, cut after QUOTE_MAX characters with its total length. */
export function quoteString(s: string, max = QUOTE_MAX): string {
  const shown = s.length > max ? `${s.slice(0, max)}…` : s;
  const esc = shown.replace(/[\n\r\t]/g, (c) => (c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\t"));
  return s.length > max ? `'${esc}' (${s.length} characters)` : `'${esc}'`;
}

/** What a value is, in a few words, for "found ..." (never deep, never long). */
export function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (typeof v === "string") return v === "" ? "an empty string" : quoteString(v);
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : v > 0 ? "infinity" : v < 0 ? "-infinity" : "NaN";
  if (typeof v === "boolean") return String(v);
  if (typeof v === "bigint") return `${v}`;
  if (ArrayBuffer.isView(v)) return "binary data (a YAML !!binary value)";
  if (v instanceof Date) return "a date";
  if (Array.isArray(v)) return v.length === 0 ? "an empty list" : `a list of ${v.length} item${v.length === 1 ? "" : "s"}`;
  if (typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 0) return "an empty mapping";
    const shown = keys.slice(0, 3).map((k) => quoteString(k, 30));
    return `a mapping with key${keys.length === 1 ? "" : "s"} ${shown.join(", ")}${keys.length > 3 ? `, … (${keys.length} keys)` : ""}`;
  }
  return typeof v;
}

/** A list of names for a message, cut after `max` of them. */
export function listOf(names: readonly string[], max = 8): string {
  const shown = names.slice(0, max).join(", ");
  return names.length > max ? `${shown}, … (${names.length} in all)` : shown;
}

/** A message cut to `max` characters, whatever it says. */
export function capMessage(s: string, max = 300): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
