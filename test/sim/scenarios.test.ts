import { readdirSync, readFileSync } from "node:fs";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadScenarioFile } from "../../src/sim/scenario/load.ts";
import { scenarioJsonSchema } from "../../src/sim/scenario/json-schema.ts";
import { runScenario } from "../../src/sim/runner.ts";

const dir = new URL("../../scenarios/", import.meta.url);
const isScenario = (f: string): boolean => (f.endsWith(".yaml") || f.endsWith(".json")) && f !== "schema.json";
// The top-level scenarios, the design arguments under scenarios/designs/ and the races under scenarios/races/
// (their default schedule here; test/cli/explore.test.ts checks what exploring them finds).
const files = [
  ...readdirSync(dir).filter(isScenario),
  ...readdirSync(new URL("designs/", dir)).filter(isScenario).map((f) => `designs/${f}`),
  ...readdirSync(new URL("races/", dir)).filter(isScenario).map((f) => `races/${f}`),
];

describe("shipped scenarios", () => {
  it("include the ones the foundation issue asks for", () => {
    for (const f of ["default.yaml", "x86-mock-wrong-ops.yaml", "arm64-late-smmu.yaml", "two-smmus-unregister.yaml", "mixed-drivers.yaml"]) {
      expect(files).toContain(f);
    }
  });

  const schema = JSON.parse(readFileSync(new URL("schema.json", dir), "utf8")) as Record<string, unknown>;

  it("schema.json is the one generated from the zod schema (run npm run gen-schema)", () => {
    expect(schema).toEqual(scenarioJsonSchema());
  });

  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const validate = ajv.compile(schema);

  for (const f of files) {
    it(`${f} validates against schema.json`, () => {
      const ok = validate(parse(readFileSync(new URL(f, dir), "utf8")));
      expect(validate.errors ?? []).toEqual([]);
      expect(ok).toBe(true);
    });

    it(`${f} passes its expectations and every invariant`, () => {
      const r = runScenario(loadScenarioFile(new URL(f, dir).pathname));
      expect(r.failures).toEqual([]);
      expect(r.expectations.passed).toBeGreaterThan(0);
    });
  }
});
