/**
 * Start-up benchmark: `iommu-sim run scenarios/default.yaml` as a whole
 * process, wall time from spawn to exit, against `node -e 0`. Goal: the
 * command within 3x of `node -e 0`.
 *
 * Three commands, run in turn (one warm-up round, then five timed rounds;
 * median of five with the best run beside it):
 * - `node -e 0`, Node's own start and exit;
 * - the command from source, its TypeScript compiled by tsx's loader on
 *   every run (what bin/iommu-sim.js did before the package was compiled);
 * - bin/iommu-sim.js as installed, loading the bundle dist/cli/main.cjs and its code cache, rebuilt
 *   from src/ first (`node scripts/build.js --cli`) so it measures this source.
 *
 *   npm run bench -- startup
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { best, median } from "./stats.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RUNS = 5;
const GOAL = 3;
const SCENARIO = "scenarios/default.yaml";

interface Command {
  label: string;
  args: string[];
}

const COMMANDS: Command[] = [
  { label: "node -e 0", args: ["-e", "0"] },
  {
    label: "from source through tsx (before)",
    args: [
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      "const { main } = await import('./src/cli/main.ts'); process.exitCode = await main(process.argv.slice(1));",
      "run",
      SCENARIO,
    ],
  },
  { label: "bin/iommu-sim.js, bundled (after)", args: ["bin/iommu-sim.js", "run", SCENARIO] },
];

/** The environment without NODE_OPTIONS, so no loader or flag reaches the children. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

/** Runs one command to completion; returns its wall time in ms. */
function timeOnce(c: Command, env: NodeJS.ProcessEnv): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, c.args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${c.label}: exit ${r.status ?? r.signal}: ${r.stderr.toString().slice(0, 500)}`);
  return ms;
}

export async function benchStartup(log: (line: string) => void): Promise<void> {
  const build = spawnSync(process.execPath, ["scripts/build.js", "--cli"], { cwd: ROOT, stdio: "inherit" });
  if (build.status !== 0) throw new Error("startup: node scripts/build.js --cli failed");

  log(`startup: \`iommu-sim run ${SCENARIO}\` as a whole process, spawn to exit (median of ${RUNS} runs after a warm-up, best in brackets)`);
  const env = cleanEnv();
  const times: number[][] = COMMANDS.map(() => []);
  for (let round = 0; round <= RUNS; round++) {
    COMMANDS.forEach((c, i) => {
      const ms = timeOnce(c, env);
      if (round > 0) times[i]!.push(ms);
    });
  }
  const base = median(times[0]!);
  COMMANDS.forEach((c, i) => {
    const t = times[i]!;
    const ratio = median(t) / base;
    const vs = i === 0 ? "" : `  ${ratio.toFixed(1).padStart(5)}x node -e 0`;
    const goal = i === COMMANDS.length - 1 ? `  (goal: <= ${GOAL}x: ${ratio <= GOAL ? "met" : "NOT met"})` : "";
    log(`  ${c.label.padEnd(40)} ${median(t).toFixed(0).padStart(5)} ms [${best(t).toFixed(0).padStart(5)}]${vs}${goal}`);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await benchStartup((l) => console.log(l));
}
