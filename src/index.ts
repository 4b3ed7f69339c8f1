/**
 * The library API: `import { boot } from "iommu-sim"`.
 */
import { z } from "zod";
import { issueProblems } from "./sim/scenario/issues.ts";
import { parseScenario, loadScenarioFile, validateScenario } from "./sim/scenario/load.ts";
import { formatPath } from "./sim/scenario/problem.ts";
import { PRESET_NAMES, type PresetName } from "./designs/presets.ts";
import { strategySchema, withDesign, withStrategy, type Scenario, type StrategyChoice } from "./sim/scenario/schema.ts";
import { runScenario, type RunOptions, type RunResult } from "./sim/runner.ts";

/** What boot() may be told besides the scenario. Every option is applied; any other name is refused. */
export interface BootOptions {
  /** A kernel preset (docs/kernel-presets.md): replaces the scenario's boot.kernel and boot.strategy, as --kernel does. */
  kernel?: PresetName;
  /** Design-axis strategies, overriding the scenario's boot.strategy, or the kernel preset's per axis (docs/design-axes.md). */
  strategy?: StrategyChoice;
  /** Record the trace of core calls (default true). */
  trace?: boolean;
  /** Check every invariant after every step (default true). */
  invariants?: boolean;
  /** How bus_iommu_probe finds devices: through the model's index (default) or by walking every device, as the kernel does. */
  probeWalk?: "indexed" | "literal";
  /** Deferred probe: retry only devices whose wait may have ended (default), or every one at every trigger, as the kernel does. */
  deferredProbe?: "indexed" | "literal";
  /** Bytes all the machine's IO page tables may hold together (default 128 MiB); a map beyond it fails with ENOMEM. */
  pgtableMemoryLimit?: number;
}

const bootOptionsSchema = z.strictObject({
  kernel: z.enum(PRESET_NAMES).optional(),
  strategy: strategySchema.optional(),
  trace: z.boolean().optional(),
  invariants: z.boolean().optional(),
  probeWalk: z.enum(["indexed", "literal"]).optional(),
  deferredProbe: z.enum(["indexed", "literal"]).optional(),
  pgtableMemoryLimit: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});

/** Names people reach for that live elsewhere in BootOptions. */
const MOVED: Record<string, string> = {
  opsResolution: "strategy: { ops_resolution }",
  ops_resolution: "strategy: { ops_resolution }",
  domainAlloc: "strategy: { domain_alloc }",
  domain_alloc: "strategy: { domain_alloc }",
};

/** The options, checked: a TypeError names every unknown or ill-typed one. */
function checkOptions(opts: unknown): BootOptions {
  const r = bootOptionsSchema.safeParse(opts ?? {}, { reportInput: true });
  if (r.success) return r.data;
  const lines = r.error.issues.flatMap((iss) =>
    issueProblems(iss, opts, bootOptionsSchema).map((p) => {
      const last = p.path.at(-1);
      const moved = iss.code === "unrecognized_keys" && typeof last === "string" ? MOVED[last] : undefined;
      return `${formatPath(p.path)}: ${moved !== undefined ? `unknown option '${last}'; did you mean ${moved}?` : p.message}`;
    }),
  );
  throw new TypeError(`boot(): bad options: ${lines.join("; ")}`);
}

/**
 * Boots a scenario (an object, or YAML/JSON text) and plays its events.
 * The scenario is validated like a file (a ScenarioError lists its
 * problems); `opts` is checked too (a TypeError names an unknown option).
 */
export function boot(scenario: Scenario | string, opts: BootOptions = {}): RunResult {
  const o = checkOptions(opts);
  let s = typeof scenario === "string" ? parseScenario(scenario, "(inline)") : validateScenario(scenario, "(scenario object)");
  if (o.kernel !== undefined || o.strategy !== undefined) s = withDesign(s, { kernel: o.kernel, strategy: o.strategy });
  const run: RunOptions = {};
  if (o.trace !== undefined) run.trace = o.trace;
  if (o.invariants !== undefined) run.invariants = o.invariants;
  if (o.probeWalk !== undefined) run.probeWalk = o.probeWalk;
  if (o.deferredProbe !== undefined) run.deferredProbe = o.deferredProbe;
  if (o.pgtableMemoryLimit !== undefined) run.pgtableMemoryLimit = o.pgtableMemoryLimit;
  return runScenario(s, run);
}

export { loadScenarioFile, parseScenario, runScenario, validateScenario, withStrategy };
export type { PresetName, RunOptions, RunResult, Scenario, StrategyChoice };
export { PRESET_NAMES };
export { ScenarioError } from "./sim/scenario/load.ts";
export type { Snapshot } from "./sim/snapshot.ts";
export type { CmdlineNote } from "./iommu/cmdline.ts";
export { renderSnapshot } from "./sim/view.ts";
export { renderTrace } from "./sim/trace-view.ts";
export { checkInvariants } from "./sim/invariants.ts";
