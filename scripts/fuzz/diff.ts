/**
 * What changed between two snapshots, as paths: `devices[].probe_error`,
 * `domains[+]`, `warnings[+]`. Lists of records are matched by their `id`
 * (groups, domains) or `name` (instances, devices); records keyed by name
 * (user_domains, dma_handles, iommufd contexts) likewise; lists of strings are compared as
 * multisets, so an added warning is `warnings[+]` wherever it lands. Each
 * change comes with a concrete sentence for the report.
 */

export interface Change {
  /** The path with keys generalised, for matching and classing: `domains[].tlb.sync`. */
  path: string;
  /** The concrete change: `domains[id=3].tlb.sync: 2 -> 3`. */
  detail: string;
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? "undefined";
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

function keyOf(x: unknown): string | null {
  if (x === null || typeof x !== "object" || Array.isArray(x)) return null;
  const o = x as Record<string, unknown>;
  if (typeof o.id === "number") return `id=${o.id}`;
  if (typeof o.name === "string") return `name=${o.name}`;
  return null;
}

function diffValue(a: unknown, b: unknown, path: string, concrete: string, out: Change[]): void {
  if (a === b) return;
  if (Array.isArray(a) && Array.isArray(b)) return diffArray(a, b, path, concrete, out);
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    return diffRecord(a as Record<string, unknown>, b as Record<string, unknown>, path, concrete, out);
  }
  out.push({ path, detail: `${concrete}: ${short(a)} -> ${short(b)}` });
}

function diffRecord(a: Record<string, unknown>, b: Record<string, unknown>, path: string, concrete: string, out: Change[]): void {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const sep = path === "" ? "" : ".";
    diffValue(a[k], b[k], `${path}${sep}${k}`, `${concrete}${sep}${k}`, out);
  }
}

/** Records keyed by name (user_domains, dma_handles, iommufd): element paths are `[]`. */
export function diffKeyed(a: Record<string, unknown>, b: Record<string, unknown>, path: string, out: Change[]): void {
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (!(k in a)) out.push({ path: `${path}[+]`, detail: `${path}[${k}] added: ${short(b[k])}` });
    else if (!(k in b)) out.push({ path: `${path}[-]`, detail: `${path}[${k}] removed: ${short(a[k])}` });
    else diffValue(a[k], b[k], `${path}[]`, `${path}[${k}]`, out);
  }
}

function diffArray(a: unknown[], b: unknown[], path: string, concrete: string, out: Change[]): void {
  const keyed = [...a, ...b].length > 0 && [...a, ...b].every((x) => keyOf(x) !== null);
  if (keyed) {
    const am = new Map(a.map((x) => [keyOf(x)!, x] as const));
    const bm = new Map(b.map((x) => [keyOf(x)!, x] as const));
    for (const [k, x] of am) {
      if (!bm.has(k)) out.push({ path: `${path}[-]`, detail: `${concrete}[${k}] removed: ${short(x)}` });
      else diffValue(x, bm.get(k), `${path}[]`, `${concrete}[${k}]`, out);
    }
    for (const [k, x] of bm) if (!am.has(k)) out.push({ path: `${path}[+]`, detail: `${concrete}[${k}] added: ${short(x)}` });
    return;
  }
  if ([...a, ...b].every((x) => typeof x === "string")) {
    const count = new Map<string, number>();
    for (const x of a as string[]) count.set(x, (count.get(x) ?? 0) + 1);
    for (const x of b as string[]) count.set(x, (count.get(x) ?? 0) - 1);
    for (const [x, n] of count) {
      if (n < 0) out.push({ path: `${path}[+]`, detail: `${concrete} gained ${short(x)}` });
      if (n > 0) out.push({ path: `${path}[-]`, detail: `${concrete} lost ${short(x)}` });
    }
    return;
  }
  // Other lists (numbers, recent invalidations): compared whole.
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, detail: `${concrete}: ${short(a)} -> ${short(b)}` });
}

/** Every change from snapshot `a` to snapshot `b` (both without the event log). */
export function diffSnapshots(a: Record<string, unknown>, b: Record<string, unknown>): Change[] {
  const out: Change[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (k === "user_domains" || k === "dma_handles" || k === "iommufd") diffKeyed(a[k] as Record<string, unknown>, b[k] as Record<string, unknown>, k, out);
    else diffValue(a[k], b[k], k, k, out);
  }
  return out;
}

/** Whether `allowed` covers `path`: equal, or a prefix of it at a `.` or `[`. */
export function covers(allowed: string, path: string): boolean {
  if (allowed === path) return true;
  if (!path.startsWith(allowed)) return false;
  const c = path[allowed.length];
  return c === "." || (c === "[" && !allowed.endsWith("]"));
}
