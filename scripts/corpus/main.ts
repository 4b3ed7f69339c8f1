/**
 * `npm run corpus`: every DTB of Debian's arm64 kernel package imported,
 * validated and booted (not part of `npm test`; optional in CI). Each must
 * import (exit 2 for a real blob would be a bug of the parser), every
 * `iommus`/`iommu-map` link must either be in the scenario or be
 * reported, and the boot must hold. Prints the count and the time.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseFdt } from "../../src/sim/import/fdt-parse.ts";
import { importDtb } from "../../src/sim/import/dt-scenario.ts";
import { fwScenarioData } from "../../src/sim/import/fw-scenario.ts";
import { validateScenario } from "../../src/sim/scenario/load.ts";
import { runScenario } from "../../src/sim/runner.ts";
import { corpusDtbs } from "./fetch.ts";

const log = (l: string) => console.log(l);
const { pkg, files } = corpusDtbs(log);
log(`corpus: ${files.length} DTBs from ${pkg}`);
const problems: string[] = [];
const unknown = new Map<string, number>();
let instances = 0;
let clients = 0;
let linked = 0;
let reported = 0;
let largest = { file: "", bytes: 0, ms: 0 };
const t0 = performance.now();
for (const f of files) {
  const bytes = readFileSync(f);
  const t1 = performance.now();
  try {
    const t = parseFdt(bytes, f);
    const imp = importDtb(t, f);
    const s = validateScenario(fwScenarioData(imp), f);
    const run = runScenario(s, { trace: false });
    const ms = performance.now() - t1;
    if (bytes.length > largest.bytes) largest = { file: f, bytes: bytes.length, ms };
    if (run.failures.length > 0) problems.push(`${f}: the boot failed: ${run.failures.map((x) => x.message).join("; ")}`);
    instances += s.iommus.length;
    // Every link is in the scenario or named in a warning or a comment.
    const text = [...imp.warnings, ...imp.devices.flatMap((d) => d.comment), ...imp.trailer].join("\n");
    const byFwnode = new Map(s.devices.map((d) => [d.fwnode, d]));
    for (const n of t.nodes) {
      const isIommu = n.props.has("#iommu-cells");
      if (!(n.props.has("iommus") && !isIommu) && !n.props.has("iommu-map")) continue;
      clients++;
      const d = byFwnode.get(n.path);
      if (d !== undefined && (d.iommus !== undefined || d["pci-host"]?.["iommu-map"] !== undefined)) linked++;
      else if (text.includes(n.path)) reported++;
      else problems.push(`${f}: ${n.path}: its link is neither in the scenario nor reported`);
    }
    for (const w of imp.warnings) {
      const m = /with compatible ("[^"]*")/.exec(w);
      if (m !== null) unknown.set(m[1]!, (unknown.get(m[1]!) ?? 0) + 1);
    }
  } catch (e) {
    problems.push(`${f}: ${(e as Error).message}`);
  }
}
const total = performance.now() - t0;
log(`corpus: ${files.length} DTBs imported, validated and booted in ${(total / 1000).toFixed(2)} s (${(total / files.length).toFixed(1)} ms each)`);
log(`corpus: ${instances} IOMMU instances; ${clients} nodes with iommus or iommu-map: ${linked} linked in the scenario, ${reported} reported (unknown IOMMU, dangling or malformed link)`);
log(`corpus: largest ${basename(largest.file)} (${(largest.bytes / 1024).toFixed(0)} KiB): ${largest.ms.toFixed(1)} ms (first pass, cold)`);
log(`corpus: IOMMU compatibles the model has no driver for: ${[...unknown].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} x${n}`).join(", ") || "none"}`);
for (const p of problems.slice(0, 50)) console.error(`corpus: FAIL ${p}`);
if (problems.length > 0) {
  console.error(`corpus: ${problems.length} problem(s)`);
  process.exitCode = 1;
}
