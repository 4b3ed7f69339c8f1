/**
 * `iommu-sim import acpi DIR --lspci FILE` on an IORT machine: each PCI
 * function gets the SMMU and StreamIDs its root complex's ID mappings give
 * its requester ID and each of its DMA aliases (iort_pci_iommu_init over
 * pci_for_each_dma_alias, iort_node_map_id), the off-by-one overlap and
 * single mappings as iort_id_map reads them; named components as before.
 * The table is the project's ASL (test/fixtures/acpi/arm-server, compiled
 * with iasl), some mappings patched here; the dump is project-written.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readAcpiDir } from "../../src/cli/firmware-import.ts";
import { importAcpiTables } from "../../src/sim/import/acpi-scenario.ts";
import { fwScenarioData } from "../../src/sim/import/fw-scenario.ts";
import { parseLspci } from "../../src/sim/import/lspci-parse.ts";
import { importLspciPci } from "../../src/sim/import/lspci-scenario.ts";
import { validateScenario } from "../../src/sim/scenario/load.ts";
import { runScenario } from "../../src/sim/runner.ts";
import { acpiDir, cli, removeCompiled } from "../cli/fw-fixtures.ts";

const DUMP = "test/fixtures/lspci/for-acpi/arm-server.vvnnD.txt";
const SMMU3 = "smmu3.0x000000002b400000";
// Byte offsets in the compiled fixture (its comments give the nodes'): the segment-0 root complex's two mappings, the segment-1 one's.
const RC0_MAP1_OUT = 0x104 + 0x24 + 20 + 8;
const RC1_MAP0 = 0x150 + 0x24;

let arm: string;
const scratch = mkdtempSync(join(tmpdir(), "iommu-sim-iort-"));
beforeAll(() => {
  arm = acpiDir("arm-server");
});
afterAll(() => {
  removeCompiled();
  rmSync(scratch, { recursive: true, force: true });
});

function fixChecksum(b: Uint8Array): Uint8Array {
  let sum = 0;
  for (let i = 0; i < b.length; i++) if (i !== 9) sum = (sum + b[i]!) & 0xff;
  b[9] = (0x100 - sum) & 0xff;
  return b;
}

/** The fixture's IORT with `patch` applied, in a directory of its own. */
function patched(name: string, patch: (v: DataView) => void): string {
  const b = Uint8Array.from(readFileSync(join(arm, "iort.aml")));
  patch(new DataView(b.buffer));
  const d = join(scratch, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, "iort.dat"), fixChecksum(b));
  return d;
}

async function merged(dir: string) {
  const files = await readAcpiDir(dir);
  if (typeof files === "string") throw new Error(files);
  const imp = importAcpiTables(dir, files, importLspciPci(parseLspci(readFileSync(DUMP, "utf8"), DUMP)));
  const s = validateScenario(fwScenarioData(imp), dir);
  const run = runScenario(s, { trace: false });
  const fw = Object.fromEntries(run.snapshot.devices.map((d) => [d.name, d.fwspec === null ? null : [d.fwspec.iommu, ...d.fwspec.ids]]));
  return { imp, s, run, fw };
}

describe("import acpi --lspci: IORT", () => {
  it("the dump is no longer ignored: every function of segment 0 reaches the SMMUv3 with its RID as StreamID; the conventional PCI device adds its bridge's alias", async () => {
    const { imp, run, fw } = await merged(arm);
    expect(imp.warnings).toEqual([]);
    expect(fw["0000:01:00.0"]).toEqual([SMMU3, 0x100]);
    expect(fw["0000:00:02.0"]).toEqual([SMMU3, 0x10]);
    // Behind the PCIe-to-PCI bridge: its own RID, then the bridge's secondary bus with devfn 0 (pci_for_each_dma_alias).
    expect(fw["0000:03:01.0"]).toEqual([SMMU3, 0x308, 0x300]);
    // Segment 1's root complex maps straight to the ITS group: no SMMU, no fwspec, no group.
    expect(fw["0001:00:00.0"]).toBeNull();
    // Named components keep theirs.
    expect(fw["\\_SB.ETH0"]).toEqual([SMMU3, 0x2000]);
    expect(fw["\\_SB.DMA0"]).toEqual(["smmu.0x000000002c000000", 17]);
    const groups = run.snapshot.groups.map((g) => [...g.devices].sort().join(" "));
    expect(groups).toContain("0000:02:00.0 0000:03:01.0");
    expect(groups).toContain("0000:01:00.0");
    expect(run.snapshot.devices.find((d) => d.name === "0001:00:00.0")!.group).toBeNull();
    expect(run.failures).toEqual([]);
  });

  it("a RID at the end of one range and the start of the next takes the next's output (iort_id_map's off-by-one): StreamIDs as the kernel computes them", async () => {
    // Segment 0's second mapping (RIDs 0x100-0xffff) now outputs from 0x10000.
    const { fw, s } = await merged(patched("offset", (v) => v.setUint32(RC0_MAP1_OUT, 0x10000, true)));
    // 01:00.0 is RID 0x100: the end of the first range (0x0 + 0x100) and the start of the second; the second wins.
    expect(fw["0000:01:00.0"]).toEqual([SMMU3, 0x10000]);
    expect(fw["0000:00:02.0"]).toEqual([SMMU3, 0x10]);
    expect(fw["0000:03:01.0"]).toEqual([SMMU3, 0x10208, 0x10200]);
    expect(s.devices.find((d) => d.name === "pci0000")!["pci-host"]!["iommu-map"]).toEqual([
      [0, SMMU3, 0, 0x100],
      [0x100, SMMU3, 0x10000, 0x300],
    ]);
  });

  it("a root complex's single mapping gives every RID the one output ID (iort_id_map), which the dump makes expressible", async () => {
    // Segment 1's mapping becomes a single mapping to the SMMUv3, output 0x4000.
    const dir = patched("single", (v) => {
      v.setUint32(RC1_MAP0 + 8, 0x4000, true);
      v.setUint32(RC1_MAP0 + 12, 0x4c, true);
      v.setUint32(RC1_MAP0 + 16, 1, true);
    });
    const { fw, imp } = await merged(dir);
    expect(fw["0001:00:00.0"]).toEqual([SMMU3, 0x4000]);
    expect(imp.warnings.filter((w) => w.includes("single mapping"))).toEqual([]);
    // Without the dump the single mapping is still not imported (a warning says so).
    const files = await readAcpiDir(dir);
    expect(importAcpiTables(dir, files as never).warnings.some((w) => w.includes("single mapping"))).toBe(true);
  });

  it("the command line: import acpi --lspci writes the functions with their IORT StreamIDs in comments, and the scenario runs", async () => {
    const r = await cli(["import", "acpi", arm, "--lspci", DUMP]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`IORT: RID 0x0308 at the root complex (iort.aml byte 260) -> ${SMMU3} StreamID 0x308 (iort_node_map_id)`);
    expect(r.out).toContain("reaches no SMMU: no IOMMU (iort_iommu_xlate: ENODEV)");
    expect(r.err).not.toContain("ignored");
  });
});
