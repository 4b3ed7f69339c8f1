/** The search's per-node typed arrays (dfs.ts, dpor.ts): grown in chunks, so a step allocates nothing. */

/** The node arrays grow by this many entries at a time. */
export const CHUNK = 256;

/** `a`, or a copy at least `n + 1` long (doubling) when `a` is too short. */
export function grow<T extends Int32Array | Int8Array>(a: T, n: number): T {
  if (n < a.length) return a;
  const b = new (a.constructor as new (n: number) => T)(Math.max(a.length * 2, n + CHUNK));
  b.set(a);
  return b;
}
