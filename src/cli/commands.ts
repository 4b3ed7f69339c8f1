/**
 * What `run`, `check` and `validate` do, once main.ts has parsed the
 * command line. This module loads the model; main.ts imports it only when a
 * command runs, so `--version` and `--help` start fast.
 */
import { formatCmdlineNote, parseCmdline, type CmdlineNote } from "../iommu/cmdline.ts";
import { runScenario, type RunResult } from "../sim/runner.ts";
import { loadScenarioFile, parseScenario, ScenarioError, STDIN_NAME } from "../sim/scenario/load.ts";
import { problemRecords } from "../sim/scenario/problem.ts";
import { DOMAIN_ALLOC_NAMES, OPS_RESOLUTION_NAMES, parseSize, scenarioArch, sizeSchema, withStrategy, type Scenario, type StrategyChoice } from "../sim/scenario/schema.ts";
import { didYouMean } from "../sim/scenario/suggest.ts";
import { renderTrace } from "../sim/trace-view.ts";
import { renderSnapshot } from "../sim/view.ts";
import { EXIT_FAILED, EXIT_INVALID, EXIT_OK } from "./exit.ts";
import type { Io } from "./io.ts";

/**
 * The version of every JSON document the commands print (`schema_version`).
 * It changes when a key is removed or renamed or its meaning changes; added
 * keys do not change it (docs/scenarios.md).
 */
export const SCHEMA_VERSION = 1;

export interface StrategyFlags {
  opsResolution?: string;
  domainAlloc?: string;
  /** --pgtable-memory: the cap on all IO page tables' memory. */
  pgtableMemory?: string;
}

/** The model's options the flags set: the page-table memory cap in bytes, or an error line (exit 2). */
function modelOptionsOf(f: StrategyFlags): { pgtableMemoryLimit?: number } | string {
  if (f.pgtableMemory === undefined) return {};
  const v = f.pgtableMemory;
  if (!sizeSchema.safeParse(v).success) return `--pgtable-memory: '${v.slice(0, 80)}' is not a size (bytes, or a number with K, M, G or T, or 0x...)`;
  const limit = parseSize(v);
  if (!Number.isSafeInteger(limit)) return `--pgtable-memory: '${v.slice(0, 80)}' is too large (at most 2^53 - 1 bytes)`;
  return { pgtableMemoryLimit: limit };
}

/** A strategy flag's value checked against the names there are: an error line, or null. */
function badFlag(flag: string, value: string | undefined, allowed: readonly string[]): string | null {
  if (value === undefined || allowed.includes(value)) return null;
  return `${flag}: unknown strategy '${value.slice(0, 80)}' (one of ${allowed.join(", ")})${didYouMean(value, allowed)}`;
}

/** What the flags ask of a run: the strategies and the model's options, or an error line (exit 2). */
function runOptionsOf(f: StrategyFlags): { strategy: StrategyChoice; model: { pgtableMemoryLimit?: number } } | string {
  const strategy = strategyOf(f);
  if (typeof strategy === "string") return strategy;
  const model = modelOptionsOf(f);
  if (typeof model === "string") return model;
  return { strategy, model };
}

/** A JSON document: indented on a terminal, compact to a pipe or a file (a 100k-device snapshot is half the size). */
function json(doc: unknown, io: Io): string {
  return io.tty === true ? JSON.stringify(doc, null, 2) : JSON.stringify(doc);
}

/** The strategy flags as a boot.strategy override, or an error line for an unknown name (exit 2). */
function strategyOf(f: StrategyFlags): StrategyChoice | string {
  const bad = badFlag("--ops-resolution", f.opsResolution, OPS_RESOLUTION_NAMES) ?? badFlag("--domain-alloc", f.domainAlloc, DOMAIN_ALLOC_NAMES);
  if (bad !== null) return bad;
  const s: StrategyChoice = {};
  if (f.opsResolution !== undefined) s.ops_resolution = f.opsResolution as StrategyChoice["ops_resolution"];
  if (f.domainAlloc !== undefined) s.domain_alloc = f.domainAlloc as StrategyChoice["domain_alloc"];
  return s;
}

/** The scenario a command names: a file, or `-` for stdin (JSON if it starts with `{` or `[`, else YAML). */
async function readScenario(file: string, io: Io): Promise<Scenario> {
  if (file !== "-") return loadScenarioFile(file);
  if (io.readStdin === undefined) throw new ScenarioError(STDIN_NAME, [{ path: [], message: "no standard input to read" }]);
  return parseScenario(await io.readStdin(), STDIN_NAME);
}

function fileName(file: string): string {
  return file === "-" ? STDIN_NAME : file;
}

/** The scenario, or its problems on stderr (text) and null. */
async function load(file: string, io: Io): Promise<Scenario | ScenarioError> {
  try {
    return await readScenario(file, io);
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
}

function cmdlineNotes(s: Scenario): CmdlineNote[] {
  return parseCmdline(s.boot?.cmdline ?? "", scenarioArch(s)).notes;
}

/** Options the model does not honour, as warnings on stderr (text mode). */
function warnCmdline(notes: readonly CmdlineNote[], io: Io): void {
  for (const n of notes) if (n.status !== "modelled") io.err(`iommu-sim: warning: boot.cmdline: ${formatCmdlineNote(n)}`);
}

function summary(r: RunResult): string {
  const { passed, failed } = r.expectations;
  const exp = r.expectedViolations.length;
  const inv = r.violations.length === 0 ? "invariants hold" : `${r.violations.length} invariant violation(s)${exp > 0 ? `, ${exp} of them expected by the scenario` : ""}`;
  const unexpected = r.failures.filter((f) => f.kind === "unexpected_error").length;
  const events = unexpected === 0 ? "" : `; ${unexpected} event(s) failed without expect_error`;
  return `${r.failures.length === 0 ? "PASS" : "FAIL"}: ${passed} expectation(s) passed, ${failed} failed; ${inv}${events}`;
}

function failureLines(r: RunResult): string[] {
  return r.failures.map((f) => `  ${f.step} ${f.kind}: ${f.message}`);
}

export interface RunFlags extends StrategyFlags {
  json?: boolean;
  trace?: boolean;
}

export async function runCommand(file: string, o: RunFlags, io: Io): Promise<number> {
  const opts = runOptionsOf(o);
  if (typeof opts === "string") {
    io.err(opts);
    return EXIT_INVALID;
  }
  const s = await load(file, io);
  if (s instanceof ScenarioError) {
    io.err(s.message);
    return EXIT_INVALID;
  }
  const r = runScenario(withStrategy(s, opts.strategy), { ...opts.model, trace: o.trace === true });
  if (o.json) {
    // One JSON document: with --trace the trace goes in it, as records.
    const doc = { schema_version: SCHEMA_VERSION, ...r.snapshot, ...(o.trace ? { trace: r.machine.ctx.trace.records } : {}) };
    io.out(json(doc, io));
  } else {
    warnCmdline(r.snapshot.cmdline, io);
    if (o.trace) io.out(renderTrace(r.machine.ctx.trace.records) + "\n");
    io.out(renderSnapshot(r.snapshot) + "\n\n" + summary(r));
  }
  if (r.failures.length === 0) return EXIT_OK;
  if (o.json) io.err(summary(r));
  for (const l of failureLines(r)) io.err(l);
  return EXIT_FAILED;
}

export interface CheckFlags extends StrategyFlags {
  json?: boolean;
}

export async function checkCommand(file: string, o: CheckFlags, io: Io): Promise<number> {
  const opts = runOptionsOf(o);
  if (typeof opts === "string") {
    io.err(opts);
    return EXIT_INVALID;
  }
  const name = fileName(file);
  const s = await load(file, io);
  if (s instanceof ScenarioError) {
    if (o.json) {
      io.out(json({ schema_version: SCHEMA_VERSION, command: "check", file: name, result: "invalid", problems: problemRecords(s.file, s.problems) }, io));
    } else io.err(s.message);
    return EXIT_INVALID;
  }
  const r = runScenario(withStrategy(s, opts.strategy), { ...opts.model, trace: false });
  const code = r.failures.length === 0 ? EXIT_OK : EXIT_FAILED;
  if (o.json) {
    io.out(
      json(
        {
          schema_version: SCHEMA_VERSION,
          command: "check",
          file: name,
          result: code === EXIT_OK ? "pass" : "fail",
          expectations: r.expectations,
          violations: r.violations,
          expected_violations: r.expectedViolations,
          failures: r.failures,
          cmdline: r.snapshot.cmdline,
          problems: [],
        },
        io,
      ),
    );
    return code;
  }
  warnCmdline(r.snapshot.cmdline, io);
  io.out(`${name}: ${summary(r)}`);
  for (const l of failureLines(r)) io.out(l);
  return code;
}

export async function validateCommand(file: string, o: { json?: boolean }, io: Io): Promise<number> {
  const name = fileName(file);
  const s = await load(file, io);
  if (s instanceof ScenarioError) {
    if (o.json) io.out(json({ schema_version: SCHEMA_VERSION, command: "validate", file: name, valid: false, problems: problemRecords(s.file, s.problems) }, io));
    else io.err(s.message);
    return EXIT_INVALID;
  }
  const counts = { iommus: s.iommus.length, devices: s.devices.length, drivers: s.drivers.length, events: s.events.length };
  const notes = cmdlineNotes(s);
  if (o.json) {
    io.out(json({ schema_version: SCHEMA_VERSION, command: "validate", file: name, valid: true, scenario: { name: s.name, ...counts }, cmdline: notes, problems: [] }, io));
    return EXIT_OK;
  }
  warnCmdline(notes, io);
  io.out(`${name}: valid scenario "${s.name}" (${counts.iommus} IOMMU instances, ${counts.devices} devices, ${counts.drivers} drivers, ${counts.events} events)`);
  return EXIT_OK;
}
