/**
 * The kernel presets: every preset names a strategy on every axis, and the
 * table in docs/kernel-presets.md is the one in src/designs/presets.ts.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { presetProblems, PRESET_NAMES, PRESETS } from "../../src/designs/presets.ts";
import { AXIS_NAMES } from "../../src/designs/registry.ts";

describe("kernel presets", () => {
  it("name a registered strategy on every registered axis, and no other axis", () => {
    expect(presetProblems()).toEqual([]);
  });

  it("docs/kernel-presets.md's table is the preset table", () => {
    const md = readFileSync(new URL("../../docs/kernel-presets.md", import.meta.url), "utf8");
    const cells = (line: string): string[] => line.split("|").slice(1, -1).map((c) => c.trim().replace(/`/g, ""));
    const lines = md.split("\n");
    const head = lines.findIndex((l) => l.startsWith("| axis \\ preset |"));
    expect(head).toBeGreaterThanOrEqual(0);
    expect(cells(lines[head]!).slice(1)).toEqual(PRESET_NAMES);
    const rows = new Map<string, string[]>();
    for (const l of lines.slice(head + 2)) {
      if (!l.startsWith("|")) break;
      const [axis, ...names] = cells(l);
      rows.set(axis!, names);
    }
    expect([...rows.keys()]).toEqual(AXIS_NAMES);
    for (const axis of AXIS_NAMES) {
      expect(rows.get(axis), axis).toEqual(PRESET_NAMES.map((p) => (PRESETS[p].strategy as Record<string, string>)[axis]));
    }
  });
});
