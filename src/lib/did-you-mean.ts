/**
 * "Did you mean": the names closest to a misspelt one, by edit distance.
 * Every layer's messages about unknown names use it.
 */

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
