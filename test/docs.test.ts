import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { kernelCoverage } from "../scripts/coverage-table.ts";
import { FAILURE_EFFECT_IDS, FAILURE_EFFECTS } from "../src/lib/failure-effects.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

describe("generated docs are current", () => {
  it("docs/kernel-coverage.md matches the @kernel comments (npm run gen-coverage)", () => {
    expect(readFileSync(`${root}/docs/kernel-coverage.md`, "utf8")).toBe(kernelCoverage(root));
  });

  it("the README opens with the two fresh-clone commands", () => {
    const head = readFileSync(`${root}/README.md`, "utf8").split("\n").slice(0, 8).join("\n");
    expect(head).toContain("npm ci && npm start");
    expect(head).toContain("npm ci && npm test");
  });
});

describe("docs/model.md lists every failure effect", () => {
  const model = readFileSync(`${root}/docs/model.md`, "utf8");
  const section = model.slice(model.indexOf("## Failures that change state, as the kernel's do"), model.indexOf("## Deliberate departures"));
  const rows = new Map(
    section
      .split("\n")
      .map((l) => /^\| `([a-z0-9-]+)` \| (.*?) \|/.exec(l))
      .filter((m) => m !== null)
      .map((m) => [m[1]!, m[2]!] as const),
  );

  it("one row per registry id, with its kernel function, and no row for an id the registry lacks", () => {
    expect([...rows.keys()].sort()).toEqual([...FAILURE_EFFECT_IDS].sort());
    for (const id of FAILURE_EFFECT_IDS) expect(rows.get(id)?.replaceAll("`", ""), id).toBe(FAILURE_EFFECTS[id].kernel);
  });
});
