/**
 * The command line: `iommu-sim run FILE [--json] [--trace]`,
 * `iommu-sim check FILE`, `iommu-sim validate FILE`.
 * Exit codes (SCENARIOS.md): 0 all held, 1 an expectation or invariant
 * failed, 2 the file is not a valid scenario, 3 the model itself failed.
 */
import { Command, CommanderError } from "commander";
import { loadScenarioFile, ScenarioError } from "../sim/scenario/load.ts";
import { DOMAIN_ALLOC_NAMES, OPS_RESOLUTION_NAMES, parseSize, sizeSchema, type Scenario } from "../sim/scenario/schema.ts";
import { runScenario, type RunResult } from "../sim/runner.ts";
import { renderSnapshot } from "../sim/view.ts";
import { renderTrace } from "../sim/trace-view.ts";

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(s + "\n"),
  err: (s) => process.stderr.write(s + "\n"),
};

interface StrategyFlags {
  opsResolution?: string;
  domainAlloc?: string;
}

function withOverrides(s: Scenario, f: StrategyFlags): Scenario {
  const strategy = { ...s.boot?.strategy };
  if (f.opsResolution !== undefined) strategy.ops_resolution = f.opsResolution as (typeof OPS_RESOLUTION_NAMES)[number];
  if (f.domainAlloc !== undefined) strategy.domain_alloc = f.domainAlloc as (typeof DOMAIN_ALLOC_NAMES)[number];
  return { ...s, boot: { ...s.boot, strategy } };
}

/** Checks a strategy flag's value; returns an error line or null. */
function badFlag(flag: string, value: string | undefined, allowed: readonly string[]): string | null {
  if (value === undefined || allowed.includes(value)) return null;
  return `${flag}: unknown strategy '${value}' (one of ${allowed.join(", ")})`;
}

function summary(r: RunResult): string {
  const { passed, failed } = r.expectations;
  const inv = r.violations.length === 0 ? "invariants hold" : `${r.violations.length} invariant violation(s)`;
  return `${r.failures.length === 0 ? "PASS" : "FAIL"}: ${passed} expectation(s) passed, ${failed} failed; ${inv}`;
}

function failureLines(r: RunResult): string[] {
  return r.failures.map((f) => `  ${f.step} ${f.kind}: ${f.message}`);
}

const PGTABLE_MEMORY_HELP = "cap on the memory of all IO page tables (bytes, or 64M, 1G, 0x...; default 128M): a map beyond it fails with ENOMEM";

/** The --pgtable-memory value in bytes, or an error line. */
function pgtableMemory(value: string | undefined): { limit?: number } | string {
  if (value === undefined) return {};
  if (!sizeSchema.safeParse(value).success) return `--pgtable-memory: '${value}' is not a size (bytes, or a number with K, M, G or T, or 0x...)`;
  const limit = parseSize(value);
  if (!Number.isSafeInteger(limit)) return `--pgtable-memory: '${value}' is too large`;
  return { limit };
}

const OPS_HELP = `override boot.strategy.ops_resolution (${OPS_RESOLUTION_NAMES.join(", ")})`;
const DOMAIN_ALLOC_HELP = `override boot.strategy.domain_alloc (${DOMAIN_ALLOC_NAMES.join(", ")})`;

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  let code = 0;
  const program = new Command()
    .name("iommu-sim")
    .description("An executable model of the Linux IOMMU core: boot a described machine through the IOMMU lifecycle and check its rules.")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  const load = (file: string): Scenario | null => {
    try {
      return loadScenarioFile(file);
    } catch (e) {
      if (e instanceof ScenarioError) {
        io.err(e.message);
        code = 2;
        return null;
      }
      throw e;
    }
  };

  /** Rejects an unknown strategy name (exit 2) before anything runs. */
  const flagsOk = (o: StrategyFlags): boolean => {
    const flagError =
      badFlag("--ops-resolution", o.opsResolution, OPS_RESOLUTION_NAMES) ?? badFlag("--domain-alloc", o.domainAlloc, DOMAIN_ALLOC_NAMES);
    if (flagError === null) return true;
    io.err(flagError);
    code = 2;
    return false;
  };

  program
    .command("run")
    .description("boot the scenario, play its events, print the resulting state")
    .argument("<file>", "scenario file (.yaml or .json)")
    .option("--json", "print the snapshot as JSON")
    .option("--trace", "print the trace of core calls")
    .option("--ops-resolution <name>", OPS_HELP)
    .option("--domain-alloc <name>", DOMAIN_ALLOC_HELP)
    .option("--pgtable-memory <size>", PGTABLE_MEMORY_HELP)
    .action((file: string, o: { json?: boolean; trace?: boolean; pgtableMemory?: string } & StrategyFlags) => {
      if (!flagsOk(o)) return;
      const mem = pgtableMemory(o.pgtableMemory);
      if (typeof mem === "string") {
        io.err(mem);
        code = 2;
        return;
      }
      const s = load(file);
      if (s === null) return;
      const r = runScenario(withOverrides(s, o), { trace: o.trace === true || !o.json, pgtableMemoryLimit: mem.limit });
      // With --json the output stays one JSON document: the trace goes in it, as records.
      if (o.json) io.out(JSON.stringify(o.trace ? { ...r.snapshot, trace: r.machine.dc.trace.records } : r.snapshot, null, 2));
      else {
        if (o.trace) io.out(renderTrace(r.machine.dc.trace.records) + "\n");
        io.out(renderSnapshot(r.snapshot) + "\n\n" + summary(r));
      }
      if (r.failures.length > 0) {
        if (o.json) io.err(summary(r));
        for (const l of failureLines(r)) io.err(l);
        code = 1;
      }
    });

  program
    .command("check")
    .description("run the scenario and report only its expectations and invariants")
    .argument("<file>", "scenario file (.yaml or .json)")
    .option("--ops-resolution <name>", OPS_HELP)
    .option("--domain-alloc <name>", DOMAIN_ALLOC_HELP)
    .option("--pgtable-memory <size>", PGTABLE_MEMORY_HELP)
    .action((file: string, o: { pgtableMemory?: string } & StrategyFlags) => {
      if (!flagsOk(o)) return;
      const mem = pgtableMemory(o.pgtableMemory);
      if (typeof mem === "string") {
        io.err(mem);
        code = 2;
        return;
      }
      const s = load(file);
      if (s === null) return;
      const r = runScenario(withOverrides(s, o), { trace: false, pgtableMemoryLimit: mem.limit });
      io.out(`${file}: ${summary(r)}`);
      if (r.failures.length > 0) {
        for (const l of failureLines(r)) io.out(l);
        code = 1;
      }
    });

  program
    .command("validate")
    .description("check that a file is a valid scenario, without running it")
    .argument("<file>", "scenario file (.yaml or .json)")
    .action((file: string) => {
      const s = load(file);
      if (s === null) return;
      io.out(`${file}: valid scenario "${s.name}" (${s.iommus.length} IOMMU instances, ${s.devices.length} devices, ${s.drivers.length} drivers, ${s.events.length} events)`);
    });

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    io.err(`iommu-sim: internal error: ${(e as Error).message}`);
    return 3;
  }
  return code;
}
