/**
 * Loads the bundled command line, dist/cli/main.cjs (scripts/build.js), with
 * the V8 code cache `npm run build` made for it (main.<build>.cache) after
 * running it once. Compiling the 750 kB bundle, and the functions a run
 * calls, is about a third of the command's start-up; Node 20 has no compile
 * cache of its own (module.enableCompileCache came in Node 22). V8 refuses a
 * cache made by another V8 version or with other V8 flags, and the bundle
 * then compiles as usual; the build id in the file name pairs the cache with
 * the bundle it was made for.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL, URL } from "node:url";
import vm from "node:vm";

export const CLI_BUNDLE = fileURLToPath(new URL("../dist/cli/main.cjs", import.meta.url));

/** Loads the bundle; returns its `main` and what writeCache needs. */
export function loadCli() {
  const src = readFileSync(CLI_BUNDLE, "utf8");
  const build = /^\/\/ iommu-sim build ([0-9a-f]+)/.exec(src)?.[1] ?? "none";
  const cacheFile = `${dirname(CLI_BUNDLE)}/main.${build}.cache`;
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  // CommonJS's wrapper, plus import.meta.url (the build defines it as __importMetaUrl).
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname, __importMetaUrl) {${src}\n})`, {
    filename: CLI_BUNDLE,
    cachedData,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const module = { exports: {} };
  script.runInThisContext()(
    module.exports,
    createRequire(CLI_BUNDLE),
    module,
    CLI_BUNDLE,
    dirname(CLI_BUNDLE),
    pathToFileURL(CLI_BUNDLE).href,
  );
  return { main: module.exports.main, script, cacheFile };
}

/** Writes the code cache of a loaded bundle (after a run, so it holds the functions the run compiled). */
export function writeCache(loaded) {
  writeFileSync(loaded.cacheFile, loaded.script.createCachedData());
}
