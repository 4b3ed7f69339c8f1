/**
 * lazySnapshot (the snapshot an `expect:` event reads, once per schedule
 * in a search): each key made when first read, equal to takeSnapshot's.
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { playScenario } from "../../src/sim/runner.ts";
import { loadScenarioFile } from "../../src/sim/scenario/load.ts";
import { lazySnapshot, takeSnapshot } from "../../src/sim/snapshot.ts";

const FILES = ["default.yaml", "arm64-late-smmu.yaml", "iommufd-dirty-access-copy.yaml"].filter((f) => readdirSync("scenarios").includes(f));

describe("lazySnapshot", () => {
  it("has takeSnapshot's keys in its order and, key for key, its values", () => {
    expect(FILES.length).toBe(3);
    for (const f of FILES) {
      const r = playScenario(loadScenarioFile(`scenarios/${f}`), { trace: false });
      const eager = takeSnapshot(r.machine, r.boot);
      const lazy = lazySnapshot(r.machine, r.boot);
      expect(Object.keys(lazy)).toEqual(Object.keys(eager));
      // Read in another order than the keys', and read twice: the same value, made once.
      const keys = Object.keys(eager).reverse() as (keyof typeof eager)[];
      for (const k of keys) {
        expect(lazy[k], `${f}: ${k}`).toEqual(eager[k]);
        expect(lazy[k]).toBe(lazy[k]);
      }
      expect(JSON.stringify(lazy)).toBe(JSON.stringify(eager));
    }
  });
});
