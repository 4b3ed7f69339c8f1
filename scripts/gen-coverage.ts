/**
 * Writes docs/kernel-coverage.md: every kernel function the model mirrors,
 * from the `// @kernel: name` comments beside the code, with where it lives.
 * Run with `npm run gen-coverage`; a test fails when the file is stale.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { kernelCoverage } from "./coverage-table.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
writeFileSync(`${root}/docs/kernel-coverage.md`, kernelCoverage(root));
console.log("wrote docs/kernel-coverage.md");
