#!/usr/bin/env node
// The iommu-sim command: the command line bundled into one file by
// `npm run build` (scripts/build.js), which `npm ci` runs; bin/load-cli.js loads it.
import { CLI_BUNDLE, loadCli } from "./load-cli.js";

let cli;
try {
  cli = loadCli();
} catch (e) {
  if (e?.code !== "ENOENT" || e.path !== CLI_BUNDLE) throw e;
  process.stderr.write(`iommu-sim: ${CLI_BUNDLE} is missing: run \`npm run build\` in the iommu-sim checkout\n`);
  process.exit(3);
}
process.exitCode = await cli.main(process.argv.slice(2));
