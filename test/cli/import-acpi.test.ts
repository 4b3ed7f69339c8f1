/**
 * `iommu-sim import acpi`: DMAR, IVRS and IORT tables written as ASL
 * (test/fixtures/acpi/, compiled with iasl) import to scenarios that run;
 * bad checksums, truncated and corrupt tables are exit 2 with the file,
 * the byte offset and the problem, never an exception.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importAcpiTables } from "../../src/sim/import/acpi-scenario.ts";
import { readAcpiDir } from "../../src/cli/firmware-import.ts";
import { FirmwareError } from "../../src/sim/import/fw-bytes.ts";
import { fwScenarioData, fwScenarioYaml } from "../../src/sim/import/fw-scenario.ts";
import { parseScenario, validateScenario } from "../../src/sim/scenario/load.ts";
import { runScenario } from "../../src/sim/runner.ts";
import { acpiDir, cli, removeCompiled, rng } from "./fw-fixtures.ts";

let intel: string;
let amd: string;
let arm: string;
const scratch = mkdtempSync(join(tmpdir(), "iommu-sim-acpi-"));
beforeAll(() => {
  intel = acpiDir("intel-client");
  amd = acpiDir("amd-server");
  arm = acpiDir("arm-server");
});
afterAll(() => {
  removeCompiled();
  rmSync(scratch, { recursive: true, force: true });
});

const devs = (run: ReturnType<typeof runScenario>) => Object.fromEntries(run.snapshot.devices.map((d) => [d.name, d]));

/** The checksum byte set so the table sums to 0 again (after a mutation). */
function fixChecksum(b: Uint8Array): Uint8Array {
  const len = Math.min(new DataView(b.buffer, b.byteOffset).getUint32(4, true), b.length);
  let sum = 0;
  for (let i = 0; i < len; i++) if (i !== 9) sum = (sum + b[i]!) & 0xff;
  b[9] = (0x100 - sum) & 0xff;
  return b;
}

/** A directory holding one table file with these bytes. */
function tableDir(name: string, file: string, bytes: Uint8Array): string {
  const d = join(scratch, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, file), bytes);
  return d;
}

/** An IORT of an SMMUv3, a named component on StreamID 0x2000 and an RMR node for it (iasl 20200925 predates RMR nodes). */
function iortWithRmr(remapPermitted: boolean): Uint8Array {
  const b = new Uint8Array(48 + 68 + 68 + 68);
  const v = new DataView(b.buffer);
  b.set([..."IORT"].map((c) => c.charCodeAt(0)), 0);
  v.setUint32(4, b.length, true);
  b[8] = 5;
  b.set([..."IOMSIM"].map((c) => c.charCodeAt(0)), 10);
  v.setUint32(36, 3, true);
  v.setUint32(40, 48, true);
  const node = (o: number, type: number, len: number, maps: number, mapOff: number) => {
    b[o] = type;
    v.setUint16(o + 1, len, true);
    b[o + 3] = 3;
    v.setUint32(o + 8, maps, true);
    v.setUint32(o + 12, mapOff, true);
  };
  const map = (o: number, out: number, ref: number) => {
    v.setUint32(o + 8, out, true);
    v.setUint32(o + 12, ref, true);
    v.setUint32(o + 16, 1, true);
  };
  const smmu = 48;
  node(smmu, 4, 68, 0, 0);
  v.setBigUint64(smmu + 16, 0x2b400000n, true);
  const nc = smmu + 68;
  node(nc, 1, 68, 1, 48);
  b.set([..."\\_SB.ETH0"].map((c) => c.charCodeAt(0)), nc + 29);
  map(nc + 48, 0x2000, smmu);
  const rmr = nc + 68;
  node(rmr, 6, 68, 1, 28);
  v.setUint32(rmr + 16, remapPermitted ? 1 : 0, true);
  v.setUint32(rmr + 20, 1, true);
  v.setUint32(rmr + 24, 48, true);
  map(rmr + 28, 0x2000, smmu);
  v.setBigUint64(rmr + 48, 0x80000000n, true);
  v.setBigUint64(rmr + 56, 0x10000n, true);
  return fixChecksum(b);
}

describe("import acpi: DMAR", () => {
  it("DRHD scopes and INCLUDE_PCI_ALL become intel-iommu scopes; RMRRs direct regions; the scenario runs", async () => {
    const r = await cli(["import", "acpi", intel]);
    expect(r.code).toBe(0);
    const s = parseScenario(r.out, "dmar.yaml");
    expect(s.iommus.map((m) => [m.name, m.driver, m.scope])).toEqual([
      ["dmar0", "intel-iommu", ["0000:00:02.0", "\\_SB.PCI0.I2C0"]],
      ["dmar1", "intel-iommu", "all"],
    ]);
    const by = new Map(s.devices.map((d) => [d.name, d]));
    expect(by.get("0000:00:02.0")!["reserved-regions"]).toEqual([{ start: 0x3c000000, length: 0x4000000, type: "direct" }]);
    expect(by.get("0000:00:14.0")!["reserved-regions"]).toEqual([{ start: 0x3a000000, length: 0x20000, type: "direct" }]);
    const run = runScenario(s, { trace: false });
    expect(run.failures).toEqual([]);
    const d = devs(run);
    expect(d["0000:00:02.0"]!.iommu).toBe("dmar0");
    expect(d["\\_SB.PCI0.I2C0"]!.iommu).toBe("dmar0");
    expect(d["0000:00:14.0"]!.iommu).toBe("dmar1");
    const usbGroup = run.snapshot.groups.find((g) => g.devices.includes("0000:00:14.0"))!;
    expect(usbGroup.reserved_regions.some((x) => x.includes("0x000000003a000000") && x.includes("direct"))).toBe(true);
  });

  it("a scope entry several hops down is a warning (the buses behind bridges are not in the table); ATSR and IOAPIC/HPET are named in comments", async () => {
    const r = await cli(["import", "acpi", intel]);
    expect(r.err).toMatch(/byte \d+: DRHD 0 names a PCI endpoint 2 hops below bus 0x00 \(path 0x1c\.4 0x00\.0\)/);
    expect(r.out).toContain("ATS allowed below every root port (ALL_PORTS): ATS is not modelled");
    expect(r.out).toMatch(/# DRHD 1: IOAPIC 2 at 0000:f0:1f\.0 \(dmar\.aml byte \d+\): interrupt remapping, not modelled/);
  });
});

describe("import acpi: IVRS", () => {
  it("the kernel's IVHD type (the highest of the first IOMMU's blocks) gives one amd-iommu per IOMMU; ranges, aliases, IVMDs in comments", async () => {
    const r = await cli(["import", "acpi", amd]);
    expect(r.code).toBe(0);
    const s = parseScenario(r.out, "ivrs.yaml");
    expect(s.iommus.map((m) => [m.name, m.driver])).toEqual([
      ["ivhd0", "amd-iommu"],
      ["ivhd1", "amd-iommu"],
    ]);
    expect(r.out).toContain("IVHD type 0x11 (ivrs.aml byte 100): the IOMMU at 0000:00:00.2");
    expect(r.out).toContain("serves 0000:00:00.0, 0000:00:01.0-0000:00:1f.7, 0000:01:00.1");
    expect(r.out).toContain("alias 0000:01:00.1 -> 0000:01:00.0");
    expect(r.out).toContain("the kernel uses type 0x11 (get_highest_supported_ivhd_type)");
    expect(r.out).toMatch(/IVMD type 0x20 .*exclusion range \(reserved\), for every device/);
    expect(r.err).toContain("IVHD 0 shares segment 0 with another IOMMU");
    expect(runScenario(s, { trace: false }).failures).toEqual([]);
  });
});

describe("import acpi: IORT", () => {
  it("SMMUv3 and MMU-500 nodes, named components and root complexes with their ID mappings", async () => {
    const r = await cli(["import", "acpi", arm]);
    expect(r.code).toBe(0);
    const s = parseScenario(r.out, "iort.yaml");
    expect(s.iommus.map((m) => [m.name, m.driver, m.fwnode])).toEqual([
      ["smmu3.0x000000002b400000", "arm-smmu-v3", "IORT/smmu-v3@0x4c"],
      ["smmu.0x000000002c000000", "arm-smmu", "IORT/smmu@0xa4"],
    ]);
    const by = new Map(s.devices.map((d) => [d.name, d]));
    // The first range's count is one too many and overlaps the second's start: the end yields (iort_id_map).
    expect(by.get("pci0000")!["pci-host"]).toEqual({ segment: 0, "iommu-map": [[0, "smmu3.0x000000002b400000", 0, 0x100], [0x100, "smmu3.0x000000002b400000", 0x100, 0xff00]] });
    expect(by.get("pci0001")!["pci-host"]).toEqual({ segment: 1 });
    const run = runScenario(s, { trace: false });
    expect(run.failures).toEqual([]);
    const d = devs(run);
    expect(d["\\_SB.ETH0"]).toMatchObject({ iommu: "smmu3.0x000000002b400000", fwspec: { ids: [0x2000] } });
    expect(d["\\_SB.DMA0"]).toMatchObject({ iommu: "smmu.0x000000002c000000", fwspec: { ids: [0x11] } });
    expect(d["\\_SB.NOIO"]!.iommu).toBeNull();
  });

  it("a second root complex for a segment, or a named component of an earlier one's name, is a warning: the kernel matches the first", async () => {
    const io = Uint8Array.from(readFileSync(join(arm, "iort.aml")));
    new DataView(io.buffer).setUint32(0x150 + 28, 0, true); // segment 1 -> 0
    io.set([..."ETH0"].map((c) => c.charCodeAt(0)), 0x1c4 + 29 + 5); // \_SB.DMA0 -> \_SB.ETH0
    const r = await cli(["import", "acpi", tableDir("dups", "iort.dat", fixChecksum(io))]);
    expect(r.code).toBe(0);
    expect(r.err).toContain("byte 336: a second root complex for PCI segment 0: the kernel uses the first; skipped");
    expect(r.err).toContain("byte 452: a named component named \\_SB.ETH0 like an earlier node: the kernel uses the first; skipped");
    const s = parseScenario(r.out, "dups.yaml");
    expect(s.devices.map((d) => d.name)).toEqual(["pci0000", "\\_SB.ETH0", "\\_SB.NOIO"]);
  });

  it("an RMR node gives the devices on its StreamIDs reserved regions: direct-relaxable when remapping is permitted, else direct", async () => {
    for (const [permitted, type] of [[true, "direct-relaxable"], [false, "direct"]] as const) {
      const imp = await importAcpi(tableDir(`rmr-${permitted}`, "iort.dat", iortWithRmr(permitted)));
      const eth = imp.devices.find((e) => e.data.name === "\\_SB.ETH0")!;
      expect(eth.data["reserved-regions"]).toEqual([{ start: 0x80000000, length: 0x10000, type }]);
      expect(runScenario(validateScenario(fwScenarioData(imp), "x"), { trace: false }).failures).toEqual([]);
    }
  });
});

describe("import acpi: bad input is exit 2 with the file, the byte offset and the problem", () => {
  const bad = async (dir: string) => {
    const r = await cli(["import", "acpi", dir]);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    return r.err;
  };
  const dmar = () => Uint8Array.from(readFileSync(join(intel, "dmar.aml")));

  it("a bad checksum names the file and the checksum byte", async () => {
    const b = dmar();
    b[60] = b[60]! ^ 0x40;
    const d = tableDir("bad-sum", "dmar.dat", b);
    expect(await bad(d)).toMatch(new RegExp(`^${join(d, "dmar.dat")}: at byte 9 \\(0x9\\): bad checksum: the table's 217 bytes sum to 0x40 mod 256, not 0`));
  });

  it("a truncated table, a structure of length 0, an impossible IVRS range, a mapping to no node", async () => {
    const cut = tableDir("cut", "dmar.dat", dmar().subarray(0, 100));
    expect(await bad(cut)).toMatch(located(join(cut, "dmar.dat"), "the table length says 217 bytes, the file has 100 (truncated)"));
    const z = dmar();
    z[50] = 0;
    z[51] = 0;
    const zero = tableDir("zero", "dmar.dat", fixChecksum(z));
    expect(await bad(zero)).toMatch(new RegExp(`^${join(zero, "dmar.dat")}: at byte 50 \\(0x32\\): a remapping structure of length 0`));
    const iv = Uint8Array.from(readFileSync(join(amd, "ivrs.aml")));
    iv[81] = 0x04; // the 10h block's range end, 0x00ff -> 0x0004: before its start 0x0008
    const range = tableDir("range", "ivrs.dat", fixChecksum(iv));
    expect(await bad(range)).toMatch(located(join(range, "ivrs.dat"), "impossible range: it ends at 0x0004, before its start 0x0008"));
    const io = Uint8Array.from(readFileSync(join(arm, "iort.aml")));
    new DataView(io.buffer).setUint32(0x188 + 0x28 + 12, 0x999, true);
    const ref = tableDir("ref", "iort.dat", fixChecksum(io));
    expect(await bad(ref)).toMatch(located(join(ref, "iort.dat"), "output reference 0x999 is not the offset of any node"));
  });

  it("a mapping cycle through named components", async () => {
    const b = iortWithRmr(false);
    const v = new DataView(b.buffer);
    // The RMR's mapping now leads to the named component, and the named component's to the RMR.
    v.setUint32(48 + 68 + 68 + 28 + 12, 48 + 68, true);
    v.setUint32(48 + 68 + 48 + 12, 48 + 68 + 68, true);
    const cycle = tableDir("cycle", "iort.dat", fixChecksum(b));
    expect(await bad(cycle)).toMatch(located(join(cycle, "iort.dat"), "mapping cycle: node 0x74 leads back to node 0x74"));
  });

  it("a file named like a table with another signature, a directory without tables", async () => {
    const d = tableDir("misnamed", "dmar.dat", readFileSync(join(amd, "ivrs.aml")));
    expect(await bad(d)).toContain("named like a DMAR table, but its signature is IVRS");
    const empty = tableDir("none", "facp.dat", new Uint8Array([0x46, 0x41, 0x43, 0x50]));
    expect(await bad(empty)).toContain("no DMAR, IVRS or IORT table");
    expect(await bad(join(scratch, "nowhere"))).toBe(`${join(scratch, "nowhere")}: no such file or directory`);
  });

  // The scenarios are validated, not run: a flipped RMRR or RMR end makes a direct region of terabytes, which the model maps (up to its page-table memory cap) for seconds.
  it("fuzz: bytes flipped (checksum fixed or not) and tables cut give exit 2 with a byte offset, or a valid scenario; never an exception", async () => {
    const next = rng(7);
    const sources = [join(intel, "dmar.aml"), join(amd, "ivrs.aml"), join(arm, "iort.aml")].map((f) => readFileSync(f));
    sources.push(Buffer.from(iortWithRmr(true)));
    let valid = 0;
    let refused = 0;
    for (let i = 0; i < 240; i++) {
      const src = sources[i % sources.length]!;
      let b = Uint8Array.from(src);
      for (let j = 0, n = 1 + Math.floor(next() * 3); j < n; j++) b[36 + Math.floor(next() * (b.length - 36))] = Math.floor(next() * 256);
      if (next() < 0.8) fixChecksum(b);
      if (next() < 0.15) b = b.subarray(0, Math.floor(next() * b.length));
      const dir = tableDir(`fuzz${i}`, ["dmar.dat", "ivrs.dat", "iort.dat", "iort.dat"][i % 4]!, b);
      try {
        const imp = await importAcpi(dir);
        expect(parseScenario(fwScenarioYaml(imp), "fuzz.yaml").iommus.length).toBe(imp.iommus.length);
        valid++;
      } catch (e) {
        if (!(e instanceof FirmwareError)) throw e;
        expect(e.message).toMatch(/^.*\.dat: at byte \d+ \(0x[0-9a-f]+\): /);
        refused++;
      }
    }
    expect(valid).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });

  it("acpidump's and acpixtract's names and the sysfs one are read; other tables in the directory are skipped", async () => {
    const d = join(scratch, "mixed");
    mkdirSync(d, { recursive: true });
    copyFileSync(join(intel, "dmar.aml"), join(d, "DMAR"));
    writeFileSync(join(d, "apic.dat"), new Uint8Array([0x41, 0x50, 0x49, 0x43, 0, 0, 0, 0]));
    const r = await cli(["import", "acpi", d]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("DMAR (DMAR, 217 bytes");
    expect(r.out).toContain("1 other file(s) skipped");
    expect(readdirSync(d).length).toBe(2);
  });
});

/** A problem located as every importer problem is: `FILE: at byte N (0xN): ` and then the sentence. */
function located(file: string, text: string): RegExp {
  const q = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${q(file)}: at byte \\d+ \\(0x[0-9a-f]+\\): .*${q(text)}`);
}

/** What `import acpi DIR` imports: DIR's files, read by the command line, as tables. */
async function importAcpi(dir: string) {
  const files = await readAcpiDir(dir);
  if (typeof files === "string") throw new Error(files);
  return importAcpiTables(dir, files);
}
