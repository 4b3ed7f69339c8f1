/** `iommu-sim diff FILE --a SET --b SET`: exit 0 alike, 1 different, 2 bad input. */
import { describe, expect, it } from "vitest";
import { cli } from "../cli-run.ts";


const WRONG_OPS = "scenarios/x86-mock-wrong-ops.yaml";

describe("iommu-sim diff", () => {
  it("two designs that differ: where the traces part, the events and snapshot values that differ; exit 1", async () => {
    const r = await cli("diff", WRONG_OPS, "--a", "ops_resolution=upstream", "--b", "ops_resolution=ask-each", "--context", "1");
    expect(r.code).toBe(1);
    expect(r.err).toBe("");
    const lines = r.out.split("\n");
    expect(lines[0]).toMatch(/^a: ops_resolution=upstream {2}\(ops_resolution=upstream, fwspec_ops=from-fwnode, fwspec_owner=probe-path, /);
    expect(lines[1]).toMatch(/^b: ops_resolution=ask-each {2}\(ops_resolution=ask-each, /);
    expect(r.out).toMatch(/traces part at record \d+:\n {4}.*\n {2}a .*iommu_fwspec_ops: 0000:00:02\.0: no fwspec: first instance without a fwnode -> intel-iommu\n/);
    expect(r.out).toContain('  devices[iommufd_mock0].ops: null -> "mock"');
    expect(r.out).toContain("event results: the same");
  });

  it("a preset against the same design: alike, exit 0", async () => {
    const r = await cli("diff", "scenarios/default.yaml", "--a", "current", "--b", "v6.16");
    expect(r).toEqual({ code: 0, out: "a (current) and b (v6.16) run alike: same trace, same snapshot, same event results", err: "" });
  });

  it("--json: one document with the designs, the divergence and the differences", async () => {
    const r = await cli("diff", WRONG_OPS, "--a", "ops_resolution=upstream", "--b", "ops_resolution=ask-each", "--json");
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.out);
    expect(doc).toMatchObject({
      schema_version: 1,
      command: "diff",
      file: WRONG_OPS,
      a: { design: "ops_resolution=upstream", strategy: { ops_resolution: "upstream" } },
      b: { design: "ops_resolution=ask-each", strategy: { ops_resolution: "ask-each" } },
      equal: false,
      events: [],
    });
    expect(doc.trace.index).toBeGreaterThan(0);
    expect(doc.snapshot).toContainEqual({ path: "devices[iommufd_mock0].iommu", a: null, b: "mock-iommu" });
  });

  it("bad input is exit 2, naming what there is: no second design, an unknown preset, axis or strategy, a bad --context", async () => {
    const cases: [string[], RegExp][] = [
      [["diff", WRONG_OPS, "--a", "current"], /^diff needs two designs: --a SET --b SET, each a kernel preset \(v5\.15, .*current\) or AXIS=NAME\[,AXIS=NAME\]$/],
      [["diff", WRONG_OPS, "--a", "current", "--b", "v6.9"], /^--b: unknown kernel preset 'v6\.9' \(one of v5\.15, /],
      [["diff", WRONG_OPS, "--a", "opsresolution=upstream", "--b", "current"], /^--a: unknown axis 'opsresolution' \(one of ops_resolution, .*; did you mean 'ops_resolution'\?$/],
      [["diff", WRONG_OPS, "--a", "ops_resolution=upstream,domain_alloc=bus", "--b", "current"], /^--a: domain_alloc: unknown strategy 'bus' \(one of device-ops, bus-null-device\)$/],
      [["diff", WRONG_OPS, "--a", "current", "--b", "v6.8", "--context", "-1"], /^--context: expected a whole number of lines from 0 to 100, found '-1'$/],
    ];
    for (const [argv, msg] of cases) {
      const r = await cli(...argv);
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.out, argv.join(" ")).toBe("");
      expect(r.err, argv.join(" ")).toMatch(msg);
    }
  });
});
