/**
 * `iommu-sim view` on the 2,000-device machine of bench/late-smmu-machine.ts:
 * the run with a snapshot after every step (src/cli/steps.ts), the steps
 * document's size against whole snapshots, and the page written by the
 * built command (`node bin/iommu-sim.js view`, a whole process). Medians of 3.
 * The page's layout and step times in chromium are printed by
 * test/view/browser.test.ts (docs/view.md).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runSteps } from "../src/cli/steps.ts";
import { runScenario } from "../src/sim/runner.ts";
import { expandSteps } from "../src/view-page/delta.ts";
import { lateSmmuMachine } from "./late-smmu-machine.ts";
import { median } from "./stats.ts";

const RUNS = 3;
const BIN = fileURLToPath(new URL("../bin/iommu-sim.js", import.meta.url));

export async function benchView(log: (line: string) => void): Promise<void> {
  const { scenario } = lateSmmuMachine(2000);
  const n = scenario.devices.length;
  const plain: number[] = [];
  const stepped: number[] = [];
  let sr = runSteps(scenario, {});
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    runScenario(scenario, { trace: true });
    plain.push(performance.now() - t);
    t = performance.now();
    sr = runSteps(scenario, {});
    stepped.push(performance.now() - t);
  }
  const deltas = JSON.stringify(sr.steps).length;
  const trace = sr.steps.reduce((s, x) => s + JSON.stringify(x.trace).length, 0);
  const wholes = expandSteps(sr.steps as never[]).reduce((s, x) => s + JSON.stringify(x).length, 0);
  log(`view, ${n} devices, ${sr.steps.length} steps:`);
  log(`  run with its trace ${median(plain).toFixed(0)} ms; with a snapshot after every step ${median(stepped).toFixed(0)} ms`);
  log(`  steps document ${(deltas / 1e6).toFixed(1)} MB (${(trace / 1e6).toFixed(1)} MB of it trace); as whole snapshots it would be ${(wholes / 1e6).toFixed(0)} MB`);
  const dir = mkdtempSync(join(tmpdir(), "iommu-sim-bench-view-"));
  try {
    const file = join(dir, "late.json");
    writeFileSync(file, JSON.stringify(scenario));
    const page = join(dir, "late.html");
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      const r = spawnSync(process.execPath, [BIN, "view", file, "--out", page], { stdio: ["ignore", "ignore", "pipe"] });
      times.push(performance.now() - t);
      if (r.status !== 0) throw new Error(`iommu-sim view failed (${r.status}): ${String(r.stderr)} (run npm run build first)`);
    }
    log(`  iommu-sim view (built command, whole process) ${median(times).toFixed(0)} ms, page ${(statSync(page).size / 1e6).toFixed(1)} MB`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
