/**
 * zod's issues as sentences: each says what was expected at the key path and
 * what was found, quotes long values only in part, and for an unknown key or
 * value suggests the closest allowed one. The allowed keys come from the
 * schema at that path, so the suggestion is always a key that is valid there.
 */
import { z } from "zod";
import type { KeyPath, Problem } from "./problem.ts";
import { nouns } from "./nouns.ts";
import { capMessage, describeValue, didYouMean, listOf, quoteString } from "./suggest.ts";

type Schema = z.core.$ZodType;
type Issue = z.core.$ZodIssue;

/** The value at `path` in `raw`, or undefined. */
export function valueAt(raw: unknown, path: KeyPath): unknown {
  let v = raw;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function unwrap(s: Schema): Schema {
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodNullable) s = s.unwrap() as Schema;
    else if (s instanceof z.ZodPipe) s = s.in as Schema;
    else return s;
  }
}

/** The schemas that may apply at `path` (several where a union leaves it open). */
export function schemasAt(root: Schema, path: KeyPath): Schema[] {
  let cur: Schema[] = [root];
  for (const seg of path) {
    const next: Schema[] = [];
    const visit = (s0: Schema) => {
      const s = unwrap(s0);
      if (s instanceof z.ZodUnion) for (const o of s.options as Schema[]) visit(o);
      else if (s instanceof z.ZodObject && typeof seg === "string") {
        const child = (s.shape as Record<string, Schema>)[seg];
        if (child !== undefined) next.push(child);
      } else if (s instanceof z.ZodArray && typeof seg === "number") next.push(s.element as Schema);
      else if (s instanceof z.ZodTuple && typeof seg === "number") {
        const item = (s.def.items as Schema[])[seg];
        if (item !== undefined) next.push(item);
      } else if (s instanceof z.ZodRecord) next.push(s.valueType as Schema);
    };
    for (const s of cur) visit(s);
    cur = next;
    if (cur.length === 0) break;
  }
  return cur;
}

/** The keys a mapping may have at `path`. */
export function keysAt(root: Schema, path: KeyPath): string[] {
  const keys = new Set<string>();
  const visit = (s0: Schema) => {
    const s = unwrap(s0);
    if (s instanceof z.ZodUnion) for (const o of s.options as Schema[]) visit(o);
    else if (s instanceof z.ZodObject) for (const k of Object.keys(s.shape)) keys.add(k);
  };
  for (const s of schemasAt(root, path)) visit(s);
  return [...keys];
}

/** Whether the number's lower bound excludes itself (positive(), gt()). */
function exclusiveMin(s: z.ZodNumber): boolean {
  const checks = (s.def.checks ?? []) as { _zod: { def: { check?: string; inclusive?: boolean } } }[];
  return checks.some((c) => c._zod.def.check === "greater_than" && c._zod.def.inclusive === false);
}

function numberNoun(s: z.ZodNumber): string {
  const int = s.isInt;
  let lo = s.minValue !== null && s.minValue > Number.MIN_SAFE_INTEGER ? s.minValue : null;
  if (lo !== null && int && exclusiveMin(s)) lo += 1;
  const hi = s.maxValue !== null && s.maxValue < Number.MAX_SAFE_INTEGER ? s.maxValue : null;
  const what = int ? "an integer" : "a number";
  if (lo !== null && hi !== null) return `${what} from ${lo} to ${hi}`;
  if (lo === 0) return int ? "a non-negative integer" : "a non-negative number";
  if (lo === 1 && int) return "a positive integer";
  if (lo !== null) return `${what} of at least ${lo}`;
  if (hi !== null) return `${what} of at most ${hi}`;
  return what;
}

/** What a schema accepts, in a few words. */
export function noun(s0: Schema): string {
  const named = nouns.get(s0)?.noun;
  if (named !== undefined) return named;
  if (s0 instanceof z.ZodNullable) return `${noun(s0.unwrap() as Schema)} or null`;
  if (s0 instanceof z.ZodOptional || s0 instanceof z.ZodDefault) return noun(s0.unwrap() as Schema);
  const s = s0;
  if (s instanceof z.ZodString) return (s.minLength ?? 0) >= 1 ? "a non-empty string" : "a string";
  if (s instanceof z.ZodNumber) return numberNoun(s);
  if (s instanceof z.ZodBoolean) return "true or false";
  if (s instanceof z.ZodNull) return "null";
  if (s instanceof z.ZodEnum) return `one of ${listOf(s.options.map(String))}`;
  if (s instanceof z.ZodLiteral) return [...s.values].map((v) => JSON.stringify(v)).join(" or ");
  if (s instanceof z.ZodTuple) return `a list of ${(s.def.items as Schema[]).length} items`;
  if (s instanceof z.ZodArray) {
    const item = noun(s.element as Schema);
    const m = /^an? ([\w -]+)$/.exec(item);
    return m === null ? "a list" : `a list of ${m[1]!}s`;
  }
  if (s instanceof z.ZodObject || s instanceof z.ZodRecord) return "a mapping";
  if (s instanceof z.ZodUnion) return (s.options as Schema[]).map(noun).join(", or ");
  if (s instanceof z.ZodPipe) return noun(s.in as Schema);
  return "a value";
}

const TYPE_NOUNS: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
  record: "a mapping",
  tuple: "a list",
  null: "null",
};

/** The words for what is expected at `path`: from the schema there, else from zod's `expected`. */
function expectedAt(root: Schema, path: KeyPath, fallback: string | undefined): string {
  const here = schemasAt(root, path);
  if (here.length === 1) return noun(here[0]!);
  if (here.length > 1) return here.map(noun).join(", or ");
  return TYPE_NOUNS[fallback ?? ""] ?? `${fallback ?? "a value"}`;
}

function bound(n: number | bigint): string {
  return n === Number.MAX_SAFE_INTEGER ? "2^53-1" : String(n);
}

/** Whether a union alternative failed only because the value was of another kind. */
function wrongKind(issues: readonly Issue[]): boolean {
  return issues.length === 1 && issues[0]!.path.length === 0 && (issues[0]!.code === "invalid_type" || issues[0]!.code === "invalid_value");
}

function pathOf(iss: Issue): KeyPath {
  return iss.path.filter((s): s is string | number => typeof s !== "symbol");
}

/**
 * The problems one zod issue stands for. `base` prefixes the issue's path (a
 * union alternative's issues are relative to the union).
 */
export function issueProblems(iss: Issue, raw: unknown, root: Schema, base: KeyPath = []): Problem[] {
  const path = [...base, ...pathOf(iss)];
  const found = "input" in iss && iss.input !== undefined ? iss.input : valueAt(raw, path);
  const foundText = describeValue(found);
  const one = (message: string, p: KeyPath = path): Problem[] => [{ path: p, message: capMessage(message) }];
  switch (iss.code) {
    case "unrecognized_keys": {
      const allowed = keysAt(root, path);
      return iss.keys.map((k) => {
        const hint = didYouMean(k, allowed);
        const msg = hint !== "" ? `unknown key ${quoteString(k, 40)}${hint}` : `unknown key ${quoteString(k, 40)}; expected one of ${listOf(allowed, 10)}`;
        return { path: [...path, k], message: capMessage(msg) };
      });
    }
    case "invalid_type": {
      const expected = expectedAt(root, path, iss.expected);
      if (found === undefined) return one(`expected ${expected}, found nothing (this key is required)`);
      return one(`expected ${expected}, found ${foundText}`);
    }
    case "invalid_value": {
      const values = iss.values.map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
      const hint = typeof found === "string" ? didYouMean(found, values) : "";
      const expected = values.length === 1 ? JSON.stringify(iss.values[0]) : `one of ${listOf(values, 12)}`;
      return one(`expected ${expected}, found ${foundText}${hint}`);
    }
    case "too_small": {
      const min = bound(iss.minimum as number);
      if (iss.origin === "string") return one(Number(iss.minimum) === 1 ? `expected a non-empty string, found ${foundText}` : `expected at least ${min} characters, found ${foundText}`);
      if (iss.origin === "array" || iss.origin === "set") return one(`expected at least ${min} item${Number(iss.minimum) === 1 ? "" : "s"}, found ${foundText}${why(iss.message)}`);
      const what = expectedAt(root, path, "number");
      return one(`expected ${what}${/\d/.test(what) || /positive|non-negative/.test(what) ? "" : ` (at least ${min})`}, found ${foundText}`);
    }
    case "too_big": {
      const max = bound(iss.maximum as number);
      if (iss.origin === "string") return one(`expected at most ${max} characters, found ${foundText}`);
      if (iss.origin === "array" || iss.origin === "set") return one(`expected at most ${max} items, found ${foundText}${why(iss.message)}`);
      const what = expectedAt(root, path, "number");
      return one(`expected ${what}${/ to -?\d+$/.test(what) ? "" : ` (at most ${max})`}, found ${foundText}`);
    }
    case "invalid_format": {
      if (iss.message.startsWith("expected ")) return one(`${iss.message}, found ${foundText}`);
      return one(`expected ${expectedAt(root, path, "string")} in the ${iss.format} format, found ${foundText}`);
    }
    case "not_multiple_of":
      return one(`expected a multiple of ${String(iss.divisor)}, found ${foundText}`);
    case "invalid_key": {
      const keyIssues = iss.issues.flatMap((k) => issueProblems(k as Issue, undefined, root, []));
      const why = keyIssues[0]?.message ?? "not a valid key";
      return one(`a key here must be valid: ${why}`);
    }
    case "invalid_union": {
      const near = iss.errors.filter((alt) => !wrongKind(alt as Issue[]));
      if (near.length >= 1) {
        // The value is of a kind some alternative takes: say what is wrong with it there.
        return (near[0] as Issue[]).flatMap((i) => issueProblems(i, raw, root, path));
      }
      return one(`expected ${expectedAt(root, path, undefined)}, found ${foundText}${found === undefined ? " (this key is required)" : ""}`);
    }
    case "custom":
      return one(iss.message);
    default:
      return one(`${(iss as { message: string }).message}, found ${foundText}`);
  }
}

/** A schema's own reason for a size bound (`.min(2, "why")`), after the found value; zod's default text says nothing more. */
function why(message: string): string {
  return /^Too (small|big)\b/.test(message) ? "" : ` (${message})`;
}
