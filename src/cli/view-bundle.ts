/**
 * The page's script: src/view-page/ bundled for the browser with cytoscape
 * into one file. `npm run build` writes it to dist/view/page.js
 * (scripts/build.js); the command line run from its bundle reads that file,
 * and run from source (a checkout, the tests) bundles it afresh with
 * esbuild, a devDependency, once per process, so it is never stale.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Where `npm run build` writes the page's script (this file's path is src/cli/ or dist/cli/: the same depth). */
const PAGE_BUNDLE = fileURLToPath(new URL("../../dist/view/page.js", import.meta.url));
const PAGE_ENTRY = fileURLToPath(new URL("../../src/view-page/main.ts", import.meta.url));

let built: Promise<string> | null = null;

/** The page's script, or an error line. */
export async function pageScript(): Promise<string | { error: string }> {
  if (import.meta.url.endsWith(".ts")) {
    built ??= bundleFromSource();
    return built;
  }
  try {
    return readFileSync(PAGE_BUNDLE, "utf8");
  } catch {
    return { error: `iommu-sim view: ${PAGE_BUNDLE} is missing: run \`npm run build\` in the iommu-sim checkout` };
  }
}

/** The license comment of the page's script (as scripts/build.js writes it): cytoscape is bundled in every page. */
function pageLicense(): string {
  const dir = fileURLToPath(new URL("../../node_modules/cytoscape/", import.meta.url));
  const pkg = JSON.parse(readFileSync(`${dir}package.json`, "utf8")) as { version: string; license: string };
  const text = readFileSync(`${dir}LICENSE`, "utf8").trim().replace(/\*\//g, "* /");
  return `/*! iommu-sim view page. Bundles cytoscape ${pkg.version} (${pkg.license}):\n${text}\n*/`;
}

async function bundleFromSource(): Promise<string> {
  // A variable specifier: the command-line bundle does not take esbuild in (scripts/build.js marks it external too).
  const name = "esbuild";
  const esbuild = (await import(name)) as typeof import("esbuild");
  const r = await esbuild.build({
    entryPoints: [PAGE_ENTRY],
    bundle: true,
    write: false,
    format: "iife",
    platform: "browser",
    target: "es2020",
    minify: true,
    legalComments: "none",
    logLevel: "warning",
    banner: { js: pageLicense() },
  });
  return r.outputFiles[0]!.text;
}
