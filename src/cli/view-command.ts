/**
 * `iommu-sim view FILE [--out page.html] [--strategy ...|--kernel ...]
 * [--schedule S] [--a SET --b SET]`: runs the scenario with a snapshot
 * after every step (steps.ts), once or under two designs, and writes one
 * self-contained HTML page that steps through it (docs/view.md).
 */
import { writeFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { designSetName, parseDesignSet, type DesignSet } from "../designs/design-set.ts";
import { PRESET_NAMES } from "../designs/presets.ts";
import { ScenarioError } from "../sim/scenario/load.ts";
import { withDesign, type Scenario } from "../sim/scenario/schema.ts";
import { ScheduleError } from "../sim/explore/schedule.ts";
import { blockPath, fileName, lateProblem, load, runOptionsOf, schedulePolicy, stepsDocument, summary, type StrategyFlags } from "./commands.ts";
import { EXIT_INVALID, EXIT_OK } from "./exit.ts";
import type { Io } from "./io.ts";
import { runSteps, type StepsRun } from "./steps.ts";
import { packageVersion } from "./version.ts";
import { pageScript } from "./view-bundle.ts";
import { firstDivergence, viewHtml, type ViewData } from "./view-html.ts";

export interface ViewFlags extends StrategyFlags {
  out?: string;
  schedule?: string;
  a?: string;
  b?: string;
}

/** The page's file when --out is not given: the scenario's name with .html, here. */
function defaultOut(file: string): string {
  if (file === "-") return "iommu-sim-view.html";
  return `${basename(file, extname(file))}.html`;
}

export async function viewCommand(file: string, o: ViewFlags, io: Io): Promise<number> {
  const two = o.a !== undefined || o.b !== undefined;
  if (two && (o.a === undefined || o.b === undefined)) {
    io.err(`view shows two designs with both --a SET and --b SET, each a kernel preset (${PRESET_NAMES.join(", ")}) or AXIS=NAME[,AXIS=NAME]`);
    return EXIT_INVALID;
  }
  if (two && (o.kernel !== undefined || (o.strategy ?? []).length > 0)) {
    io.err("--a and --b name the two designs: they go without --kernel and --strategy");
    return EXIT_INVALID;
  }
  const opts = runOptionsOf(o);
  if (typeof opts === "string") {
    io.err(opts);
    return EXIT_INVALID;
  }
  const designs: { name: string; set: DesignSet }[] = [];
  if (two) {
    for (const [flag, text] of [["--a", o.a!], ["--b", o.b!]] as const) {
      const d = parseDesignSet(text);
      if (typeof d === "string") {
        io.err(`${flag}: ${d}`);
        return EXIT_INVALID;
      }
      designs.push({ name: designSetName(d), set: d });
    }
  } else designs.push({ name: designSetName(opts.design), set: opts.design });
  const script = await pageScript();
  if (typeof script !== "string") {
    io.err(script.error);
    return EXIT_INVALID;
  }
  const s = await load(file, io);
  if (s instanceof ScenarioError) {
    io.err(s.message);
    return EXIT_INVALID;
  }
  const runs: StepsRun[] = [];
  for (const d of designs) {
    const r = runOne(file, s, d.set, opts.model, o.schedule);
    if (typeof r === "string") {
      io.err(r);
      return EXIT_INVALID;
    }
    runs.push(r);
  }
  const data: ViewData = {
    title: `iommu-sim: ${s.name}${two ? ` (${designs[0]!.name} | ${designs[1]!.name})` : ""}`,
    runs: runs.map((r, i) => ({ design: designs[i]!.name, doc: pageDocument(stepsDocument(fileName(file), r)) })),
    divergence: runs.length === 2 ? firstDivergence(runs[0]!, runs[1]!) : null,
  };
  const html = viewHtml(data, script, packageVersion());
  const out = o.out ?? defaultOut(file);
  if (out === "-") io.out(html);
  else {
    try {
      writeFileSync(out, html);
    } catch (e) {
      io.err(`iommu-sim view: --out ${out}: ${(e as NodeJS.ErrnoException).code ?? "error"}: ${(e as Error).message}`);
      return EXIT_INVALID;
    }
    const steps = runs.map((r) => r.steps.length).join(" and ");
    io.err(`iommu-sim view: wrote ${out} (${Math.round(html.length / 1024)} kB, ${steps} steps): open it in a browser`);
  }
  for (const [i, r] of runs.entries()) if (r.result.failures.length > 0) io.err(`${two ? `${designs[i]!.name}: ` : ""}${summary(r.result)}`);
  return EXIT_OK;
}

function runOne(file: string, s: Scenario, d: DesignSet, model: { pgtableMemoryLimit?: number }, schedule: string | undefined): StepsRun | string {
  const policy = schedulePolicy(file, s, schedule);
  if (typeof policy === "string") return policy;
  try {
    return runSteps(withDesign(s, d), { ...model, ...(policy === undefined ? {} : { policy }) });
  } catch (e) {
    if (!(e instanceof ScheduleError)) throw e;
    return lateProblem(file, s, blockPath(s, e.block), `--schedule '${String(schedule).slice(0, 60)}' does not fit: ${e.message}`);
  }
}

/**
 * The steps document as the page embeds it: each step's trace as the JSON
 * text of its records, parsed when the page shows the step. Most of a large
 * run's data is trace (6.1 of 8.7 MB at 2,000 devices); kept as one string a
 * step, the page parses its data faster and holds far fewer objects for the
 * garbage collector to trace, which otherwise ran during the first steps.
 */
function pageDocument<D extends { steps: readonly { trace: unknown }[] }>(doc: D): D {
  return { ...doc, steps: doc.steps.map((s) => ({ ...s, trace: JSON.stringify(s.trace) })) };
}
