/**
 * Expectations: a partial match against the snapshot. Only the keys written
 * are compared; lists of names compare as sets; `groups` asks that each
 * listed set be exactly one group's devices.
 */
import { EXPECT_DOMAIN_KINDS, parseSize, type ExpectSpec } from "./scenario/schema.ts";
import type { Snapshot } from "./snapshot.ts";

function fmt(v: unknown): string {
  return JSON.stringify(v);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(b);
  return a.every((x) => s.has(x));
}

/** Compares `expected` against `actual` where `expected` has keys; pushes one message per difference. */
function partial(expected: unknown, actual: unknown, path: string, out: string[]): void {
  if (expected === null || typeof expected !== "object") {
    if (expected !== actual) out.push(`${path}: expected ${fmt(expected)}, got ${fmt(actual)}`);
    return;
  }
  if (Array.isArray(expected)) {
    const ok =
      Array.isArray(actual) &&
      (expected.every((x) => typeof x === "string") && actual.every((x) => typeof x === "string")
        ? sameSet(expected as string[], actual as string[])
        : fmt(expected) === fmt(actual));
    if (!ok) out.push(`${path}: expected ${fmt(expected)}, got ${fmt(actual)}`);
    return;
  }
  if (actual === null || typeof actual !== "object") {
    out.push(`${path}: expected ${fmt(expected)}, got ${fmt(actual)}`);
    return;
  }
  for (const [key, v] of Object.entries(expected)) partial(v, (actual as Record<string, unknown>)[key], `${path}.${key}`, out);
}

/** Expected strings each match (as substrings) some actual message; [] means none at all. */
function messages(expected: readonly string[], actual: readonly string[], what: string, out: string[]): void {
  if (expected.length === 0) {
    if (actual.length > 0) out.push(`${what}: expected none, got ${actual.length}:\n      ${actual.join("\n      ")}`);
    return;
  }
  for (const e of expected) if (!actual.some((a) => a.includes(e))) out.push(`${what}: none matches ${fmt(e)} (got ${fmt(actual)})`);
}

/**
 * Compares an expected domain with a device's or group's current domain id:
 * `blocked` / `identity` ask for a live domain of that type (a group's
 * blocking domain, a driver's static identity domain, ...), a name stands for
 * the id of the domain a domain_alloc event gave it, a number is an id.
 */
function matchDomain(want: string | number | null, actual: number | null, snap: Snapshot, path: string, out: string[]): void {
  const kind = EXPECT_DOMAIN_KINDS.find((k) => k === want);
  if (kind !== undefined) {
    const d = actual === null ? undefined : snap.domains.find((x) => x.id === actual);
    if (d?.type !== kind) out.push(`${path}: expected ${kind === "identity" ? "an" : "a"} ${kind} domain, got ${actual === null ? "none" : `domain ${actual} (${d?.type ?? "not live"})`}`);
    return;
  }
  const id = typeof want === "string" ? (snap.user_domains[want]?.id ?? `(no domain '${want}')`) : want;
  if (id !== actual) out.push(`${path}: expected ${fmt(id)}, got ${fmt(actual)}`);
}

export function matchExpect(x: ExpectSpec, snap: Snapshot): string[] {
  const out: string[] = [];
  for (const [name, want] of Object.entries(x.devices ?? {})) {
    const d = snap.devices.find((dd) => dd.name === name)!;
    const { domain, ...rest } = want;
    partial(rest, d, `devices.${name}`, out);
    if (domain !== undefined) matchDomain(domain, d.domain, snap, `devices.${name}.domain`, out);
  }
  x.groups?.forEach((g, i) => {
    const want = Array.isArray(g) ? { devices: g } : g;
    const found = snap.groups.find((sg) => sameSet(want.devices, sg.devices));
    if (found === undefined) {
      const where = want.devices.map((n) => {
        const sg = snap.groups.find((gg) => gg.devices.includes(n));
        return sg === undefined ? `${n} is in no group` : `${n} is in group ${sg.id} ${fmt(sg.devices)}`;
      });
      out.push(`groups[${i}]: no group is exactly ${fmt(want.devices)}; ${where.join("; ")}`);
      return;
    }
    const { devices: _devices, domain, ...rest } = want;
    partial(rest, found, `groups[${i}] (group ${found.id})`, out);
    if (domain !== undefined) matchDomain(domain, found.domain, snap, `groups[${i}] (group ${found.id}).domain`, out);
  });
  if (x.group_count !== undefined && snap.groups.length !== x.group_count) {
    out.push(`group_count: expected ${x.group_count}, got ${snap.groups.length}`);
  }
  for (const [name, want] of Object.entries(x.iommus ?? {})) {
    partial(want, snap.iommus.find((m) => m.name === name), `iommus.${name}`, out);
  }
  for (const [bus, want] of Object.entries(x.bus_ops ?? {})) {
    const got = snap.bus_ops[bus] ?? null;
    if (got !== want) out.push(`bus_ops.${bus}: expected ${fmt(want)}, got ${fmt(got)}`);
  }
  for (const [ctx, want] of Object.entries(x.iommufd ?? {})) {
    const got = snap.iommufd[ctx];
    if (got === undefined) {
      out.push(`iommufd.${ctx}: no iommufd event opened a context ${fmt(ctx)}`);
      continue;
    }
    if (want.closed !== undefined && got.closed !== want.closed) out.push(`iommufd.${ctx}.closed: expected ${want.closed}, got ${got.closed}`);
    if (want.objects !== undefined && got.objects.length !== want.objects) {
      out.push(`iommufd.${ctx}.objects: expected ${want.objects}, got ${got.objects.length} ${fmt(got.objects.map((o) => o.name ?? `${o.type} ${o.id}`))}`);
    }
    if (want.pinned_pages !== undefined && got.pinned_pages !== want.pinned_pages) out.push(`iommufd.${ctx}.pinned_pages: expected ${want.pinned_pages}, got ${got.pinned_pages}`);
    for (const [ioas, areas] of Object.entries(want.areas ?? {})) {
      const w = areas.map((a) => ({ iova: parseSize(a.iova), length: parseSize(a.length) }));
      const g = got.areas[ioas];
      if (g === undefined) out.push(`iommufd.${ctx}.areas.${ioas}: no live IOAS of the context is named ${fmt(ioas)}`);
      else if (JSON.stringify(g) !== JSON.stringify(w)) out.push(`iommufd.${ctx}.areas.${ioas}: expected ${fmt(w)}, got ${fmt(g)}`);
    }
  }
  for (const [name, want] of Object.entries(x.domains ?? {})) {
    partial(want, snap.user_domains[name], `domains.${name}`, out);
  }
  if (x.deferred !== undefined && !sameSet(x.deferred, snap.deferred)) {
    out.push(`deferred: expected ${fmt(x.deferred)}, got ${fmt(snap.deferred)}`);
  }
  if (x.violations !== undefined) messages(x.violations, snap.violations, "violations", out);
  if (x.warnings !== undefined) messages(x.warnings, snap.warnings, "warnings", out);
  if (x.bugs !== undefined) messages(x.bugs, snap.bugs, "bugs", out);
  if (x.findings !== undefined) messages(x.findings, snap.findings, "findings", out);
  return out;
}
