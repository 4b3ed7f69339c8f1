/**
 * Writes scenarios/schema.json from the zod schema (src/sim/scenario/schema.ts).
 * Run with `npm run gen-schema`; a test fails when the committed file is stale.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { scenarioJsonSchema } from "../src/sim/scenario/json-schema.ts";

const out = fileURLToPath(new URL("../scenarios/schema.json", import.meta.url));
writeFileSync(out, JSON.stringify(scenarioJsonSchema(), null, 2) + "\n");
console.log(`wrote ${out}`);
