import { readFileSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import { parse as parseYaml } from "yaml";

const built = vi.hoisted(() => ({ parsers: 0, composers: 0 }));

// Count every YAML parser and composer the loader builds.
vi.mock("yaml", async (orig) => {
  const yaml = await orig<typeof import("yaml")>();
  class Parser extends yaml.Parser {
    constructor(...a: ConstructorParameters<typeof yaml.Parser>) {
      super(...a);
      built.parsers++;
    }
  }
  class Composer extends yaml.Composer {
    constructor(...a: ConstructorParameters<typeof yaml.Composer>) {
      super(...a);
      built.composers++;
    }
  }
  return { ...yaml, Parser, Composer };
});

const { parseScenario } = await import("../../src/sim/scenario/load.ts");

describe("JSON input never builds a YAML document", () => {
  const json = JSON.stringify(parseYaml(readFileSync("scenarios/default.yaml", "utf8")));

  it("a .json file, stdin or inline text starting with { is JSON.parse'd only, valid or not", () => {
    built.parsers = built.composers = 0;
    expect(parseScenario(json, "a.json").name).toMatch(/x86 server/);
    expect(parseScenario(json, "<stdin>").name).toMatch(/x86 server/);
    expect(() => parseScenario(json.replace('"pci"', '"pcie"'), "b.json")).toThrow(/did you mean 'pci'/);
    expect(() => parseScenario(`${json.slice(0, -1)},}`, "c.json")).toThrow(/no trailing comma/);
    expect(built).toEqual({ parsers: 0, composers: 0 });
  });

  it("while YAML goes through them (the count works)", () => {
    built.parsers = built.composers = 0;
    parseScenario(readFileSync("scenarios/default.yaml", "utf8"), "d.yaml");
    expect(built).toEqual({ parsers: 1, composers: 1 });
  });
});
