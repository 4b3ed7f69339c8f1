/**
 * Shrinking a reproducer: fewer events, fewer devices, drivers and
 * instances, fewer optional properties, for as long as the same problem
 * (same class key) still happens at the last event. Every candidate must
 * pass the scenario checks, so the result replays with `iommu-sim run`.
 */
import { checkScenario } from "../../src/sim/scenario/check.ts";
import { scenarioSchema, type EventSpec, type Scenario } from "../../src/sim/scenario/schema.ts";
import { newCounts, play } from "./engine.ts";

export interface Repro {
  scenario: Scenario;
  events: EventSpec[];
  /** The machine's page-table memory cap, if the fuzzer set one. */
  pgtableMemoryLimit?: number;
}

type Obj = Record<string, unknown>;

function clone<T>(x: T): T {
  return structuredClone(x);
}

/** The scenario with these events, if it passes the checks. */
function valid(s: Scenario, events: EventSpec[]): Scenario | null {
  const parsed = scenarioSchema.safeParse({ ...s, events });
  if (!parsed.success) return null;
  return checkScenario(parsed.data).length === 0 ? parsed.data : null;
}

/** Whether replaying gives the problem `key` at the last event. */
export function reproduces(r: Repro, key: string): boolean {
  const s = valid(r.scenario, r.events);
  if (s === null) return false;
  const last = r.events.length - 1;
  let hit = false;
  play(
    { ...s, events: [] },
    (_m, i) => (i < r.events.length ? r.events[i]! : null),
    newCounts(),
    (p) => {
      if (p.key === key && p.index === last) hit = true;
    },
    { reportEffects: key.startsWith("effect "), pgtableMemoryLimit: r.pgtableMemoryLimit },
  );
  return hit;
}

function mentions(e: EventSpec, name: string): boolean {
  return JSON.stringify(e).includes(JSON.stringify(name));
}

/** The scenario without device `name` (and without what only named it). */
function withoutDevice(r: Repro, name: string): Repro {
  const s = clone(r.scenario) as unknown as Obj & Scenario;
  s.devices = s.devices.filter((d) => d.name !== name);
  for (const drv of s.drivers) {
    if (drv.match !== "*") drv.match = drv.match.filter((n) => n !== name);
    if (drv.probe_result !== undefined) delete drv.probe_result[name];
  }
  s.drivers = s.drivers.filter((d) => d.match === "*" || d.match.length > 0);
  for (const it of s.iommus) if (Array.isArray(it.scope)) it.scope = it.scope.filter((n) => n !== name);
  return { ...r, scenario: s, events: r.events.filter((e, i) => i === r.events.length - 1 || !mentions(e, name)) };
}

function withoutDriver(r: Repro, name: string): Repro {
  const s = clone(r.scenario);
  s.drivers = s.drivers.filter((d) => d.name !== name);
  return { ...r, scenario: s, events: r.events.filter((e, i) => i === r.events.length - 1 || !mentions(e, name)) };
}

function withoutInstance(r: Repro, name: string): Repro {
  const s = clone(r.scenario);
  s.iommus = s.iommus.filter((d) => d.name !== name);
  return { ...r, scenario: s, events: r.events.filter((e, i) => i === r.events.length - 1 || !mentions(e, name)) };
}

/** Candidates that drop one optional key of one device, instance or driver, or of boot. */
function* keyDrops(r: Repro): Generator<Repro> {
  const lists = ["iommus", "devices", "drivers"] as const;
  const keep = new Set(["name", "bus", "driver", "fwnode", "match", "parent", "pci-host", "scope", "segment"]);
  for (const l of lists) {
    const items = r.scenario[l] as unknown as Obj[];
    for (let i = 0; i < items.length; i++) {
      for (const k of Object.keys(items[i]!)) {
        if (keep.has(k)) continue;
        const s = clone(r.scenario);
        delete (s[l] as unknown as Obj[])[i]![k];
        yield { ...r, scenario: s };
      }
    }
  }
  if (r.scenario.boot !== undefined) {
    const s = clone(r.scenario);
    delete s.boot;
    yield { ...r, scenario: s };
  }
}

/** Shrinks `r` while it still shows `key`, within `ms` milliseconds. */
export function shrink(r: Repro, key: string, ms: number): Repro {
  const deadline = performance.now() + ms;
  let cur = r;
  const tryIt = (c: Repro): boolean => {
    if (performance.now() > deadline) return false;
    if (!reproduces(c, key)) return false;
    cur = c;
    return true;
  };
  for (let progress = true; progress && performance.now() < deadline; ) {
    progress = false;
    // Events before the last one, in chunks from large to single.
    for (let chunk = Math.max(1, (cur.events.length - 1) >> 1); chunk >= 1; chunk >>= 1) {
      for (let start = 0; start + chunk < cur.events.length; ) {
        const evs = [...cur.events.slice(0, start), ...cur.events.slice(start + chunk)];
        if (tryIt({ ...cur, events: evs })) progress = true;
        else start += chunk;
      }
    }
    for (const d of [...cur.scenario.devices].reverse()) if (tryIt(withoutDevice(cur, d.name))) progress = true;
    for (const d of [...cur.scenario.drivers]) if (tryIt(withoutDriver(cur, d.name))) progress = true;
    for (const d of [...cur.scenario.iommus]) if (tryIt(withoutInstance(cur, d.name))) progress = true;
    for (let again = true; again; ) {
      again = false;
      for (const c of keyDrops(cur)) {
        if (tryIt(c)) {
          progress = again = true;
          break;
        }
      }
    }
  }
  return cur;
}
