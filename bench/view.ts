/**
 * `iommu-sim view` on the 2,000-device machine of bench/late-smmu-machine.ts:
 * the run with a snapshot after every step (src/cli/steps.ts), the steps
 * document's size against whole snapshots, and the page written by the
 * built command (`node bin/iommu-sim.js view`, a whole process). Medians of 3.
 * Then, when chromium is installed (/usr/bin/chromium or
 * $IOMMU_SIM_CHROMIUM), that page in headless chromium at 1280x800: the
 * layout, and every step by the Right arrow key timed from the key press to
 * the frame after the picture repainted (window.iommuSim.painted()), at the
 * zoom the page opens at (right after loading, and once the page has
 * settled) and zoomed out to the whole machine.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
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
    await benchPage(page, log);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const CHROMIUM = process.env.IOMMU_SIM_CHROMIUM ?? "/usr/bin/chromium";

interface PageApi {
  steps: number;
  layoutMs: number[];
  painted: () => Promise<number>;
  go: (i: number) => void;
  fit: () => void;
}
declare const window: { iommuSim: PageApi };

/** The page in chromium: its layout, and each step from the key press to the repainted frame. */
async function benchPage(path: string, log: (line: string) => void): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    log(`  (no chromium at ${CHROMIUM}: the page's times in a browser are not measured)`);
    return;
  }
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`file://${path}`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 60_000 });
    const { steps, layoutMs } = await page.evaluate(() => ({ steps: window.iommuSim.steps, layoutMs: window.iommuSim.layoutMs[0]! }));
    log(`  in chromium (headless, software rendering, 1280x800): layout ${layoutMs.toFixed(0)} ms`);
    // Right after loading, V8 collects the garbage of parsing the page's 9 MB of data (a major collection,
    // concurrent, on the same two cores): the first pass shows that; a reader pressing keys a moment later does not meet it.
    for (const [whole, settle] of [[false, 0], [false, 2000], [true, 0]] as const) {
      await page.waitForTimeout(settle);
      await page.evaluate((w) => {
        window.iommuSim.go(0);
        if (w) window.iommuSim.fit();
        return window.iommuSim.painted();
      }, whole);
      const times: { ms: number; label: string }[] = [];
      for (let i = 1; i < steps; i++) {
        await page.keyboard.press("ArrowRight");
        const ms = await page.evaluate(() => window.iommuSim.painted());
        times.push({ ms, label: (await page.locator("#step-label").textContent()) ?? "" });
      }
      const ms = times.map((t) => t.ms);
      const slow = times.filter((t) => t.ms >= 100);
      log(
        `  a step, key press to repainted frame, ${whole ? "zoomed out to the whole machine (the far picture)" : settle === 0 ? "at the zoom the page opens at, right after loading" : `at the zoom the page opens at, ${settle / 1000} s after`}: ` +
          `median ${median(ms).toFixed(0)} ms, max ${Math.max(...ms).toFixed(0)} ms; ${times.length - slow.length} of ${times.length} under 100 ms` +
          (slow.length === 0 ? "" : `; over: ${slow.map((t) => `${t.label.replace(/^step (\d+) of \d+: /, "$1 ")} ${t.ms.toFixed(0)} ms`).join(", ")}`),
      );
    }
  } finally {
    await browser.close();
  }
}
