/**
 * Summary statistics shared by the benchmarks. On a shared machine, noise
 * only ever adds time, so each figure is printed as the median of the timed
 * runs with the best run beside it.
 */

/** The middle value (upper middle for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** The fastest run. */
export function best(xs: readonly number[]): number {
  return Math.min(...xs);
}

