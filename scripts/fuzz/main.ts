/**
 * `npm run fuzz -- --seed S --seconds N` (or `--events N`): random machines,
 * random events of every kind with valid and bad arguments, each failing
 * event checked for state it leaves behind, invariants checked after every
 * change. Prints the seed first; machine i of a run is generated from the
 * seed and i alone, so `--seed S --machine I` replays it. Writes one
 * scenario per problem class (`--out DIR`, default tmp/fuzz) that replays
 * with `iommu-sim run`, shrunk within `--shrink-seconds` (60 in all, model
 * bugs first). Exit 0 when no exception and no undocumented state
 * change was found, 1 otherwise (violations are reported, not failed on,
 * unless --strict).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { FAILURE_EFFECT_IDS } from "../../src/lib/failure-effects.ts";
import { fuzz, type FuzzResult } from "./fuzz.ts";
import { shrink } from "./shrink.ts";

interface Args {
  seed: number;
  seconds: number | null;
  events: number | null;
  machine: number | null;
  out: string;
  shrinkSeconds: number;
  strict: boolean;
  effects: boolean;
}

function usage(msg: string): never {
  console.error(`fuzz: ${msg}`);
  console.error("usage: npm run fuzz -- [--seed S] [--seconds N | --events N] [--machine I] [--out DIR] [--shrink-seconds N] [--strict] [--effects]");
  process.exit(64);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seed: Math.floor(Math.random() * 2 ** 31), seconds: null, events: null, machine: null, out: "tmp/fuzz", shrinkSeconds: 60, strict: false, effects: false };
  const num = (i: number, name: string): number => {
    const v = argv[i];
    if (v === undefined || !/^\d+$/.test(v)) usage(`${name} needs a non-negative integer`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const o = argv[i]!;
    if (o === "--") continue;
    if (o === "--seed") a.seed = num(++i, o);
    else if (o === "--seconds") a.seconds = num(++i, o);
    else if (o === "--events") a.events = num(++i, o);
    else if (o === "--machine") a.machine = num(++i, o);
    else if (o === "--shrink-seconds") a.shrinkSeconds = num(++i, o);
    else if (o === "--out") a.out = argv[++i] ?? usage("--out needs a directory");
    else if (o === "--strict") a.strict = true;
    else if (o === "--effects") a.effects = true;
    else usage(`unknown option '${o}'`);
  }
  if (a.seconds === null && a.events === null) a.seconds = 10;
  return a;
}

function fmtMap(m: Map<string, number>): string {
  return [...m].sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
}

function report(args: Args, res: FuzzResult): void {
  const c = res.counts;
  const secs = res.ms / 1000;
  console.log(`events ${c.events} on ${res.machines} machines in ${secs.toFixed(1)} s: ${Math.round(c.events / secs)} events/s`);
  console.log(`  succeeded ${c.ok}, failed ${c.failed} (of which ${c.failedDocumented} changed state as a documented kernel behaviour)`);
  console.log(`  documented effects: ${fmtMap(c.effects as Map<string, number>)}`);
  console.log(`  unused effect ids: ${FAILURE_EFFECT_IDS.filter((id) => !c.effects.has(id)).join(", ") || "none"}`);
  console.log(`exceptions: ${c.exceptions}`);
  console.log(`undocumented state changes after failures: ${c.undocumented}`);
  console.log(`invariant violations after events, by rule: ${fmtMap(c.violations)}`);
  console.log(`  and reached only after a kernel BUG the model hit (expected: dma_ownership=notifier), by rule: ${fmtMap(c.afterKernelBug)}`);
  if (res.problems.size === 0) return;
  mkdirSync(args.out, { recursive: true });
  console.log(`\n${res.problems.size} problem classes (first occurrence each; reproducers in ${args.out}/):`);
  let n = 0;
  // Model bugs first; the shrinking budget is shared, at most 10 s a class.
  const order: Record<string, number> = { exception: 0, undocumented: 1, violation: 2, effect: 3 };
  const classes = [...res.problems].sort((a, b) => order[a[1].problem.kind]! - order[b[1].problem.kind]!);
  const shrinkUntil = performance.now() + args.shrinkSeconds * 1000;
  for (const [key, p] of classes) {
    n++;
    const file = join(args.out, `${String(n).padStart(3, "0")}-${p.problem.kind}.yaml`);
    const found = { scenario: p.scenario, events: p.events, pgtableMemoryLimit: p.pgtableMemoryLimit };
    const budget = Math.min(10_000, shrinkUntil - performance.now());
    const small = budget > 0 ? shrink(found, key, budget) : found;
    const mem = p.pgtableMemoryLimit === undefined ? "" : ` --pgtable-memory ${p.pgtableMemoryLimit}`;
    const header = [
      `# ${p.problem.kind}: ${key}`,
      `# found by: npm run fuzz -- --seed ${args.seed} --machine ${p.machine} (event ${p.problem.index}); seen ${p.count} times`,
      `# shrunk to ${small.events.length} events (the last one shows it); replay: iommu-sim run ${file}${mem}`,
      ...p.problem.details.map((d) => `#   ${d.replace(/\n/g, " ")}`),
    ].join("\n");
    writeFileSync(file, `${header}\n${stringify({ ...small.scenario, events: small.events })}`);
    console.log(`  [${p.count}x] ${key}`);
    console.log(`      seed ${args.seed} machine ${p.machine} event ${p.problem.index} -> ${file}${mem} (${small.events.length} events, ${small.scenario.devices.length} devices)`);
    for (const d of p.problem.details.slice(0, 4)) console.log(`      ${d.length > 300 ? d.slice(0, 297) + "..." : d}`);
  }
}

const args = parseArgs(process.argv.slice(2));
console.log(`fuzz seed ${args.seed}`);
const res = fuzz({ seed: args.seed, seconds: args.seconds, events: args.events, machine: args.machine, effects: args.effects });
report(args, res);
// Effect examples (--effects) are not problems.
const bad = res.counts.exceptions + res.counts.undocumented + (args.strict ? [...res.counts.violations.values()].reduce((a, b) => a + b, 0) : 0);
process.exitCode = bad > 0 ? 1 : 0;
