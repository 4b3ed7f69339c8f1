import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { INVARIANT_RULES } from "../../src/sim/invariants.ts";

const doc = readFileSync(new URL("../../docs/invariants.md", import.meta.url), "utf8");

/** The text of the section whose heading is exactly `### <rule>`, up to the next heading. */
function section(rule: string): string | null {
  const lines = doc.split("\n");
  const start = lines.findIndex((l) => l === `### ${rule}`);
  if (start < 0) return null;
  const end = lines.findIndex((l, i) => i > start && l.startsWith("#"));
  return lines.slice(start + 1, end < 0 ? undefined : end).join("\n");
}

describe("docs/invariants.md", () => {
  it("lists the rules the checker can emit", () => {
    expect(INVARIANT_RULES.length).toBeGreaterThan(15);
    expect(new Set(INVARIANT_RULES).size).toBe(INVARIANT_RULES.length);
  });

  for (const rule of INVARIANT_RULES) {
    it(`has a section for ${rule} naming the kernel rule and what the kernel does`, () => {
      const text = section(rule);
      expect(text, `no "### ${rule}" heading`).not.toBeNull();
      expect(text).toMatch(/\*\*Rule:\*\*/);
      expect(text).toMatch(/\*\*Kernel( refuses)?:\*\*/);
      // It names at least one kernel function, and says whether the state is refused, warned about or unreachable.
      expect(text).toMatch(/`[a-z_]+[a-z0-9_]*`/);
      expect(text).toMatch(/violation/);
      // The summary table has a row for it too.
      expect(doc).toContain(`| ${rule} |`);
    });
  }
});
