/**
 * Property tests of the loader: whatever the input, it either yields a
 * scenario or throws a ScenarioError whose every message is a short
 * sentence (never zod's bare "Invalid input"), and the command line exits 0
 * or 2 on it, never 3.
 */
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { main } from "../../src/cli/main.ts";
import { parseScenario, ScenarioError, validateScenario } from "../../src/sim/scenario/load.ts";

const ZOD_DEFAULTS = /Invalid input|Invalid option|Too (big|small)|Unrecognized key|Invalid string|Invalid key/;

/** Loads, and checks what came back: a scenario, or a ScenarioError of short sentences. */
function loadChecked(load: () => unknown): "ok" | "invalid" {
  try {
    load();
    return "ok";
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    expect(e.problems.length).toBeGreaterThan(0);
    expect(e.problems.length).toBeLessThanOrEqual(51);
    for (const line of e.message.split("\n")) {
      expect(line.length).toBeLessThan(500);
      expect(line).not.toMatch(ZOD_DEFAULTS);
    }
    return "invalid";
  }
}

const base = parse(readFileSync("scenarios/default.yaml", "utf8")) as Record<string, unknown>;
const BASE_TEXT = JSON.stringify(base);

/** A path into `v` chosen by the numbers in `picks`, with the container it ends in. */
function pick(v: unknown, picks: number[]): { parent: Record<string, unknown> | unknown[]; key: string | number } | null {
  let cur = v;
  let last: { parent: Record<string, unknown> | unknown[]; key: string | number } | null = null;
  for (const p of picks) {
    if (Array.isArray(cur) && cur.length > 0) {
      const k = p % cur.length;
      last = { parent: cur, key: k };
      cur = cur[k];
    } else if (cur !== null && typeof cur === "object" && Object.keys(cur).length > 0) {
      const keys = Object.keys(cur);
      const k = keys[p % keys.length]!;
      last = { parent: cur as Record<string, unknown>, key: k };
      cur = (cur as Record<string, unknown>)[k];
    } else break;
  }
  return last;
}

const value = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom("0xffffffffffffffffff", "4K", "-1", "", "x".repeat(5000), "EBUSY", "platform", 2 ** 60, -0.5, 1e300),
);

const mutation = fc.record({
  picks: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
  kind: fc.constantFrom("set", "delete", "rename"),
  value,
  typo: fc.string({ minLength: 1, maxLength: 12 }),
});

function mutate(m: { picks: number[]; kind: string; value: unknown; typo: string }): unknown {
  const doc = structuredClone(base);
  const at = pick(doc, m.picks);
  if (at === null) return doc;
  const { parent, key } = at;
  if (Array.isArray(parent)) {
    if (m.kind === "delete") parent.splice(key as number, 1);
    else parent[key as number] = m.value;
  } else if (m.kind === "delete") delete parent[key];
  else if (m.kind === "rename") {
    parent[`${String(key)}${m.typo}`] = parent[key];
    delete parent[key];
  } else parent[key] = m.value;
  return doc;
}

describe("the loader never fails with anything but a ScenarioError of short sentences", () => {
  it("on mutations of a valid scenario, as data, as YAML and as JSON", () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
        let doc: unknown = base;
        for (const m of ms) doc = mutate(m);
        const a = loadChecked(() => validateScenario(doc, "fuzz"));
        const b = loadChecked(() => parseScenario(stringify(doc), "fuzz.yaml"));
        const c = loadChecked(() => parseScenario(JSON.stringify(doc) ?? "null", "fuzz.json"));
        expect(b).toBe(a);
        expect(c).toBe(a);
      }),
      { numRuns: 150, seed: 20250601 },
    );
    expect(JSON.stringify(base)).toBe(BASE_TEXT);
  });

  it("on arbitrary values and arbitrary text", () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 4 }), (v) => {
        loadChecked(() => validateScenario(v, "fuzz"));
      }),
      { numRuns: 200, seed: 7 },
    );
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (t) => {
        loadChecked(() => parseScenario(t, "fuzz.yaml"));
        loadChecked(() => parseScenario(t, "fuzz.json"));
        loadChecked(() => parseScenario(t, "<stdin>"));
      }),
      { numRuns: 200, seed: 11 },
    );
  });

  it("on text made of YAML's punctuation (anchors, aliases, tags, nesting)", () => {
    const piece = fc.constantFrom("name: x\n", "&a ", "*a ", "*b ", "!!str ", "!t ", "[", "]", "{", "}", ", ", ": ", "- ", "\n  ", "'", '"', "? ", "---\n", "#c\n", "0x1", "<<: ");
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 60 }), (ps) => {
        loadChecked(() => parseScenario(ps.join(""), "fuzz.yaml"));
      }),
      { numRuns: 300, seed: 3 },
    );
  });

  it("the command line exits 0 or 2 on such files, never 3", async () => {
    const samples = fc.sample(fc.array(mutation, { minLength: 1, maxLength: 2 }), { numRuns: 30, seed: 5 });
    for (const ms of samples) {
      let doc: unknown = base;
      for (const m of ms) doc = mutate(m);
      const text = stringify(doc);
      const err: string[] = [];
      const code = await main(["validate", "-"], { out: () => {}, err: (s) => err.push(s), readStdin: async () => text });
      expect([0, 2]).toContain(code);
      if (code === 2) expect(err.length).toBeGreaterThan(0);
    }
  });
});
