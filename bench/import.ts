/**
 * `npm run bench -- import`: the dtb importer on Debian's arm64 DTB corpus
 * (scripts/corpus/fetch.ts downloads it on first use). Timed: read, parse,
 * import, validation and boot of the largest DTB (goal < 200 ms), and of
 * the whole corpus.
 */
import { readFileSync, statSync } from "node:fs";
import { basename } from "node:path";
import { parseFdt } from "../src/sim/import/fdt-parse.ts";
import { importDtb } from "../src/sim/import/dt-scenario.ts";
import { fwScenarioData } from "../src/sim/import/fw-scenario.ts";
import { validateScenario } from "../src/sim/scenario/load.ts";
import { runScenario } from "../src/sim/runner.ts";
import { corpusDtbs } from "../scripts/corpus/fetch.ts";
import { best, median } from "./stats.ts";

function once(file: string): { ms: number; devices: number; iommus: number } {
  const t0 = performance.now();
  const s = validateScenario(fwScenarioData(importDtb(parseFdt(readFileSync(file), file), file)), file);
  runScenario(s, { trace: false, invariants: false });
  return { ms: performance.now() - t0, devices: s.devices.length, iommus: s.iommus.length };
}

export async function benchImport(log: (line: string) => void): Promise<void> {
  let files: string[];
  try {
    files = corpusDtbs(log).files;
  } catch (e) {
    log(`import: the DTB corpus is not available (${(e as Error).message.split("\n")[0]}): skipped`);
    return;
  }
  const largest = files.reduce((a, b) => (statSync(b).size > statSync(a).size ? b : a));
  log(`import: dtb import and boot (read, parse, import, validation, boot), trace off; corpus of ${files.length} DTBs`);
  once(largest);
  const runs = Array.from({ length: 9 }, () => once(largest));
  const ms = runs.map((r) => r.ms);
  log(`  largest, ${basename(largest)} (${(statSync(largest).size / 1024).toFixed(0)} KiB, ${runs[0]!.iommus} IOMMUs, ${runs[0]!.devices} devices): median ${median(ms).toFixed(1)} ms, best ${best(ms).toFixed(1)} ms  (goal: < 200 ms)`);
  const t0 = performance.now();
  let most = { file: largest, devices: 0 };
  for (const f of files) {
    const r = once(f);
    if (r.devices > most.devices) most = { file: f, devices: r.devices };
  }
  log(`  whole corpus: ${((performance.now() - t0) / 1000).toFixed(2)} s for ${files.length} DTBs`);
  const m = Array.from({ length: 9 }, () => once(most.file));
  log(`  most devices, ${basename(most.file)} (${m[0]!.iommus} IOMMUs, ${m[0]!.devices} devices): median ${median(m.map((r) => r.ms)).toFixed(1)} ms, best ${best(m.map((r) => r.ms)).toFixed(1)} ms`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchImport((l) => console.log(l));
}
