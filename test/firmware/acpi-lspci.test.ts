/**
 * `iommu-sim import acpi DIR --lspci FILE`: the tables' IOMMUs with the
 * dump's PCI functions. DMAR device scopes are followed through the
 * bridges (several hops: dmar_match_pci_path), IVHD entries serve the
 * functions whose requester IDs they name (init_iommu_from_acpi, a later
 * block winning), IVRS aliases on the same bus become PCI DMA aliases
 * (setup_aliases), IVMD unity maps and exclusion ranges direct regions.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readAcpiDir } from "../../src/cli/firmware-import.ts";
import { PciTopology } from "../../src/sim/import/acpi-pci.ts";
import { importAcpiTables } from "../../src/sim/import/acpi-scenario.ts";
import { fwScenarioData, fwScenarioYaml } from "../../src/sim/import/fw-scenario.ts";
import { parseLspci } from "../../src/sim/import/lspci-parse.ts";
import { importLspci } from "../../src/sim/import/lspci-scenario.ts";
import { parseScenario, validateScenario } from "../../src/sim/scenario/load.ts";
import { runScenario } from "../../src/sim/runner.ts";
import type { Scenario } from "../../src/sim/scenario/schema.ts";
import { acpiDir, cli, removeCompiled } from "../cli/fw-fixtures.ts";

const Z270 = "test/fixtures/lspci/intel-z270-gtx1070.vvnn.txt";
const X99 = "test/fixtures/lspci/intel-x99-rtx2080.vvnn.txt";
const AMD = "test/fixtures/lspci/for-acpi/amd-server.vvnn.txt";

let intel: string;
let amd: string;
beforeAll(() => {
  intel = acpiDir("intel-client");
  amd = acpiDir("amd-server");
});
afterAll(() => removeCompiled());

const lspci = (f: string) => importLspci(parseLspci(readFileSync(f, "utf8"), f));

async function merged(dir: string, dump: string) {
  const files = await readAcpiDir(dir);
  if (typeof files === "string") throw new Error(files);
  const imp = importAcpiTables(dir, files, lspci(dump));
  const s = validateScenario(fwScenarioData(imp), dir);
  return { imp, s, run: runScenario(s, { trace: false }) };
}

const groupSets = (groups: readonly { devices: string[] }[]) => groups.map((g) => [...g.devices].sort().join(" ")).sort();
const iommuOf = (run: ReturnType<typeof runScenario>) => Object.fromEntries(run.snapshot.devices.map((d) => [d.name, d.iommu]));

describe("import acpi --lspci: DMAR", () => {
  it("a scope entry two hops down is followed through the bridge to its function; the rest of the dump is INCLUDE_PCI_ALL's", async () => {
    const { imp, s, run } = await merged(intel, Z270);
    expect(imp.warnings.filter((w) => /hops below|does not have/.test(w))).toEqual([]);
    expect(s.iommus.map((i) => [i.name, i.scope])).toEqual([
      ["dmar0", ["0000:00:02.0", "\\_SB.PCI0.I2C0", "0000:04:00.0"]],
      ["dmar1", "all"],
    ]);
    const on = iommuOf(run);
    expect([on["0000:00:02.0"], on["0000:04:00.0"], on["0000:00:1c.4"], on["0000:01:00.0"]]).toEqual(["dmar0", "dmar0", "dmar1", "dmar1"]);
    // The RMRRs land on the dump's functions.
    const dev = (n: string) => s.devices.find((d) => d.name === n)!;
    // The dump gives their classes: a USB controller and a VGA device, whose RMRRs device_rmrr_is_relaxable relaxes.
    expect(dev("0000:00:14.0")["reserved-regions"]).toEqual([{ start: 0x3a000000, length: 0x20000, type: "direct-relaxable" }]);
    expect(dev("0000:00:02.0")["reserved-regions"]).toEqual([{ start: 0x3c000000, length: 0x4000000, type: "direct-relaxable" }]);
    // Membership of every group the dump records is kept; the namespace device adds one of its own.
    const want = (s.events[0]!.expect!.groups as { devices: string[] }[]).map((g) => g.devices);
    expect(groupSets(run.snapshot.groups)).toEqual(groupSets([...want.map((d) => ({ devices: d })), { devices: ["\\_SB.PCI0.I2C0"] }]));
    // dmar0 registers first (non-INCLUDE_PCI_ALL units lead the list): its devices take the lowest group numbers.
    const first = run.snapshot.groups.filter((g) => g.id < 3).flatMap((g) => g.devices).sort();
    expect(first).toEqual(["0000:00:02.0", "0000:04:00.0", "\\_SB.PCI0.I2C0"]);
    // The dump's own expectation fails only on numbers and the count: the synthetic DMAR is not that machine's.
    expect(run.failures.filter((f) => f.kind !== "expectation")).toEqual([]);
    expect(run.failures.flatMap((f) => f.message.split("\n")).every((m) => /\.id: expected \d+, got \d+|group_count: expected 15, got 16/.test(m))).toBe(true);
  });

  it("an entry of the wrong type fails dmar_dev_scope_init, so intel_iommu_init gives up and the scenario has no IOMMU; one the dump has no function for is skipped", async () => {
    const { imp, s, run } = await merged(intel, X99);
    // The X99 board's 00:02.0 is a root port: an endpoint entry cannot name it.
    expect(imp.warnings.some((w) => w.includes("names 0000:00:02.0 as a PCI endpoint, but") && w.includes("is a bridge: dmar_insert_dev_scope refuses it with EINVAL"))).toBe(true);
    expect(imp.warnings.some((w) => w.includes("dmar_dev_scope_init fails and intel_iommu_init gives up, so VT-d is off"))).toBe(true);
    expect(s.iommus).toEqual([]);
    expect(imp.trailer.filter((t) => /^DRHD \d .*: not registered \(intel_iommu_init gave up/.test(t)).length).toBe(2);
    expect(run.snapshot.groups).toEqual([]);
    expect(run.snapshot.devices.filter((d) => d.iommu !== null)).toEqual([]);
    const a = await merged(intel, AMD);
    expect(a.imp.warnings.filter((w) => w.includes("does not have: skipped")).length).toBe(3);
    expect(a.s.iommus.map((i) => i.name)).toEqual(["dmar0", "dmar1"]);
  });

  it("a bridge entry naming a normal-header function of a bridge class (06) is accepted, as dmar_insert_dev_scope accepts it; of another class it is refused", async () => {
    // DRHD 0's first entry (endpoint 00:02.0) made a bridge entry for 00:00.0, the host bridge (class 0600), then for 00:14.0 (USB).
    const drhdEntry = (dev: number) =>
      patchedDmar(`drhd-bridge-${dev}`, (b) => {
        expect([b[48 + 16], b[48 + 22], b[48 + 23]]).toEqual([1, 0x02, 0]);
        b[48 + 16] = 2;
        b[48 + 22] = dev;
      });
    const host = await merged(drhdEntry(0x00), Z270);
    expect(host.s.iommus[0]!.scope).toContain("0000:00:00.0");
    expect(host.imp.warnings.filter((w) => w.includes("EINVAL"))).toEqual([]);
    expect(host.run.snapshot.devices.find((d) => d.name === "0000:00:00.0")!.iommu).toBe("dmar0");
    const usb = await merged(drhdEntry(0x14), Z270);
    expect(usb.imp.warnings.some((w) => w.includes("names 0000:00:14.0 as a PCI bridge, but") && w.includes("neither a bridge nor of a bridge class"))).toBe(true);
    expect(usb.s.iommus).toEqual([]);
  });
});

const scratch = mkdtempSync(join(tmpdir(), "iommu-sim-dmar-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The fixture's DMAR with `patch` applied, checksum fixed, in a directory of its own. */
function patchedDmar(name: string, patch: (b: Uint8Array, v: DataView) => void): string {
  const b = Uint8Array.from(readFileSync(join(intel, "dmar.aml")));
  patch(b, new DataView(b.buffer));
  let sum = 0;
  for (let i = 0; i < b.length; i++) if (i !== 9) sum = (sum + b[i]!) & 0xff;
  b[9] = (0x100 - sum) & 0xff;
  const d = join(scratch, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, "dmar.dat"), b);
  return d;
}

describe("import acpi --lspci: RMRRs (intel_iommu_get_resv_regions)", () => {
  /** The fixture's DMAR with its first RMRR's one scope entry made a bridge entry for 00:dev.fn. */
  const rmrrOnBridge = (dev: number, fn: number) =>
    patchedDmar(`rmrr-${dev}-${fn}`, (b, v) => {
      let o = 48;
      while (v.getUint16(o, true) !== 1) o += v.getUint16(o + 2, true);
      expect([b[o + 24], b[o + 29], b[o + 30], b[o + 31]]).toEqual([1, 0, 0x14, 0]);
      b[o + 24] = 2;
      b[o + 30] = dev;
      b[o + 31] = fn;
    });

  it("an RMRR naming a bridge covers the bridge and every function below it (is_downstream_to_pci_bridge), each relaxable by its own class", async () => {
    const { s, imp } = await merged(rmrrOnBridge(0x1c, 0), Z270);
    const regions = (n: string) => s.devices.find((d) => d.name === n)!["reserved-regions"];
    const usb = { start: 0x3a000000, length: 0x20000 };
    // 00:1c.0 is a root port (direct); 03:00.0, below it, a USB controller (direct-relaxable).
    expect(regions("0000:00:1c.0")).toEqual([{ ...usb, type: "direct" }]);
    expect(regions("0000:03:00.0")).toEqual([{ ...usb, type: "direct-relaxable" }]);
    expect(regions("0000:00:14.0")).toBeUndefined();
    expect(regions("0000:04:00.0")).toBeUndefined();
    expect(imp.warnings).not.toContainEqual(expect.stringContaining("RMRR 0"));
    // Below 00:1c.4 sits an Ethernet controller: its region stays direct, so it requires a 1:1 domain.
    const eth = await merged(rmrrOnBridge(0x1c, 4), Z270);
    expect(eth.s.devices.find((d) => d.name === "0000:04:00.0")!["reserved-regions"]).toEqual([{ ...usb, type: "direct" }]);
  });

  it("without the dump a PCI entry's class is unknown: the region is direct and the comment says which devices the kernel relaxes", async () => {
    const files = await readAcpiDir(intel);
    const imp = importAcpiTables(intel, files as never);
    const e = imp.devices.find((d) => d.data.name === "0000:00:14.0")!;
    expect(e.data["reserved-regions"]).toEqual([{ start: 0x3a000000, length: 0x20000, type: "direct" }]);
    expect(e.comment.join("\n")).toContain("direct-relaxable if it is a USB or graphics device: device_rmrr_is_relaxable");
  });
});

describe("import acpi --lspci: IVRS", () => {
  it("each function is served by the IVHD whose entries name its requester ID; unnamed ones get no IOMMU", async () => {
    const { s, run } = await merged(amd, AMD);
    expect(s.iommus.map((i) => [i.name, i.scope])).toEqual([
      ["ivhd0", ["0000:00:00.0", "0000:00:01.0", "0000:00:01.1", "0000:00:08.0", "0000:00:08.1", "0000:00:14.0", "0000:00:14.3", "0000:01:00.0", "0000:01:00.1"]],
      ["ivhd1", ["0000:40:00.0", "0000:40:00.2", "0000:40:01.1", "0000:41:00.0"]],
    ]);
    const on = iommuOf(run);
    // 02:00.0 sits below 00:08.1, which ivhd0 serves, but no IVHD entry names 0x0200: rlookup_amd_iommu finds none.
    expect([on["0000:02:00.0"], on["0000:00:00.2"], on["0000:41:00.0"], on["0000:01:00.1"]]).toEqual([null, null, "ivhd1", "ivhd0"]);
    expect(run.failures).toEqual([]);
  });

  it("the IVRS alias 01:00.1 -> 01:00.0 (same bus) is a PCI DMA alias: the two functions, each isolated by ACS, share a group", async () => {
    const { s, run } = await merged(amd, AMD);
    expect(s.devices.find((d) => d.name === "0000:01:00.1")!["dma-alias"]).toEqual(["00.0"]);
    const g = run.snapshot.groups.find((x) => x.devices.includes("0000:01:00.0"))!;
    expect([...g.devices].sort()).toEqual(["0000:01:00.0", "0000:01:00.1"]);
    // Without the tables the two functions are isolated (their ACS capability implements nothing).
    const alone = runScenario(validateScenario(lspciData(AMD), AMD), { trace: false });
    expect(alone.snapshot.groups.find((x) => x.devices.includes("0000:01:00.0"))!.devices).toEqual(["0000:01:00.0"]);
  });

  it("IVMD unity maps and exclusion ranges (init_unity_map_range maps the latter read/write too) are direct regions of the functions they name", async () => {
    const { s } = await merged(amd, AMD);
    const regions = (n: string) => s.devices.find((d) => d.name === n)!["reserved-regions"];
    expect(regions("0000:01:00.0")).toEqual([
      { start: 0x3b000000, length: 0x100000, type: "direct" },
      { start: 0xfd000000, length: 0x1000000, type: "direct" },
    ]);
    expect(regions("0000:41:00.0")).toEqual([{ start: 0xfd000000, length: 0x1000000, type: "direct" }]);
  });

  it("without --lspci two IVHDs on one segment still get empty scopes and a warning that says to give a dump", async () => {
    const files = await readAcpiDir(amd);
    const imp = importAcpiTables(amd, files as never);
    expect(imp.iommus.map((e) => e.data.scope)).toEqual([[], []]);
    expect(imp.warnings.filter((w) => w.includes("--lspci")).length).toBe(2);
  });
});

// The lspci import's own scenario (no tables), for comparison.
import { lspciScenarioData } from "../../src/sim/import/lspci-data.ts";
const lspciData = (f: string) => lspciScenarioData(lspci(f));

describe("PciTopology.dmarPath (dmar_match_pci_path)", () => {
  const t = new PciTopology(lspci(Z270));
  it("follows a path from a root bus through each bridge's secondary bus", () => {
    expect(t.dmarPath(0, 0, [[0x1c, 4], [0, 0]])?.fn.name).toBe("0000:04:00.0");
    expect(t.dmarPath(0, 0, [[0x1c, 4]])?.fwBug).toBe(false);
  });
  it("a one-hop entry naming a function off the root bus matches it at its own bus:dev.fn (the kernel's workaround), flagged", () => {
    expect(t.dmarPath(0, 4, [[0, 0]])).toMatchObject({ fwBug: true, fn: { name: "0000:04:00.0" } });
  });
  it("a path through a function that is not a bridge, or to none, matches nothing", () => {
    expect(t.dmarPath(0, 0, [[0x02, 0], [0, 0]])).toBeNull();
    expect(t.dmarPath(0, 0, [[0x1c, 4], [1, 0]])).toBeNull();
    expect(t.dmarPath(0, 4, [[0, 0], [0, 0]])).toBeNull();
  });
});

describe("import acpi --lspci: the command line", () => {
  it("writes one scenario: the tables' IOMMUs, the dump's functions, drivers and groups", async () => {
    const r = await cli(["import", "acpi", amd, "--lspci", AMD]);
    expect(r.code).toBe(0);
    const s = parseScenario(r.out, "m.yaml");
    expect(s.devices.length).toBe(15);
    expect(s.drivers?.map((d) => d.name)).toContain("nvme");
    expect(r.out).toContain("# IVRS alias -> 0000:01:00.0 (byte 152): same bus, a PCI DMA alias (setup_aliases)");
    const files = await readAcpiDir(amd);
    expect(parseScenario(fwScenarioYaml(importAcpiTables(amd, files as never, lspci(AMD))), "m.yaml")).toEqual(s);
  });

  it("--lspci with another kind, a missing or bad dump, is exit 2 with the problem", async () => {
    const dtb = await cli(["import", "dtb", "x.dtb", "--lspci", AMD]);
    expect([dtb.code, dtb.out]).toEqual([2, ""]);
    expect(dtb.err).toMatch(/--lspci goes with import acpi/);
    const stdin = await cli(["import", "acpi", "-", "--lspci", "-"]);
    expect([stdin.code, stdin.err]).toEqual([2, "import acpi: reads a directory, not stdin"]);
    const missing = await cli(["import", "acpi", amd, "--lspci", "no/such.txt"]);
    expect([missing.code, missing.err]).toEqual([2, "--lspci: no/such.txt: no such file"]);
    const bad = await cli(["import", "acpi", amd, "--lspci", "test/fixtures/acpi/amd-server/ivrs.asl"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^--lspci: test\/fixtures\/acpi\/amd-server\/ivrs\.asl:1: /);
  });
});

describe("import acpi --lspci: IVMD segment and alignment (init_unity_map_range)", () => {
  const scratch = mkdtempSync(join(tmpdir(), "iommu-sim-ivmd-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  /** The fixture's IVRS with each IVMD block passed to `patch` (its type and byte offset), checksum fixed, in a directory of its own. */
  function patchedIvrs(name: string, patch: (v: DataView, type: number, at: number) => void): string {
    const b = Uint8Array.from(readFileSync(join(amd, "ivrs.aml")));
    const v = new DataView(b.buffer);
    for (let o = 48; o < b.length; o += v.getUint16(o + 2, true)) {
      const type = b[o]!;
      if (type >= 0x20 && type <= 0x22) patch(v, type, o);
    }
    let sum = 0;
    for (let i = 0; i < b.length; i++) if (i !== 9) sum = (sum + b[i]!) & 0xff;
    b[9] = (0x100 - sum) & 0xff;
    const d = join(scratch, name);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "ivrs.dat"), b);
    return d;
  }
  const regions = (s: Scenario, n: string) => s.devices.find((d) => d.name === n)!["reserved-regions"];

  it("the block's PCI segment is read: a unity map for segment 1 does not reach segment 0's 01:00.0, and says why", async () => {
    const { s, imp } = await merged(patchedIvrs("seg1-unity", (v, type, at) => type === 0x21 && v.setUint16(at + 8, 1, true)), AMD);
    expect(regions(s, "0000:01:00.0")).toEqual([{ start: 0xfd000000, length: 0x1000000, type: "direct" }]);
    expect(imp.trailer.some((t) => t.includes("IVMD type 0x21") && t.includes("0001:01:00.0") && t.includes("no function of"))).toBe(true);
    // The all-devices block on segment 1 reaches none of segment 0's functions either.
    const all1 = await merged(patchedIvrs("seg1-all", (v, type, at) => type === 0x20 && v.setUint16(at + 8, 1, true)), AMD);
    expect(regions(all1.s, "0000:41:00.0")).toBeUndefined();
    expect(regions(all1.s, "0000:01:00.0")).toEqual([{ start: 0x3b000000, length: 0x100000, type: "direct" }]);
  });

  it("start and length are page-aligned up, as init_unity_map_range aligns them", async () => {
    const { s } = await merged(
      patchedIvrs("align", (v, type, at) => {
        if (type !== 0x21) return;
        v.setUint32(at + 16, 0x3b000010, true);
        v.setUint32(at + 24, 0x1001, true);
      }),
      AMD,
    );
    expect(regions(s, "0000:01:00.0")![0]).toEqual({ start: 0x3b001000, length: 0x2000, type: "direct" });
  });

  it("the IOMMU's own PCI function is grouped like any other when an IVHD entry names it: the kernel skips it nowhere (iommu_init_pci only stops drivers binding to it)", async () => {
    // The type-11h block's first entry (select 0x0000) now selects 00:00.2, the IOMMU's own function (class 0806).
    const d = patchedIvrs("self", () => {});
    const b = Uint8Array.from(readFileSync(join(d, "ivrs.dat")));
    const v = new DataView(b.buffer);
    let o = 48;
    while (b[o] !== 0x11) o += v.getUint16(o + 2, true);
    expect([b[o + 40], v.getUint16(o + 41, true)]).toEqual([0x02, 0x0000]);
    v.setUint16(o + 41, 0x0002, true);
    let sum = 0;
    for (let i = 0; i < b.length; i++) if (i !== 9) sum = (sum + b[i]!) & 0xff;
    b[9] = (0x100 - sum) & 0xff;
    writeFileSync(join(d, "ivrs.dat"), b);
    const { run } = await merged(d, AMD);
    const on = iommuOf(run);
    expect([on["0000:00:00.2"], on["0000:00:00.0"]]).toEqual(["ivhd0", null]);
    const self = run.snapshot.devices.find((x) => x.name === "0000:00:00.2")!;
    expect(self.group).not.toBeNull();
    expect(self.driver).toBeNull();
  });

  it("an all-devices block covers the segment's requester IDs up to its last_bdf (the highest an IVHD entry names), not 0xffff", async () => {
    // IOMMU B's range now ends at 0x40ff: 41:00.0 (0x4100) lies past the segment's last_bdf.
    const d = patchedIvrs("lastbdf", () => {});
    const b = Uint8Array.from(readFileSync(join(d, "ivrs.dat")));
    const v = new DataView(b.buffer);
    let patched = 0;
    for (let o = 48; o + 4 <= b.length; o++) {
      if (b[o] === 0x04 && v.getUint16(o + 1, true) === 0x7fff) {
        v.setUint16(o + 1, 0x40ff, true);
        patched++;
      }
    }
    expect(patched).toBe(1);
    let sum = 0;
    for (let i = 0; i < b.length; i++) if (i !== 9) sum = (sum + b[i]!) & 0xff;
    b[9] = (0x100 - sum) & 0xff;
    writeFileSync(join(d, "ivrs.dat"), b);
    const { s } = await merged(d, AMD);
    expect(regions(s, "0000:41:00.0")).toBeUndefined();
    expect(regions(s, "0000:40:00.0")).toEqual([{ start: 0xfd000000, length: 0x1000000, type: "direct" }]);
  });
});
