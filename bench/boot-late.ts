/**
 * Boot benchmark of the machine users run most: every device has a driver
 * and the 64 SMMUs register late (bench/late-smmu-machine.ts), so every
 * device defers and the registrations bind them all through deferred probe.
 * Timed in-process (what `boot()` does: build the machine, boot, play the
 * events, check the invariants, take the snapshot) and as a whole
 * `iommu-sim run FILE --json` process with the scenario in a .json file,
 * with the process's peak RSS (the command's bundle rebuilt from this
 * source first). Medians of 3 runs.
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runScenario } from "../src/sim/runner.ts";
import { lateSmmuMachine, LATE_SMMUS } from "./late-smmu-machine.ts";
import { median } from "./stats.ts";

const SIZES = [25_000, 50_000, 100_000];
const RUNS = 3;
const BIN = fileURLToPath(new URL("../bin/iommu-sim.js", import.meta.url));
/** Reports the child's peak RSS (KiB) on fd 3 as it exits. */
const RSS_HOOK = `data:text/javascript,import{writeSync}from"node:fs";process.on("exit",()=>writeSync(3,String(process.resourceUsage().maxRSS)))`;

interface InProcess {
  ms: number;
  bound: number;
}

function inProcess(n: number, check: boolean): InProcess {
  const { scenario, withIommu } = lateSmmuMachine(n);
  const t0 = performance.now();
  const r = runScenario(scenario, { trace: false });
  const ms = performance.now() - t0;
  const bound = r.snapshot.devices.filter((d) => d.probe === "bound").length;
  if (check) {
    const probed = r.snapshot.devices.filter((d) => d.iommu !== null).length;
    if (bound !== scenario.devices.length || probed !== withIommu) {
      throw new Error(`${n}: ${bound} of ${scenario.devices.length} devices bound, ${probed} of ${withIommu} behind an IOMMU`);
    }
    if (r.failures.length > 0) throw new Error(`${n}: ${r.failures[0]!.kind}: ${r.failures[0]!.message}`);
  }
  return { ms, bound };
}

interface WholeProcess {
  ms: number;
  rssMB: number;
  outMiB: number;
}

function wholeProcess(file: string, out: string): WholeProcess {
  const fd = openSync(out, "w");
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ["--import", RSS_HOOK, BIN, "run", file, "--json"], {
    stdio: ["ignore", fd, "pipe", "pipe"],
    maxBuffer: 1 << 20,
  });
  const ms = performance.now() - t0;
  closeSync(fd);
  if (r.status !== 0) throw new Error(`iommu-sim run ${file} --json exited ${r.status}: ${String(r.stderr).slice(0, 500)}`);
  const rssKiB = Number(String(r.output[3]));
  const outBytes = readFileSync(out).length;
  return { ms, rssMB: (rssKiB * 1024) / 1e6, outMiB: outBytes / 2 ** 20 };
}

const ratios = (t: number[]) => `50k/25k ${(t[1]! / t[0]!).toFixed(2)}x, 100k/50k ${(t[2]! / t[1]!).toFixed(2)}x`;

export async function benchBootLate(log: (line: string) => void): Promise<void> {
  log(`boot, late SMMUs: ${LATE_SMMUS} SMMUv3 instances registering after every device and driver, every device with a driver (median of ${RUNS} runs)`);
  log(`  half platform devices, half PCI functions under root ports, switches and 8-function endpoints`);
  inProcess(5_000, true);
  const inTimes: number[] = [];
  for (const n of SIZES) {
    const first = inProcess(n, true);
    const ms = median([first.ms, ...Array.from({ length: RUNS - 1 }, () => inProcess(n, false).ms)]);
    inTimes.push(ms);
    log(`    in-process ${String(first.bound).padStart(7)} devices: ${ms.toFixed(0).padStart(5)} ms  (${Math.round(first.bound / (ms / 1000)).toLocaleString("en-US")} devices/s)`);
  }
  log(`    scaling: ${ratios(inTimes)}  (goal: <= 2.2x per doubling; 100k < 1500 ms)`);
  // The command runs the bundle in dist/: rebuild it from this source first.
  const build = spawnSync(process.execPath, ["scripts/build.js", "--cli"], { cwd: fileURLToPath(new URL("..", import.meta.url)), stdio: "inherit" });
  if (build.status !== 0) throw new Error("boot: node scripts/build.js --cli failed");
  const dir = mkdtempSync(join(tmpdir(), "iommu-sim-bench-"));
  try {
    const wholeTimes: number[] = [];
    for (const n of SIZES) {
      const { scenario } = lateSmmuMachine(n);
      const file = join(dir, `late-${n}.json`);
      writeFileSync(file, JSON.stringify(scenario));
      const inMiB = readFileSync(file).length / 2 ** 20;
      const runs = Array.from({ length: RUNS }, () => wholeProcess(file, join(dir, "out.json")));
      const ms = median(runs.map((r) => r.ms));
      wholeTimes.push(ms);
      log(
        `    iommu-sim run FILE --json, ${String(scenario.devices.length).padStart(7)} devices: ${ms.toFixed(0).padStart(5)} ms, peak RSS ${median(runs.map((r) => r.rssMB)).toFixed(0)} MB  (scenario ${inMiB.toFixed(1)} MiB of JSON, snapshot ${runs[0]!.outMiB.toFixed(1)} MiB)`,
      );
    }
    log(`    scaling: ${ratios(wholeTimes)}  (goal: <= 2.2x per doubling; 100k < 3000 ms, peak RSS < 800 MB)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchBootLate((l) => console.log(l));
}
