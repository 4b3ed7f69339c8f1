/**
 * The package as a user gets it. `npm pack` builds dist/ from this source
 * (its `prepare` runs `npm run build`, as publishing does, so the tarball
 * never holds a stale build), the tarball is installed into an empty
 * directory, and then, with plain node (no tsx, no loader):
 * - the installed `iommu-sim` runs the installed default scenario and prints
 *   what the source prints;
 * - `import { boot } from "iommu-sim"` boots it to the snapshot the source
 *   gives, and the README's library example prints what the README says;
 * - a TypeScript user type-checks against the installed .d.ts.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boot } from "../../src/index.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The environment for the nested npm and node: this node first on PATH (npm's
 * scripts and the bin's `#!/usr/bin/env node` use it), no NODE_OPTIONS (no
 * loader may reach the children), and none of the per-invocation settings an
 * outer `npm test` exports (npm_config_local_prefix would point the nested
 * npm at this repository); the user's npm configuration (cache, registry) stays.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const perInvocation = /^npm_config_(local_prefix|prefix|global_prefix|call|yes|init_module)$/i;
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && (!/^npm_config_/i.test(k) || perInvocation.test(k))) continue;
    if (k === "NODE_OPTIONS") continue;
    env[k] = v;
  }
  env.PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`;
  return env;
}

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env: childEnv(), encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error !== undefined) throw r.error;
  return r;
}

function ok(cmd: string, args: string[], cwd: string): string {
  const r = run(cmd, args, cwd);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} (in ${cwd}): exit ${r.status ?? r.signal}\n${r.stderr}`);
  return r.stdout;
}

let tmp = "";
let app = "";
let packed: string[] = [];
const installed = () => join(app, "node_modules", "iommu-sim");
const scenario = () => join(installed(), "scenarios", "default.yaml");

describe("the packed package, installed, under plain node", () => {
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), "iommu-sim-pack-"));
    // --ignore-scripts=false: the build (prepare) runs even where an npmrc turns scripts off.
    const packOut = ok("npm", ["pack", "--json", "--ignore-scripts=false", "--pack-destination", tmp], ROOT);
    const pack = JSON.parse(packOut) as { filename: string; files: { path: string }[] }[];
    packed = pack[0]!.files.map((f) => f.path);
    app = join(tmp, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "pack-install-check", private: true, type: "module" }));
    ok("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", join(tmp, pack[0]!.filename)], app);
  }, 300_000);

  afterAll(() => {
    if (tmp !== "") rmSync(tmp, { recursive: true, force: true });
  });

  it("the tarball holds the build, the bin and the scenarios, and no source, tests or tooling", () => {
    for (const f of ["package.json", "README.md", "bin/iommu-sim.js", "bin/load-cli.js", "dist/index.js", "dist/index.d.ts", "dist/cli/main.cjs"]) {
      expect(packed).toContain(f);
    }
    expect(packed).toContain("scenarios/default.yaml");
    expect(packed).toContain("scenarios/schema.json");
    expect(packed.filter((f) => /^dist\/cli\/main\.[0-9a-f]+\.cache$/.test(f))).toHaveLength(1);
    expect(packed.filter((f) => /^(src|test|bench|scripts|\.ci|node_modules)\/|^tsconfig|^eslint|^vitest/.test(f))).toEqual([]);
    // Nothing at run time needs tsx, and the command line's own packages are inside its bundle.
    const deps = readdirSync(join(app, "node_modules")).filter((d) => !d.startsWith("."));
    expect(deps).toEqual(expect.arrayContaining(["iommu-sim", "yaml", "zod"]));
    for (const d of ["tsx", "esbuild", "commander", "typescript"]) expect(deps).not.toContain(d);
  });

  it("the installed iommu-sim runs a scenario and prints what the source prints", () => {
    const r = run(join(app, "node_modules", ".bin", "iommu-sim"), ["run", scenario()], app);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("/sys/kernel/iommu_groups");
    // The same command from this source, its TypeScript compiled by tsx.
    const src = run(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        "const { main } = await import('./src/cli/main.ts'); process.exitCode = await main(process.argv.slice(1));",
        "run",
        scenario(),
      ],
      ROOT,
    );
    expect(src.status).toBe(0);
    expect(r.stdout).toBe(src.stdout);
  });

  it("the installed iommu-sim explores with worker threads (the bundled worker) and finds what the source finds", () => {
    const race = join(app, "race.yaml");
    writeFileSync(
      race,
      [
        "name: deferred probe race",
        "boot: {strategy: {probe_serialisation: none}}",
        "iommus:",
        "  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0, registered: false}",
        "devices:",
        "  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]], added: false}",
        "drivers:",
        "  - {name: da, bus: platform, match: [a]}",
        "events:",
        "  - concurrently:",
        "      - [{device_add: a}]",
        "      - [{iommu_register: smmu0}]",
        "  - expect: {devices: {a: {iommu: smmu0, probe: bound}}}",
        "",
      ].join("\n"),
    );
    expect(packed).toContain("dist/cli/explore-worker.cjs");
    const r = run(join(app, "node_modules", ".bin", "iommu-sim"), ["explore", race, "--json", "--workers", "2"], app);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(1);
    const src = run(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", "const { main } = await import('./src/cli/main.ts'); process.exitCode = await main(process.argv.slice(1));", "explore", race, "--json", "--workers", "1"],
      ROOT,
    );
    expect(src.status).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(src.stdout));
  });

  it("the installed bin loads the code cache the build made for this node", () => {
    // bin/ is not among the package's exports: load it by path, as the bin does.
    const loader = pathToFileURL(join(installed(), "bin", "load-cli.js")).href;
    const probe = `import { loadCli } from ${JSON.stringify(loader)}; console.log(loadCli().script.cachedDataRejected);`;
    const out = ok(process.execPath, ["--input-type=module", "-e", probe], app);
    expect(out.trim()).toBe("false");
  });

  it('`import { boot } from "iommu-sim"` boots a scenario to the snapshot the source gives', () => {
    const script = join(app, "boot.mjs");
    writeFileSync(
      script,
      [
        'import { readFileSync } from "node:fs";',
        'import { boot } from "iommu-sim";',
        `const r = boot(readFileSync(${JSON.stringify(scenario())}, "utf8"));`,
        "process.stdout.write(JSON.stringify({ failures: r.failures, violations: r.violations, expectations: r.expectations, snapshot: r.snapshot }));",
      ].join("\n"),
    );
    const got = JSON.parse(ok(process.execPath, [script], app));
    const want = boot(readFileSync(scenario(), "utf8"));
    expect(got.failures).toEqual([]);
    expect(got.violations).toEqual([]);
    expect(Object.keys(got.snapshot.devices).length).toBeGreaterThan(0);
    expect(got).toEqual(
      JSON.parse(JSON.stringify({ failures: want.failures, violations: want.violations, expectations: want.expectations, snapshot: want.snapshot })),
    );
  });

  it("the README's library example prints what the README says", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const m = /```js\n(\/\/ demo\.mjs\n[\s\S]*?)```\s*`node demo\.mjs` prints `([^`]+)`/.exec(readme);
    expect(m, "README: a ```js block starting `// demo.mjs`, then `node demo.mjs` prints `...`").not.toBeNull();
    writeFileSync(join(app, "demo.mjs"), m![1]!);
    expect(ok(process.execPath, ["demo.mjs"], app).trim()).toBe(m![2]);
  });

  it("the installed .d.ts type-check a TypeScript user of the library", () => {
    writeFileSync(
      join(app, "check.ts"),
      [
        'import { boot, type RunResult, type Snapshot } from "iommu-sim";',
        'const r: RunResult = boot("name: x");',
        "const s: Snapshot = r.snapshot;",
        "const n: number = r.failures.length + r.expectations.passed;",
        "// @ts-expect-error boot takes a scenario object or its text, and the types say so",
        "boot(42);",
        "export { s, n };",
      ].join("\n"),
    );
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { module: "nodenext", target: "es2023", lib: ["es2023"], strict: true, noEmit: true, skipLibCheck: true, types: [] },
        files: ["check.ts"],
      }),
    );
    const r = run(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", app], app);
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
    expect(existsSync(join(installed(), "dist", "index.d.ts"))).toBe(true);
  });
});
