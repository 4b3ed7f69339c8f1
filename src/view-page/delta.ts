/**
 * Applies the deltas of a steps document (`run --steps --json`,
 * src/cli/steps.ts, docs/view.md): each step's snapshot is the one before
 * with the keys its delta names changed.
 */
import type { Delta } from "../cli/steps.ts";

/** The key of each keyed list's entries: src/cli/steps.ts KEYED, which the page may not import at run time (test/layers.test.ts). */
const KEYED: Record<string, string> = { devices: "name", iommus: "name", groups: "id", domains: "id" };

type Row = Record<string, unknown>;

function applyKeyed(before: Row[], c: { upsert: unknown[]; remove: (string | number)[]; order?: (string | number)[] }, key: string): Row[] {
  const byKey = new Map<unknown, Row>(before.map((r) => [r[key], r]));
  for (const k of c.remove) byKey.delete(k);
  const added: Row[] = [];
  for (const u of c.upsert as Row[]) {
    if (!byKey.has(u[key])) added.push(u);
    byKey.set(u[key], u);
  }
  if (c.order !== undefined) return c.order.map((k) => byKey.get(k)!);
  const removed = new Set(c.remove);
  return [...before.filter((r) => !removed.has(r[key] as string | number)).map((r) => byKey.get(r[key])!), ...added];
}

/** The snapshot after a step: `prev` (not changed) with `delta` applied. */
export function applyDelta<T extends object>(prev: T, delta: Delta): T {
  const out = { ...prev } as Row;
  for (const [k, c] of Object.entries(delta)) {
    if ("set" in c) out[k] = c.set;
    else if ("append" in c) out[k] = [...(out[k] as unknown[]), ...c.append];
    else out[k] = applyKeyed(out[k] as Row[], c, KEYED[k] ?? "name");
  }
  return out as T;
}

/** Every step's snapshot, from the first step's whole one and the deltas after it. */
export function expandSteps<T extends object>(steps: readonly { snapshot?: T; delta?: Delta }[]): T[] {
  const out: T[] = [];
  for (const s of steps) {
    if (s.snapshot !== undefined) out.push(s.snapshot);
    else out.push(applyDelta(out[out.length - 1]!, s.delta ?? {}));
  }
  return out;
}
