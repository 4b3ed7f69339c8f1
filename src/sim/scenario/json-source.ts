/**
 * JSON scenario text to plain data: `JSON.parse` (fast and strict: no
 * trailing commas, comments or YAML tags), with positions computed from the
 * text only when a message needs one. A syntax error is located by a small
 * scanner of our own, so the message says what was expected and found
 * without echoing the text.
 */
import type { ParsedSource } from "./yaml-source.ts";
import { ScenarioError, type KeyPath } from "./problem.ts";
import { quoteString } from "./suggest.ts";

const WS = new Set([0x20, 0x0a, 0x0d, 0x09]);

function ws(t: string, i: number): number {
  while (i < t.length && WS.has(t.charCodeAt(i))) i++;
  return i;
}

/** The end of the string starting at `i` (just past its closing quote), or -1 if it is not a valid JSON string. */
function stringEnd(t: string, i: number): number {
  for (let j = i + 1; j < t.length; j++) {
    const c = t.charCodeAt(j);
    if (c === 0x22) return j + 1;
    if (c < 0x20) return -1;
    if (c === 0x5c) {
      const e = t[j + 1];
      if (e === "u") {
        if (!/^[0-9a-fA-F]{4}$/.test(t.slice(j + 2, j + 6))) return -1;
        j += 5;
      } else if (e !== undefined && '"\\/bfnrt'.includes(e)) j++;
      else return -1;
    }
  }
  return -1;
}

const NUMBER = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

/** The end of the scalar (string, number, literal) at `i`, or -1. */
function scalarEnd(t: string, i: number): number {
  const c = t[i];
  if (c === '"') return stringEnd(t, i);
  for (const lit of ["true", "false", "null"]) if (t.startsWith(lit, i)) return i + lit.length;
  NUMBER.lastIndex = i;
  return NUMBER.test(t) ? NUMBER.lastIndex : -1;
}

function foundAt(t: string, i: number): string {
  if (i >= t.length) return "the end of the text";
  const c = t[i]!;
  if (c === "!") return "'!' (a YAML tag; JSON has none)";
  if (c === "/" || c === "#") return `'${c}' (a comment; JSON has none)`;
  if (c === "'") return "a single quote (JSON strings take double quotes)";
  if (/[{}[\]:,]/.test(c)) return `'${c}'`;
  const word = /^[^\s{}[\]:,]{1,24}/.exec(t.slice(i, i + 24))?.[0] ?? c;
  return quoteString(word, 24);
}

/** The first syntax error of a JSON text: its offset and sentence, or null when the text is valid JSON. */
export function jsonSyntaxError(t: string): { offset: number; message: string } | null {
  const err = (offset: number, expected: string) => ({ offset, message: `not valid JSON: expected ${expected}, found ${foundAt(t, offset)}` });
  const stack: string[] = [];
  let i = ws(t, 0);
  for (;;) {
    // A value starts at i.
    const c = t[i];
    if (c === "{") {
      stack.push("}");
      i = ws(t, i + 1);
      if (t[i] !== "}") {
        if (t[i] !== '"') return err(i, "a double-quoted key or '}'");
        const end = stringEnd(t, i);
        if (end < 0) return err(i, "a valid string");
        i = ws(t, end);
        if (t[i] !== ":") return err(i, "':' after the key");
        i = ws(t, i + 1);
        continue;
      }
    } else if (c === "[") {
      stack.push("]");
      i = ws(t, i + 1);
      if (t[i] !== "]") continue;
    } else {
      const end = scalarEnd(t, i);
      if (end < 0) return err(i, c === '"' ? "a valid string (control characters and unknown escapes are not allowed)" : "a JSON value");
      i = end;
      i = ws(t, i);
      // After a value: close containers or move to the next member/element.
      if (stack.length === 0) return i < t.length ? err(i, "the end of the document") : null;
    }
    // t[i] closes the container just opened empty, or we are after a value.
    for (;;) {
      const close = stack.at(-1);
      if (close === undefined) return i < t.length ? err(i, "the end of the document") : null;
      if (t[i] === close) {
        stack.pop();
        i = ws(t, i + 1);
        if (stack.length === 0) return i < t.length ? err(i, "the end of the document") : null;
        continue;
      }
      if (t[i] !== ",") return err(i, `',' or '${close}'`);
      i = ws(t, i + 1);
      if (close === "}") {
        if (t[i] !== '"') return err(i, t[i] === "}" ? "a double-quoted key (JSON allows no trailing comma)" : "a double-quoted key");
        const end = stringEnd(t, i);
        if (end < 0) return err(i, "a valid string");
        i = ws(t, end);
        if (t[i] !== ":") return err(i, "':' after the key");
        i = ws(t, i + 1);
      } else if (t[i] === "]") return err(i, "a value (JSON allows no trailing comma)");
      break;
    }
  }
}

/** The end of the value starting at `i` in valid JSON. */
function skipValue(t: string, i: number): number {
  const c = t[i];
  if (c !== "{" && c !== "[") return scalarEnd(t, i);
  let depth = 0;
  for (; i < t.length; i++) {
    const d = t.charCodeAt(i);
    if (d === 0x22) i = stringEnd(t, i) - 1;
    else if (d === 0x7b || d === 0x5b) depth++;
    else if (d === 0x7d || d === 0x5d) {
      if (--depth === 0) return i + 1;
    }
  }
  return t.length;
}

/** The offset of the node at `path` in valid JSON text: a member's key, an element's start (or the deepest existing ancestor). */
export function jsonOffsetOf(t: string, path: KeyPath): number {
  let i = ws(t, 0);
  let result = i;
  for (const seg of path) {
    if (t[i] === "{" && typeof seg === "string") {
      i = ws(t, i + 1);
      let found = false;
      while (t[i] === '"') {
        const keyStart = i;
        const end = stringEnd(t, i);
        const key = JSON.parse(t.slice(i, end)) as string;
        i = ws(t, ws(t, end) + 1);
        if (key === seg) {
          result = keyStart;
          found = true;
          break;
        }
        i = ws(t, skipValue(t, i));
        if (t[i] === ",") i = ws(t, i + 1);
      }
      if (!found) return result;
    } else if (t[i] === "[" && typeof seg === "number") {
      i = ws(t, i + 1);
      for (let n = 0; n < seg && t[i] !== "]"; n++) {
        i = ws(t, skipValue(t, i));
        if (t[i] === ",") i = ws(t, i + 1);
      }
      if (t[i] === "]" || i >= t.length) return result;
      result = i;
    } else {
      return result;
    }
  }
  return result;
}

function lineCol(t: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = t.indexOf("\n"); i >= 0 && i < offset; i = t.indexOf("\n", i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: offset - start + 1 };
}

/** Parses JSON scenario text; throws ScenarioError with the position of a syntax error. */
export function parseJsonSource(text: string, file: string, sniffed = false): ParsedSource {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    const e = jsonSyntaxError(text) ?? { offset: 0, message: "not valid JSON" };
    const why = sniffed ? " (text that starts with { or [ is read as JSON)" : "";
    throw new ScenarioError(file, [{ path: [], message: e.message + why, ...lineCol(text, e.offset) }]);
  }
  return { raw, locate: (path) => lineCol(text, jsonOffsetOf(text, path)) };
}
