/**
 * `iommu-sim view` without a browser: the page is one HTML file with the
 * runs' steps and the script inside, nothing loaded from elsewhere; bad
 * flags exit 2.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cli } from "../cli-run.ts";
import { viewHtml } from "../../src/cli/view-html.ts";

const tmp = mkdtempSync(join(tmpdir(), "iommu-sim-viewcmd-"));

describe("iommu-sim view", () => {
  it("writes one page holding the steps run --steps --json prints and the script, loading nothing else", async () => {
    const out = join(tmp, "d.html");
    const r = await cli("view", "scenarios/default.yaml", "--out", out);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/wrote .*d\.html \(\d+ kB, 21 steps\)/);
    const html = readFileSync(out, "utf8");
    expect(html).toContain(`content="default-src 'none'; script-src 'unsafe-inline'`);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);
    const data = JSON.parse(/id="iommu-sim-data">(.*?)<\/script>/s.exec(html)![1]!) as { runs: { doc: { steps: { trace: string }[] } }[]; divergence: unknown };
    const steps = JSON.parse((await cli("run", "scenarios/default.yaml", "--steps", "--json")).out) as { steps: unknown[] };
    // Each step's trace travels as the JSON text of its records (the page parses it when it shows the step).
    expect(data.runs[0]!.doc.steps.every((s) => typeof s.trace === "string")).toBe(true);
    expect(data.runs[0]!.doc.steps.map((s) => ({ ...s, trace: JSON.parse(s.trace) as unknown }))).toEqual(steps.steps);
    expect(data.divergence).toBeNull();
    // The bundled library's license travels with every copy of the page.
    expect(html).toMatch(/Bundles cytoscape \d+\.\d+\.\d+ \(MIT\):\nCopyright \(c\) [\d-]+, The Cytoscape Consortium/);
    // Exactly the two script elements: the data and the code.
    expect(html.match(/<script/g)).toHaveLength(2);
  });

  it("--out - prints the page", async () => {
    const r = await cli("view", "scenarios/arm64-late-smmu.yaml", "--out", "-");
    expect(r.code).toBe(0);
    expect(r.out.startsWith("<!doctype html>")).toBe(true);
  });

  it("an --out it cannot write is exit 2 naming the path and the errno, not a stack trace", async () => {
    const r = await cli("view", "scenarios/default.yaml", "--out", join(tmp, "no-such-dir", "p.html"));
    expect(r.code).toBe(2);
    expect(r.err).toContain("--out");
    expect(r.err).toContain("ENOENT");
  });

  it("text that would end a script element early is escaped", () => {
    const html = viewHtml({ title: "</script><b>", runs: [{ design: "x</script>", doc: {} }], divergence: null }, "var s = '</script>';", "0");
    expect(html.match(/<\/script>/g)).toHaveLength(2);
    expect(html).toContain("<title>&lt;/script&gt;&lt;b&gt;</title>");
  });

  it("a bad scenario exits 2 naming the file, line and key path, and writes no page", async () => {
    const file = join(tmp, "bad.yaml");
    writeFileSync(file, "name: bad\niommus: []\ndevices:\n  - {name: a, bus: pci, colour: red}\n");
    const out = join(tmp, "bad.html");
    const r = await cli("view", file, "--out", out);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${file}:4:`);
    expect(r.err).toContain("devices[0].colour: unknown key 'colour'");
    expect(r.out).toBe("");
    expect(existsSync(out)).toBe(false);
  });

  it("refuses --a without --b, --a with --kernel, a bad design and a bad schedule (exit 2)", async () => {
    expect((await cli("view", "scenarios/default.yaml", "--a", "v6.6")).code).toBe(2);
    expect((await cli("view", "scenarios/default.yaml", "--a", "v6.6", "--b", "current", "--kernel", "v6.6")).code).toBe(2);
    const bad = await cli("view", "scenarios/default.yaml", "--a", "nope=1", "--b", "current");
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("--a:");
    const sch = await cli("view", "scenarios/races/probe-race-none.yaml", "--schedule", "zz9", "--out", join(tmp, "x.html"));
    expect(sch.code).toBe(2);
    expect(sch.err).toContain("--schedule");
  });
});
