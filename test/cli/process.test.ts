/**
 * The command as a real process: a stdout closed early, stdin, and the
 * README's example script. The process runs src/cli/main.ts's main() the way
 * bin/iommu-sim.js does, on the TypeScript sources (tsx).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ENTRY = ["--import", "tsx", "--input-type=module", "-e", "import { main } from './src/cli/main.ts'; process.exitCode = await main(process.argv.slice(1));", "--"];

const tmp = mkdtempSync(join(tmpdir(), "iommu-sim-process-"));

/** A machine whose trace and snapshot run to well over a pipe buffer (64 KiB). */
function bigScenario(): string {
  const devices = Array.from({ length: 300 }, (_, i) => `  - {name: dev${i}, bus: platform, fwnode: /soc/dev${i}, iommus: [[smmu0, ${i}]]}`);
  const path = join(tmp, "big.yaml");
  writeFileSync(path, `name: big\niommus:\n  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu}\ndevices:\n${devices.join("\n")}\n`);
  return path;
}

describe("a closed stdout ends the command quietly", () => {
  const big = bigScenario();

  it.each([[["--trace"]], [["--json"]], [["--json", "--trace"]]])("run %j with its stdout closed before it writes: normal exit code, nothing on stderr", async (flags) => {
    const child = spawn(process.execPath, [...ENTRY, "run", big, ...flags], { stdio: ["ignore", "pipe", "pipe"] });
    // Close our end of the pipe at once: every write the command makes meets EPIPE.
    child.stdout.destroy();
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
    expect(err).toBe("");
    expect(code).toBe(0);
  });

  it("run FILE --trace | head -2 prints two lines and the command exits 0 without a stack trace", () => {
    const errFile = join(tmp, "err.txt");
    const rcFile = join(tmp, "rc.txt");
    const cmd = [process.execPath, ...ENTRY.map((a) => `'${a.replace(/'/g, "'\\''")}'`), "run", big, "--trace"].join(" ");
    const r = spawnSync("sh", ["-c", `(${cmd} 2>${errFile}; echo $? >${rcFile}) | head -2`], { encoding: "utf8" });
    expect(r.stdout.split("\n")).toEqual(["== boot: iommu_register smmu0", "  iommu_device_register(smmu0) = 0", ""]);
    expect(readFileSync(errFile, "utf8")).toBe("");
    expect(readFileSync(rcFile, "utf8").trim()).toBe("0");
  });
});

describe("start-up loads only what the command needs", () => {
  /** The repository modules and packages a command loads. */
  function loaded(...argv: string[]): { ours: string[]; packages: string[] } {
    const log = join(tmp, `imports-${argv.join("-").replace(/[^\w-]/g, "_")}.log`);
    writeFileSync(log, "");
    const r = spawnSync(process.execPath, ["--import", "./test/cli/log-imports.mjs", ...ENTRY, ...argv], { encoding: "utf8", env: { ...process.env, IMPORT_LOG: log } });
    expect(r.status).toBe(0);
    const urls = readFileSync(log, "utf8").split("\n").filter((u) => u.startsWith("file:"));
    const root = new URL("../../", import.meta.url).href;
    return {
      ours: urls.filter((u) => u.startsWith(root) && !u.includes("/node_modules/")).map((u) => u.slice(root.length)),
      packages: [...new Set(urls.filter((u) => u.includes("/node_modules/")).map((u) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)![1]!))].filter((p) => p !== "tsx" && p !== "esbuild"), // (the TypeScript runner)
    };
  }

  it("--version and --help load commander and four small modules: no model, no zod, no yaml", () => {
    for (const flag of ["--version", "--help"]) {
      expect(loaded(flag), flag).toEqual({ ours: ["src/cli/main.ts", "src/cli/exit.ts", "src/cli/io.ts", "src/cli/version.ts"], packages: ["commander"] });
    }
  });

  it("a command loads the model", () => {
    const r = loaded("validate", "scenarios/default.yaml");
    expect(r.ours).toContain("src/cli/commands.ts");
    expect(r.ours).toContain("src/sim/scenario/schema.ts");
    expect(r.packages).toEqual(expect.arrayContaining(["commander", "zod", "yaml"]));
  });
});

describe("stdin", () => {
  it("- reads a piped scenario, JSON or YAML", () => {
    const yaml = readFileSync("scenarios/arm64-late-smmu.yaml", "utf8");
    for (const input of [yaml, JSON.stringify({ name: "piped", devices: [{ name: "a", bus: "platform" }] })]) {
      const r = spawnSync(process.execPath, [...ENTRY, "check", "-"], { input, encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.stdout).toMatch(/^<stdin>: PASS: /);
      expect(r.status).toBe(0);
    }
  });
});

describe("the README's library example", () => {
  const readme = readFileSync("README.md", "utf8");
  const script = readFileSync("examples/strategies.mjs", "utf8");

  it("is shown in full in the README", () => {
    expect(readme).toContain("```js\n" + script + "```\n");
  });

  it("runs, and prints exactly what the README shows", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "--import", "./test/cli/self-import.mjs", "examples/strategies.mjs"], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const shown = /`node examples\/strategies\.mjs` prints:\n\n```text\n([^`]*)```/.exec(readme);
    expect(shown).not.toBeNull();
    expect(r.stdout).toBe(shown![1]);
    // boot() applied the strategy: the mock device gets the mock's ops under ask-each only.
    expect(r.stdout).toContain("upstream: iommufd_mock0 iommu=null ops=null; 0 failure(s)");
    expect(r.stdout).toContain("ask-each: iommufd_mock0 iommu=mock-iommu ops=mock;");
  });
});
