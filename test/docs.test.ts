import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { kernelCoverage } from "../scripts/coverage-table.ts";

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
