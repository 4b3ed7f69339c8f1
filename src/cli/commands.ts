/**
 * What `run`, `check` and `validate` do, once main.ts has parsed the
 * command line. This module loads the model; main.ts imports it only when a
 * command runs, so `--version` and `--help` start fast.
 */
import { formatCmdlineNote, parseCmdline, type CmdlineNote } from "../iommu/cmdline.ts";
import { runScenario, type RunResult } from "../sim/runner.ts";
import { readFileSync } from "node:fs";
import { loadScenarioFile, locateInText, parseScenario, ScenarioError, STDIN_NAME } from "../sim/scenario/load.ts";
import { formatProblem, problemRecords, type KeyPath } from "../sim/scenario/problem.ts";
import { parseSchedule, scheduleMisfit, ScheduleError, ScriptPolicy } from "../sim/explore/schedule.ts";
import { designSetName, parseAssignments, parseDesignSet, parsePreset, type DesignSet } from "../designs/design-set.ts";
import { PRESET_NAMES, type PresetName } from "../designs/presets.ts";
import { diffRuns, renderRunDiff } from "../sim/diff.ts";
import { parseSize, scenarioArch, sizeSchema, withDesign, type Scenario } from "../sim/scenario/schema.ts";
import { renderTrace } from "../sim/trace-view.ts";
import { renderSnapshot } from "../sim/view.ts";
import { EXIT_FAILED, EXIT_INVALID, EXIT_OK } from "./exit.ts";
import type { Io } from "./io.ts";
import { renderPicture, type PictureFormat } from "./picture.ts";
import { machineTopology } from "./topology.ts";
import { runSteps, STEPS_FORMAT, type StepsRun } from "./steps.ts";

/**
 * The version of every JSON document the commands print (`schema_version`).
 * It changes when a key is removed or renamed or its meaning changes; added
 * keys do not change it (docs/scenarios.md).
 */
export const SCHEMA_VERSION = 1;

export interface StrategyFlags {
  /** --strategy AXIS=NAME, as often as there are axes to set. */
  strategy?: string[];
  /** --kernel VERSION: a kernel preset. */
  kernel?: string;
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

/** What the flags ask of a run: the design and the model's options, or an error line (exit 2). */
export function runOptionsOf(f: StrategyFlags): { design: DesignSet; model: { pgtableMemoryLimit?: number } } | string {
  const design = designOf(f);
  if (typeof design === "string") return design;
  const model = modelOptionsOf(f);
  if (typeof model === "string") return model;
  return { design, model };
}

/** A JSON document: indented on a terminal, compact to a pipe or a file (a 100k-device snapshot is half the size). */
export function json(doc: unknown, io: Io): string {
  return io.tty === true ? JSON.stringify(doc, null, 2) : JSON.stringify(doc);
}

/** --kernel and --strategy as a design, or an error line naming what there is (exit 2). */
function designOf(f: StrategyFlags): DesignSet | string {
  let kernel: PresetName | undefined;
  if (f.kernel !== undefined) {
    const k = parsePreset(f.kernel);
    if (typeof k === "string") return `--kernel: ${k}`;
    kernel = k.preset;
  }
  const strategy = parseAssignments(f.strategy ?? []);
  if (typeof strategy === "string") return `--strategy: ${strategy}`;
  return kernel === undefined ? { strategy } : { kernel, strategy };
}

/** The text of scenarios read from stdin, to locate problems found after loading (a schedule that does not fit). */
const stdinText = new WeakMap<Scenario, string>();

/** The scenario a command names: a file, or `-` for stdin (JSON if it starts with `{` or `[`, else YAML). */
async function readScenario(file: string, io: Io): Promise<Scenario> {
  if (file !== "-") return loadScenarioFile(file);
  if (io.readStdin === undefined) throw new ScenarioError(STDIN_NAME, [{ path: [], message: "no standard input to read" }]);
  const text = await io.readStdin();
  const s = parseScenario(text, STDIN_NAME);
  stdinText.set(s, text);
  return s;
}

/** A problem of the scenario found after loading it, as a line with the file, line, column and key path. */
export function lateProblem(file: string, s: Scenario, path: KeyPath, message: string): string {
  let text = stdinText.get(s);
  if (text === undefined && file !== "-") {
    try {
      text = readFileSync(file, "utf8");
    } catch {
      text = undefined;
    }
  }
  const pos = text === undefined ? null : locateInText(text, file, path);
  return formatProblem(fileName(file), pos === null ? { path, message } : { path, message, line: pos.line, col: pos.col });
}

/** The key path of the scenario's `block`-th concurrently event (0-based). */
export function blockPath(s: Scenario, block: number | null): KeyPath {
  if (block === null) return ["events"];
  let n = 0;
  for (let i = 0; i < s.events.length; i++) {
    if (s.events[i]!.concurrently === undefined) continue;
    if (n++ === block) return ["events", i, "concurrently"];
  }
  return ["events"];
}

/** The scenario's number of concurrently blocks. */
export function blockCount(s: Scenario): number {
  return s.events.filter((e) => e.concurrently !== undefined).length;
}

/** --schedule as a policy (undefined: the default schedule), or the problem line (exit 2). */
export function schedulePolicy(file: string, s: Scenario, text: string | undefined): ScriptPolicy | undefined | string {
  if (text === undefined) return undefined;
  const parsed = parseSchedule(text);
  if (typeof parsed === "string") return lateProblem(file, s, blockPath(s, 0), `--schedule: ${parsed}`);
  const misfit = scheduleMisfit(parsed, blockCount(s));
  if (misfit !== null) return lateProblem(file, s, ["events"], `--schedule '${text.slice(0, 60)}' does not fit: ${misfit}`);
  return new ScriptPolicy(parsed);
}

export function fileName(file: string): string {
  return file === "-" ? STDIN_NAME : file;
}

/** The scenario, or its problems on stderr (text) and null. */
export async function load(file: string, io: Io): Promise<Scenario | ScenarioError> {
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
export function warnCmdline(notes: readonly CmdlineNote[], io: Io): void {
  for (const n of notes) if (n.status !== "modelled") io.err(`iommu-sim: warning: boot.cmdline: ${formatCmdlineNote(n)}`);
}

export function summary(r: RunResult): string {
  const { passed, failed } = r.expectations;
  const exp = r.expectedViolations.length;
  const inv = r.violations.length === 0 ? "invariants hold" : `${r.violations.length} invariant violation(s)${exp > 0 ? `, ${exp} of them expected by the scenario` : ""}`;
  const unexpected = r.failures.filter((f) => f.kind === "unexpected_error").length;
  const events = unexpected === 0 ? "" : `; ${unexpected} event(s) failed without expect_error`;
  return `${r.failures.length === 0 ? "PASS" : "FAIL"}: ${passed} expectation(s) passed, ${failed} failed; ${inv}${events}`;
}

export function failureLines(r: RunResult): string[] {
  return r.failures.map((f) => `  ${f.step} ${f.kind}: ${f.message}`);
}

export interface RunFlags extends StrategyFlags {
  json?: boolean;
  trace?: boolean;
  /** --schedule STRING: how the concurrently blocks are played (docs/explore.md). */
  schedule?: string;
  /** --steps: with --json, the snapshot after every step (steps.ts). */
  steps?: boolean;
  /** --format dot|mermaid: the final topology as a graph (picture.ts). */
  format?: PictureFormat;
}

export async function runCommand(file: string, o: RunFlags, io: Io): Promise<number> {
  const opts = runOptionsOf(o);
  if (typeof opts === "string") {
    io.err(opts);
    return EXIT_INVALID;
  }
  if (o.format !== undefined && (o.json === true || o.trace === true)) {
    io.err(`--format ${o.format} prints a graph: it goes without --json and --trace`);
    return EXIT_INVALID;
  }
  if (o.steps === true && (o.json !== true || o.format !== undefined)) {
    io.err("--steps prints a JSON document of every step: it goes with --json (and without --format)");
    return EXIT_INVALID;
  }
  const s = await load(file, io);
  if (s instanceof ScenarioError) {
    io.err(s.message);
    return EXIT_INVALID;
  }
  const policy = schedulePolicy(file, s, o.schedule);
  if (typeof policy === "string") {
    io.err(policy);
    return EXIT_INVALID;
  }
  let r: RunResult;
  let stepsRun: StepsRun | null = null;
  try {
    const runOpts = { ...opts.model, trace: o.trace === true, ...(policy === undefined ? {} : { policy }) };
    if (o.steps === true) {
      stepsRun = runSteps(withDesign(s, opts.design), runOpts);
      r = stepsRun.result;
    } else r = runScenario(withDesign(s, opts.design), runOpts);
  } catch (e) {
    if (!(e instanceof ScheduleError)) throw e;
    io.err(lateProblem(file, s, blockPath(s, e.block), `--schedule '${String(o.schedule).slice(0, 60)}' does not fit: ${e.message}`));
    return EXIT_INVALID;
  }
  if (stepsRun !== null) {
    io.out(json(stepsDocument(fileName(file), stepsRun), io));
  } else if (o.format !== undefined) {
    io.out(renderPicture(o.format, machineTopology(r.machine), r.snapshot));
  } else if (o.json) {
    // One JSON document: with --trace the trace goes in it, as records.
    const doc = { schema_version: SCHEMA_VERSION, ...r.snapshot, ...(o.trace ? { trace: r.machine.ctx.trace.records } : {}) };
    io.out(json(doc, io));
  } else {
    warnCmdline(r.snapshot.cmdline, io);
    if (o.trace) io.out(renderTrace(r.machine.ctx.trace.records) + "\n");
    io.out(renderSnapshot(r.snapshot) + "\n\n" + summary(r));
  }
  if (r.failures.length === 0) return EXIT_OK;
  if (o.json || o.format !== undefined) io.err(summary(r));
  for (const l of failureLines(r)) io.err(l);
  return EXIT_FAILED;
}

export interface CheckFlags extends StrategyFlags {
  json?: boolean;
  /** --workers N: the worker threads of the search a scenario's explore: asks for. */
  workers?: string;
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
  const design = withDesign(s, opts.design);
  const r = runScenario(design, { ...opts.model, trace: false });
  // The scenario's explore: expectation, searched and asserted (src/cli/explore.ts).
  const ex = s.explore === undefined ? null : await (await import("./explore.ts")).checkExplore(design, s.explore, file, o, opts.model, io);
  if (typeof ex === "string") {
    io.err(ex);
    return EXIT_INVALID;
  }
  const code = r.failures.length === 0 && (ex === null || ex.pass) ? EXIT_OK : EXIT_FAILED;
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
          ...(ex === null
            ? {}
            : {
                explore: {
                  expect: s.explore!.expect,
                  ...(s.explore!.kind === undefined ? {} : { kind: s.explore!.kind }),
                  result: ex.pass ? "pass" : "fail",
                  schedules: ex.result.schedules,
                  steps: ex.result.steps,
                  violation: ex.result.found === null ? null : { schedule: ex.result.found.schedule, kind: ex.result.found.kind, message: ex.result.found.failure.message, step: ex.result.found.failure.step },
                  replayed: ex.replayed,
                  message: ex.line,
                },
              }),
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
  if (ex !== null) io.out(`  ${ex.line}`);
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

export interface DiffFlags {
  a?: string;
  b?: string;
  json?: boolean;
  context?: string;
}

/** `diff FILE --a SET --b SET`: exit 0 when the two runs are alike, 1 when they differ, 2 for bad input. */
export async function diffCommand(file: string, o: DiffFlags, io: Io): Promise<number> {
  if (o.a === undefined || o.b === undefined) {
    io.err(`diff needs two designs: --a SET --b SET, each a kernel preset (${PRESET_NAMES.join(", ")}) or AXIS=NAME[,AXIS=NAME]`);
    return EXIT_INVALID;
  }
  const a = parseDesignSet(o.a);
  const b = parseDesignSet(o.b);
  if (typeof a === "string" || typeof b === "string") {
    io.err(typeof a === "string" ? `--a: ${a}` : `--b: ${b as string}`);
    return EXIT_INVALID;
  }
  const context = o.context === undefined ? 3 : Number(o.context);
  if (!Number.isInteger(context) || context < 0 || context > 100) {
    io.err(`--context: expected a whole number of lines from 0 to 100, found '${String(o.context).slice(0, 80)}'`);
    return EXIT_INVALID;
  }
  const s = await load(file, io);
  if (s instanceof ScenarioError) {
    io.err(s.message);
    return EXIT_INVALID;
  }
  const run = (d: DesignSet) => {
    const r = runScenario(withDesign(s, d), { trace: true });
    return { snapshot: r.snapshot, trace: r.machine.ctx.trace.records };
  };
  const ra = run(a);
  const rb = run(b);
  const d = diffRuns(ra, rb, context);
  const names = { a: designSetName(a), b: designSetName(b) };
  if (o.json) {
    io.out(
      json(
        {
          schema_version: SCHEMA_VERSION,
          command: "diff",
          file: fileName(file),
          a: { design: names.a, strategy: ra.snapshot.strategy },
          b: { design: names.b, strategy: rb.snapshot.strategy },
          ...d,
        },
        io,
      ),
    );
  } else {
    // Two runs that differ say in full what each design is; alike ones need only their names.
    const full = (n: string, st: Record<string, string>) => (d.equal ? n : `${n}  (${strategyLine(st)})`);
    io.out(renderRunDiff(d, full(names.a, ra.snapshot.strategy), full(names.b, rb.snapshot.strategy)));
  }
  return d.equal ? EXIT_OK : EXIT_FAILED;
}

function strategyLine(strategy: Record<string, string>): string {
  return Object.entries(strategy)
    .map(([axis, name]) => `${axis}=${name}`)
    .join(", ");
}

/** The document `run --steps --json` prints (docs/view.md). */
export function stepsDocument(file: string, sr: StepsRun) {
  const r = sr.result;
  return {
    schema_version: SCHEMA_VERSION,
    command: "run",
    steps_format: STEPS_FORMAT,
    file,
    name: r.snapshot.name,
    strategy: r.snapshot.strategy,
    kernel: r.snapshot.kernel,
    schedule: r.schedule,
    result: r.failures.length === 0 ? "pass" : "fail",
    failures: r.failures,
    topology: sr.topology,
    steps: sr.steps,
  };
}
