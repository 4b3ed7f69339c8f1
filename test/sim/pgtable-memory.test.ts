/**
 * The page-table memory cap of a machine: `pgtableMemoryLimit` (boot, the
 * runner) and `--pgtable-memory` (run, check). Running the allocator out is
 * ENOMEM, never an exception, and a map refused for it is undone whole.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { boot } from "../../src/index.ts";
import { MachineError } from "../../src/sim/machine.ts";
import { runScenario } from "../../src/sim/runner.ts";
import { scenario } from "../helpers.ts";
import { PGTABLE_MEMORY_DEFAULT_LIMIT } from "../../src/pgtable/pool.ts";

const MACHINE = `
name: one SMMU, 4K pages only
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0, page-sizes: [4K]}
devices:
  - {name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 1]]}
events:
  - domain_alloc: {name: d, device: dev0}
  # 2 GiB in 4K pages needs 1,024 last-level tables (4 MiB): over a 1 MiB cap.
  - {map: {domain: d, iova: 0, paddr: 0, size: 2G}, expect_error: ENOMEM}
  - expect: {domains: {d: {mapped_bytes: 0}}}
  # Where the failed map left its tables, a map needs none: it goes on.
  - map: {domain: d, iova: 0x100000, paddr: 0, size: 64K}
  - expect: {domains: {d: {mapped_bytes: 0x10000}}}
  # Elsewhere it needs new ones.
  - {map: {domain: d, iova: 0x40000000, paddr: 0, size: 4K}, expect_error: ENOMEM}
`;

describe("the page-table memory cap of a machine", () => {
  it("a map beyond it fails with ENOMEM, undone whole; smaller maps go on", () => {
    const r = boot(MACHINE, { pgtableMemoryLimit: 2 ** 20, trace: false });
    expect(r.failures).toEqual([]);
    expect(r.snapshot.events.map((e) => e.result)).toEqual(["ok", "ENOMEM", "ok", "ENOMEM"]);
    expect(r.machine.pgtableMemory.used).toBeLessThanOrEqual(2 ** 20);
    // The unwind took back what the call mapped: a failure effect, with the format's own finding.
    expect(r.snapshot.findings.some((f) => f.startsWith("failure effect map-unwind-keeps-tables (iommu_map): domain 2 (unmanaged): the map failed with ENOMEM"))).toBe(true);
    expect(r.snapshot.findings.some((f) => /^domain 2 \(unmanaged\): table-alloc-failed at 0x/.test(f))).toBe(true);
  });

  it("defaults to PGTABLE_MEMORY_DEFAULT_LIMIT, and refuses a limit that is not a number of bytes", () => {
    expect(boot(MACHINE, { trace: false }).machine.pgtableMemory.limit).toBe(PGTABLE_MEMORY_DEFAULT_LIMIT);
    // boot() checks its options (a TypeError); the machine itself refuses them too (a MachineError).
    expect(() => boot(MACHINE, { pgtableMemoryLimit: -5 })).toThrow(/boot\(\): bad options: pgtableMemoryLimit: expected a non-negative integer|expected .*found -5/);
    expect(() => boot(MACHINE, { pgtableMemoryLimit: 0.5 })).toThrow(TypeError);
    expect(() => runScenario(scenario(MACHINE), { pgtableMemoryLimit: -5 })).toThrow(MachineError);
    expect(() => runScenario(scenario(MACHINE), { pgtableMemoryLimit: 0.5 })).toThrow(/pgtableMemoryLimit 0.5: expected a whole number of bytes/);
  });
});

describe("--pgtable-memory", () => {
  const dir = mkdtempSync(join(tmpdir(), "iommu-sim-pgmem-"));
  const file = join(dir, "cap.yaml");
  writeFileSync(file, MACHINE);
  const cli = async (...argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
    return { code, out: out.join("\n"), err: err.join("\n") };
  };

  it("run and check take a size; the scenario's expect_error holds with 1M", async () => {
    expect(await cli("check", file, "--pgtable-memory", "1M")).toMatchObject({ code: 0, out: expect.stringContaining("PASS") });
    const run = await cli("run", file, "--json", "--pgtable-memory", "0x100000");
    expect(run.code).toBe(0);
    expect(JSON.parse(run.out).events.map((e: { result: string }) => e.result)).toEqual(["ok", "ENOMEM", "ok", "ENOMEM"]);
  });

  it("with the default cap the 2 GiB map fits, so the scenario's expect_errors fail (exit 1)", async () => {
    const r = await cli("check", file);
    expect(r.code).toBe(1);
    expect(r.out).toContain("map d 0 -> 0 2G: expected ENOMEM, got success");
    expect(r.out).toContain("map d 1073741824 -> 0 4K: expected ENOMEM, got EEXIST");
  });

  it("a value that is not a size is a usage error, before anything runs", async () => {
    for (const bad of ["lots", "-1", "1.5G", "12Q"]) {
      const r = await cli("check", file, "--pgtable-memory", bad);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`--pgtable-memory: '${bad}' is not a size`);
    }
  });
});
