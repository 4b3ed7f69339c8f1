/**
 * The layers of DESIGN.md, enforced: each folder under src/ imports only
 * from itself and the layers listed for it (dependencies point down).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ALLOWED: Record<string, string[]> = {
  lib: [],
  pgtable: ["lib"],
  base: ["lib"],
  firmware: ["base", "lib"],
  iommu: ["firmware", "base", "pgtable", "lib"],
  drivers: ["iommu", "firmware", "base", "pgtable", "lib"],
  dma: ["iommu", "base", "pgtable", "lib"],
  designs: ["iommu", "drivers", "firmware", "base", "lib"],
  iommufd: ["dma", "iommu", "base", "pgtable", "lib"],
  sim: ["designs", "iommufd", "dma", "drivers", "iommu", "firmware", "base", "pgtable", "lib"],
  cli: ["sim", "designs", "iommufd", "dma", "drivers", "iommu", "firmware", "base", "pgtable", "lib"],
  // The web page of `iommu-sim view` (bundled for the browser by scripts/build.js): it reads the JSON the CLI embeds. It takes
  // the shapes of that JSON from the CLI and the model as types only, and at run time only the trace renderer (see below).
  "view-page": ["cli", "sim", "lib"],
};

const SRC = new URL("../src/", import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

describe("layering", () => {
  const all = files(SRC);

  it("every top-level folder of src/ is a known layer", () => {
    const layers = new Set(all.map((f) => relative(SRC, f).split("/")[0]!).filter((l) => !l.endsWith(".ts")));
    for (const l of layers) expect(Object.keys(ALLOWED)).toContain(l);
  });

  it("imports point only down the layers", () => {
    const bad: string[] = [];
    for (const f of all) {
      const rel = relative(SRC, f);
      const layer = rel.split("/")[0]!;
      if (layer.endsWith(".ts")) continue;
      const text = readFileSync(f, "utf8");
      for (const m of text.matchAll(/^\s*(?:import|export)[^"']*from\s+["']([^"']+)["']/gm)) {
        const spec = m[1]!;
        if (!spec.startsWith(".")) continue;
        const target = relative(SRC, join(f, "..", spec)).split("/")[0]!;
        if (target !== layer && !ALLOWED[layer]!.includes(target)) bad.push(`${rel} imports ${spec} (${layer} -> ${target})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("the page takes only types from outside its folder, and at run time only the trace renderer (no Node code in the bundle)", () => {
    const bad: string[] = [];
    for (const f of all.filter((f) => relative(SRC, f).startsWith("view-page/"))) {
      const text = readFileSync(f, "utf8");
      for (const m of text.matchAll(/^\s*(import|export)(\s+type)?[^"']*from\s+["']([^"']+)["']/gm)) {
        const spec = m[3]!;
        // Its own files and its bundled library (cytoscape) are the page; types are erased.
        if (spec.startsWith("./") || !spec.startsWith(".") || m[2] !== undefined) continue;
        if (spec !== "../sim/trace-view.ts") bad.push(`${relative(SRC, f)} imports ${spec} at run time`);
      }
    }
    expect(bad).toEqual([]);
  });
});
