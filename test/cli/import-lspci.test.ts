/**
 * `iommu-sim import lspci`: each fixture (test/fixtures/lspci/, lspci -vv
 * in its variants) imports to a scenario that runs and reproduces the
 * groups its `IOMMU group:` lines record; a dump taken without root
 * imports with a warning; bad input is exit 2 with the file and line.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { LspciError, parseLspci } from "../../src/sim/import/lspci-parse.ts";
import { importLspci } from "../../src/sim/import/lspci-scenario.ts";
import { lspciScenarioYaml } from "../../src/sim/import/lspci-yaml.ts";
import { parseScenario, validateScenario } from "../../src/sim/scenario/load.ts";
import { lspciScenarioData } from "../../src/sim/import/lspci-data.ts";
import { runScenario } from "../../src/sim/runner.ts";

const DIR = "test/fixtures/lspci/";
const MATCHING = ["intel-z270-gtx1070.vvnn.txt", "intel-z270-gtx1070.vvnnPP.txt", "intel-z270-gtx1070.vvvD-xxx.txt", "amd-x570-rx5700.vvnn.txt", "intel-x99-rtx2080.vvnn.txt"];

async function cli(argv: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s), tty: false, ...(stdin === undefined ? {} : { readStdin: async () => stdin }) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("import lspci: the fixtures reproduce their kernel's groups", () => {
  it.each(MATCHING)("%s", async (f) => {
    const r = await cli(["import", "lspci", DIR + f]);
    expect(r.code).toBe(0);
    const s = parseScenario(r.out, "imported.yaml");
    const run = runScenario(s, { trace: false });
    expect(run.failures).toEqual([]);
    // The expectation is the dump's own: every group, with its number.
    const exp = s.events[0]!.expect!;
    expect(exp.groups!.length).toBe(run.snapshot.groups.length);
    expect(run.expectations.passed).toBe(1);
  });

  it("the YAML and the data groups/explain validate directly are the same scenario", () => {
    for (const f of MATCHING) {
      const imp = importLspci(parseLspci(readFileSync(DIR + f, "utf8"), f));
      expect(validateScenario(lspciScenarioData(imp), f)).toEqual(parseScenario(lspciScenarioYaml(imp), f));
    }
  });

  it("all variants of the Z270 dump give the same machine", async () => {
    const machines = await Promise.all(
      MATCHING.filter((f) => f.startsWith("intel-z270")).map(async (f) => {
        const s = parseScenario((await cli(["import", "lspci", DIR + f])).out, "x.yaml");
        return s.devices.map((d) => [d.name, d.parent, d.type, d.id, d.multifunction, d.acs_cap, d.acs_ctl]);
      }),
    );
    expect(machines[1]).toEqual(machines[0]);
    expect(machines[2]).toEqual(machines[0]);
    // -P (paths without bus numbers): the bus comes from the parent bridge's secondary bus.
    const p = readFileSync(DIR + "intel-z270-gtx1070.vvnnPP.txt", "utf8").replace(/\/[0-9a-f]{2}:/g, "/");
    expect(p).toContain("00:01.0/00.0 VGA");
    const s = parseScenario((await cli(["import", "lspci", "-"], p)).out, "p.yaml");
    expect(s.devices.map((d) => [d.name, d.parent, d.type, d.id, d.multifunction, d.acs_cap, d.acs_ctl])).toEqual(machines[0]);
  });

  it("reads stdin for -, and names the source lines in comments", async () => {
    const text = readFileSync(DIR + "intel-z270-gtx1070.vvnn.txt", "utf8");
    const r = await cli(["import", "lspci", "-"], text);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/# <stdin>:\d+, \d+ bus range, \d+ Root Port, \d+-\d+ ACS\n {2}- \{name: "0000:00:1b\.0"/);
    expect(r.out).toContain('- {name: "vfio-pci", bus: pci, match: ["0000:01:00.0", "0000:01:00.1"], driver_managed_dma: true}');
  });

  it("--iommu overrides the host bridge's vendor", async () => {
    const r = await cli(["import", "lspci", DIR + "intel-z270-gtx1070.vvnn.txt", "--iommu", "amd"]);
    expect(r.out).toContain("driver: amd-iommu, scope: all}  # --iommu");
    expect((await cli(["import", "lspci", DIR + "intel-z270-gtx1070.vvnn.txt", "--iommu", "arm"])).code).toBe(2);
  });

  it("a dump without root imports with a warning; its PCH root ports then miss the SPT quirk and the check fails", async () => {
    const r = await cli(["import", "lspci", DIR + "intel-z270-user.vvnn.txt"]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/21 function\(s\) show 'Capabilities: <access denied>'.*ACS is unknown\. The model assumed no ACS capability/);
    const run = runScenario(parseScenario(r.out, "u.yaml"), { trace: false });
    expect(run.failures.map((f) => f.message).filter((m) => m.includes("no group is exactly")).length).toBe(6);
  });
});

describe("import lspci: bad input is exit 2 with the file, line and problem", () => {
  const good = readFileSync(DIR + "intel-z270-gtx1070.vvnn.txt", "utf8").split("\n");
  const amd = readFileSync(DIR + "amd-x570-rx5700.vvnn.txt", "utf8").split("\n");
  const block = (lines: string[], addr: string) => {
    const start = lines.findIndex((l) => l.startsWith(addr));
    const end = lines.indexOf("", start);
    return [start, end];
  };
  const acs = good.findIndex((l) => l.includes("Access Control Services"));
  const [up0, up1] = block(amd, "02:00.0");
  const cases: [string, string, RegExp][] = [
    ["not lspci", "hello world\n", /^x\.txt:1: 'hello world' is not lspci -vv output/],
    ["empty", "\n\n", /^x\.txt:3: no PCI function in the file/],
    ["a cut ACS block", good.slice(0, acs + 2).join("\n"), new RegExp(`x\\.txt:${acs + 1}: Access Control Services without both ACSCap: and ACSCtl:`)],
    ["a cut Express line", good.slice(0, 33).join("\n") + "\n\tCapabilities: [a0] Express (v2) Ro", /x\.txt:34: unknown PCI Express port type 'Ro/],
    ["an impossible bus range", good.join("\n").replace("primary=00, secondary=01, subordinate=01", "primary=00, secondary=05, subordinate=02"), /x\.txt:22: impossible bus range/],
    ["a missing switch port", amd.filter((_, i) => i < up0! || i > up1!).join("\n"), /^x\.txt:\d+: 0000:03:08\.0 is on bus 03, inside 0000:00:01\.2's range 02-06, but no bridge in the dump leads to that bus/],
    ["a duplicate function", good.join("\n") + "\n" + good.slice(0, 14).join("\n"), /^x\.txt:\d+: 0000:00:00\.0 is listed twice \(also at line 1\)/],
  ];
  it.each(cases)("%s", async (_n, text, re) => {
    const r = await cli(["import", "lspci", "-"], text);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err.replace("<stdin>", "x.txt")).toMatch(re);
  });
  it("a missing file", async () => {
    const r = await cli(["import", "lspci", DIR + "nope.txt"]);
    expect([r.code, r.err]).toEqual([2, `${DIR}nope.txt: no such file`]);
  });
});

describe("import lspci: fuzz (mutated fixtures never crash the importer)", () => {
  it("deleted, cut, duplicated and garbled lines give a scenario or an LspciError naming a line", () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return n <= 0 ? 0 : seed % n;
    };
    const files = [...MATCHING, "intel-z270-user.vvnn.txt"].map((f) => readFileSync(DIR + f, "utf8"));
    let ok = 0;
    let errors = 0;
    for (let i = 0; i < 200; i++) {
      const lines = files[i % files.length]!.split("\n");
      for (let k = 0; k <= rnd(3); k++) {
        if (lines.length === 0) lines.push("");
        const at = rnd(lines.length);
        switch (rnd(5)) {
          case 0:
            lines.splice(at, 1 + rnd(10));
            break;
          case 1:
            lines[at] = lines[at]!.slice(0, rnd(lines[at]!.length + 1));
            break;
          case 2:
            lines.splice(at, 0, ...lines.slice(rnd(lines.length), rnd(lines.length)));
            break;
          case 3: {
            const l = lines[at]!;
            const p = rnd(l.length + 1);
            lines[at] = l.slice(0, p) + "\x00x:=[]0f\t"[rnd(9)] + l.slice(p + 1);
            break;
          }
          default:
            lines.length = rnd(lines.length);
        }
      }
      try {
        const imp = importLspci(parseLspci(lines.join("\n"), "fuzz.txt"));
        parseScenario(lspciScenarioYaml(imp), "fuzz.yaml");
        ok++;
      } catch (e) {
        if (!(e instanceof LspciError)) throw new Error(`mutation ${i}: ${(e as Error).message}`);
        expect(e.message).toMatch(/^fuzz\.txt:\d+: /);
        errors++;
      }
    }
    expect(ok).toBeGreaterThan(10);
    expect(errors).toBeGreaterThan(10);
  });
});
