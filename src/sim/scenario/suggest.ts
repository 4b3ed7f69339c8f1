/**
 * Words for messages about bad input: "did you mean" by edit distance, and
 * values quoted in part so that no message echoes a 100k-character string.
 */

/** A quoted value is cut after this many characters. */
export const QUOTE_MAX = 80;

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions), or Infinity past `max`. */
export function editDistance(a: string, b: string, max = Infinity): number {
  if (Math.abs(a.length - b.length) > max) return Infinity;
  const n = b.length;
  let prev2 = new Array<number>(n + 1).fill(0);
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  let cur = new Array<number>(n + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    let rowMin = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur[j] = d;
      if (d < rowMin) rowMin = d;
    }
    if (rowMin > max) return Infinity;
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[n]!;
}

const norm = (s: string) => s.toLowerCase().replace(/[-_ ]/g, "");

/**
 * The candidates closest to `word`, if any is close enough to be a likely
 * slip: a case or `-`/`_` difference, or an edit distance of at most a third
 * of the word's length (at least 1). Long words and huge lists are not searched.
 */
export function closest(word: string, candidates: Iterable<string>, limit = 2000): string[] {
  if (word.length > 200) return [];
  const w = norm(word);
  const max = Math.max(1, Math.floor(word.length / 3));
  let best = Infinity;
  let out: string[] = [];
  let seen = 0;
  for (const c of candidates) {
    if (++seen > limit) break;
    if (c === word) continue;
    const d = norm(c) === w ? 0 : editDistance(word, c, Math.min(max, best));
    // Replacing every character is not a slip ('b' is not a misspelt 'a').
    if (d > max || d > best || (d > 0 && d >= Math.min(word.length, c.length))) continue;
    if (d < best) {
      best = d;
      out = [];
    }
    out.push(c);
  }
  return out.slice(0, 3);
}

/** "; did you mean 'x'?" or "" when nothing is close. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  if (c.length === 0) return "";
  return `; did you mean ${c.map((x) => `'${x}'`).join(" or ")}?`;
}

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
