/**
 * The fuzzing loop: machine after machine, each generated from (seed, its
 * index) alone, each played for a random number of random events, until
 * the time or the event budget runs out. Problems are collected by class,
 * the first occurrence of each kept with what reproduces it.
 */
import type { EventSpec, Scenario } from "../../src/sim/scenario/schema.ts";
import { newCounts, play, type Counts, type Problem } from "./engine.ts";
import { EventGen } from "./event-gen.ts";
import { genMachine } from "./machine-gen.ts";
import { Rng } from "./rng.ts";

export interface FuzzOptions {
  seed: number;
  /** Stop after this many seconds (checked between events). */
  seconds?: number | null;
  /** Stop after this many events (deterministic). */
  events?: number | null;
  /** Play only this machine of the seed's sequence. */
  machine?: number | null;
  /** Also collect one example of each documented effect (engine.ts reportEffects). */
  effects?: boolean;
}

export interface FoundProblem {
  problem: Problem;
  machine: number;
  /** The machine's page-table memory cap, when the fuzzer set a small one (replay with --pgtable-memory). */
  pgtableMemoryLimit: number | undefined;
  scenario: Scenario;
  /** The events played up to and including the one that showed the problem. */
  events: EventSpec[];
  count: number;
}

export interface FuzzResult {
  counts: Counts;
  machines: number;
  ms: number;
  problems: Map<string, FoundProblem>;
}

export function fuzz(o: FuzzOptions): FuzzResult {
  const counts = newCounts();
  const problems = new Map<string, FoundProblem>();
  const t0 = performance.now();
  const deadline = o.seconds != null ? t0 + o.seconds * 1000 : Infinity;
  const maxEvents = o.events ?? Infinity;
  let machines = 0;
  const first = o.machine ?? 0;
  for (let mi = first; ; mi++) {
    if (o.machine != null && mi !== o.machine) break;
    if (counts.events >= maxEvents || performance.now() >= deadline) break;
    machines++;
    const r = new Rng(o.seed, mi);
    const shape = genMachine(r);
    const length = r.int(20, 300);
    // Some machines get a small page-table memory cap, so that maps run it out (ENOMEM).
    const pgtableMemoryLimit = r.chance(0.25) ? r.pick([0, 4096, 16384, 65536, 262144, 1048576]) : undefined;
    let gen: EventGen | null = null;
    const played: EventSpec[] = [];
    play(
      shape.scenario,
      (m, i) => {
        if (i >= length || counts.events >= maxEvents || (i % 16 === 0 && performance.now() >= deadline)) return null;
        gen ??= new EventGen(r, m);
        const e = gen.next();
        played.push(e);
        return e;
      },
      counts,
      (p) => {
        const known = problems.get(p.key);
        if (known !== undefined) known.count++;
        else problems.set(p.key, { problem: p, machine: mi, pgtableMemoryLimit, scenario: shape.scenario, events: played.slice(0, p.index + 1), count: 1 });
      },
      { reportEffects: o.effects === true, pgtableMemoryLimit },
    );
  }
  return { counts, machines, ms: performance.now() - t0, problems };
}
