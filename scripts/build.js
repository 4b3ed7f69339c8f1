// @ts-check
/**
 * `npm run build` (run by `npm ci` and `npm pack` as `prepare`) builds dist/
 * from src/, afresh:
 * - the library, `import { boot } from "iommu-sim"`: tsc's JavaScript and
 *   .d.ts, one module per source file (tsconfig.build.json);
 * - the command line: src/cli/main.ts and everything it imports, zod, yaml
 *   and commander included, bundled into one file, dist/cli/main.cjs (at
 *   its source's depth, so paths relative to import.meta.url still hold),
 *   with a V8 code cache made by running it once, dist/cli/main.<build>.cache.
 *   bin/iommu-sim.js loads both (bin/load-cli.js). `explore`'s worker threads
 *   run dist/cli/explore-worker.cjs, the model bundled alone. Node loads one file
 *   several times faster than the ~270 modules behind it, and the cache
 *   saves most of compiling it (`npm run bench -- startup` prints the figures).
 *
 *   node scripts/build.js [--cli]     (--cli: only the command-line bundle)
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath, URL } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const notices = "licenses.txt";

if (!process.argv.includes("--cli")) {
  rmSync(`${root}dist`, { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", `${root}tsconfig.build.json`], { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`build: tsc -p tsconfig.build.json failed (${r.status ?? r.signal})`);
    process.exit(1);
  }
}

/**
 * zod's `z` namespace re-exports every translation of its messages
 * (`z.locales`, about 360 kB, half the bundle); the project never uses it.
 * English, the default, is imported separately by zod and stays.
 * @type {import("esbuild").Plugin}
 */
const noZodLocales = {
  name: "no-zod-locales",
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: "zod-locales", namespace: "no-zod-locales" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "no-zod-locales" }, () => ({ contents: "export {};", loader: "js" }));
  },
};

// A fresh id pairs the bundle with the code cache made for it (bin/load-cli.js).
const id = randomBytes(8).toString("hex");
mkdirSync(`${root}dist/cli`, { recursive: true });
for (const f of readdirSync(`${root}dist/cli`)) if (/^main\..*\.cache$/.test(f)) rmSync(`${root}dist/cli/${f}`);

// The options both Node bundles share. CommonJS, to be compiled by vm.Script with a code cache
// (bin/load-cli.js): Node 20 has no code cache for ES modules. import.meta.url is the bundle's URL;
// top-level await cannot be bundled so (a build error). Whitespace and syntax minified only:
// identifiers keep their names, so a stack trace from a model bug (exit 3) still names the functions.
const nodeCjs = {
  absWorkingDir: root,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  define: {
    "import.meta.url": "__importMetaUrl",
    "import.meta.dirname": "__dirname",
    "import.meta.filename": "__filename",
  },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  plugins: [noZodLocales],
  logLevel: "warning",
};

const result = await build({
  ...nodeCjs,
  entryPoints: ["src/cli/main.ts"],
  outfile: `${root}dist/cli/main.cjs`,
  // `view` run from source bundles the page with esbuild (src/cli/view-bundle.ts); the built command reads dist/view/page.js.
  external: ["esbuild"],
  metafile: true,
  banner: { js: `// iommu-sim build ${id}: the command line, bundled by scripts/build.js; the bundled packages' licenses are in ${notices}.` },
});
if (result.warnings.length > 0) {
  console.error("build: esbuild warned (above); the bundle may not behave as the source does");
  process.exit(1);
}

// The worker thread of `explore` (src/sim/explore/pool.ts starts it beside the bundle): the model without the command line.
const worker = await build({
  ...nodeCjs,
  entryPoints: ["src/sim/explore/worker.ts"],
  outfile: `${root}dist/cli/explore-worker.cjs`,
  banner: { js: "var __importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
});
if (worker.warnings.length > 0) {
  console.error("build: esbuild warned (above) on the explore worker");
  process.exit(1);
}

/** The license comment of the page's script: the one package bundled in it. */
function pageLicense() {
  const pkg = JSON.parse(readFileSync(`${root}node_modules/cytoscape/package.json`, "utf8"));
  const text = readFileSync(`${root}node_modules/cytoscape/LICENSE`, "utf8").trim().replace(/\*\//g, "* /");
  return `/*! iommu-sim view page. Bundles cytoscape ${pkg.version} (${pkg.license}):\n${text}\n*/`;
}

// The page `iommu-sim view` writes: src/view-page/ with cytoscape, for the browser, in one file the command embeds.
// src/cli/view-bundle.ts builds the same from source with the same options.
mkdirSync(`${root}dist/view`, { recursive: true });
const page = await build({
  absWorkingDir: root,
  entryPoints: ["src/view-page/main.ts"],
  outfile: `${root}dist/view/page.js`,
  bundle: true,
  format: "iife",
  platform: "browser",
  target: "es2020",
  minify: true,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
  // The page is copied wherever a user puts it: it carries cytoscape's license (src/cli/view-bundle.ts does the same).
  banner: { js: pageLicense() },
});
if (page.warnings.length > 0) {
  console.error("build: esbuild warned (above) on the view page");
  process.exit(1);
}

// Run the bundle once on the default scenario and keep V8's code cache of it.
const env = { ...process.env };
delete env.NODE_OPTIONS; // the cache is valid only for the V8 flags it was made with: none
const cache = spawnSync(
  process.execPath,
  [
    "--input-type=module",
    "-e",
    `import { loadCli, writeCache } from "./bin/load-cli.js";
     const cli = loadCli();
     await cli.main(["run", "scenarios/default.yaml"]);
     writeCache(cli);`,
  ],
  { cwd: root, env, stdio: ["ignore", "ignore", "inherit"] },
);
if (cache.status !== 0) {
  console.error(`build: making the code cache of dist/cli/main.cjs failed (${cache.status ?? cache.signal})`);
  process.exit(1);
}

/** The packages (node_modules/name or node_modules/@scope/name) the bundle took code from. */
const packages = new Set();
for (const input of [...Object.keys(result.metafile.inputs), ...Object.keys(page.metafile.inputs)]) {
  const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (m !== null) packages.add(m[1]);
}
const sections = [...packages].sort().map((name) => {
  const dir = `${root}node_modules/${name}`;
  const pkg = JSON.parse(readFileSync(`${dir}/package.json`, "utf8"));
  const file = ["LICENSE", "LICENSE.md", "LICENSE.txt", "license"].find((f) => existsSync(`${dir}/${f}`));
  const text = file === undefined ? `(no license file; package.json says ${pkg.license})` : readFileSync(`${dir}/${file}`, "utf8").trim();
  return `${pkg.name} ${pkg.version} (${pkg.license})\n\n${text}\n`;
});
writeFileSync(`${root}dist/cli/${notices}`, `dist/cli/main.cjs and dist/view/page.js (the script of the pages \`iommu-sim view\` writes) bundle these packages:\n\n${sections.join(`\n${"-".repeat(72)}\n\n`)}`);
