/**
 * Real machines as oracles: each dump in test/fixtures/lspci/real/ is a
 * published `lspci -vv` of a real machine (its source, and what was cut,
 * in the header of its .groups file), and its .groups file lists the groups
 * that machine's kernel made (the dump's own `IOMMU group:` lines). The dump
 * is imported and booted, and the model's groups are compared with the
 * published ones group for group, numbers included. Where the model differs
 * the test names the reason and asserts the difference itself, and
 * docs/real-machines.md lists it; nothing is skipped.
 */
import { readdirSync, readFileSync, realpathSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseLspci } from "../../src/sim/import/lspci-parse.ts";
import { importLspci } from "../../src/sim/import/lspci-scenario.ts";
import { lspciScenarioData } from "../../src/sim/import/lspci-data.ts";
import { validateScenario } from "../../src/sim/scenario/load.ts";
import type { Scenario } from "../../src/sim/scenario/schema.ts";
import { boot, snapshot } from "../helpers.ts";

const DIR = "test/fixtures/lspci/real/";

type Groups = Map<number, string[]>;

/** A .groups file: `IOMMU Group N: DDDD:BB:DD.F ...` lines, `#` comments. */
function published(file: string): Groups {
  const out: Groups = new Map();
  for (const line of readFileSync(DIR + file, "utf8").split("\n")) {
    const m = /^IOMMU Group (\d+): (.+)$/.exec(line);
    if (m !== null) out.set(Number(m[1]), m[2]!.split(" ").sort());
  }
  return out;
}

function imported(dump: string): Scenario {
  const imp = importLspci(parseLspci(readFileSync(DIR + dump, "utf8"), dump));
  return validateScenario(lspciScenarioData(imp), dump);
}

/** The groups the model makes for the machine, booted without its events. */
function modelGroups(s: Scenario): Groups {
  const out: Groups = new Map();
  for (const g of snapshot(boot(s)).groups) out.set(g.id, [...g.devices].sort());
  return out;
}

const DUMPS = readdirSync(DIR).filter((f) => f.endsWith(".txt")).sort();
const groupsFile = (dump: string) => dump.replace(/\.[^.]+\.txt$/, ".groups");

/** Dumps whose published groups the model reproduces exactly. */
const MATCHING = ["apple-t2-cometlake.vvnnPP.txt", "asus-b350-zen1-rx580.kvv.txt", "asus-g14-ga402-rembrandt.knvvv.txt", "lenovo-e15g3-renoir.vvv.txt"];

describe("real dumps reproduce their kernel's groups", () => {
  it("every dump has a .groups file and is either matching or a listed known difference", () => {
    expect(DUMPS.length).toBeGreaterThanOrEqual(4);
    for (const d of DUMPS) {
      expect(published(groupsFile(d)).size, d).toBeGreaterThan(0);
      expect(MATCHING.includes(d) || d in KNOWN, d).toBe(true);
    }
  });

  it.each(MATCHING)("%s: group for group, numbers included", (d) => {
    const want = published(groupsFile(d));
    const s = imported(d);
    expect(modelGroups(s)).toEqual(want);
    // The import turns the dump's own group lines into an expectation; it holds too.
    expect(s.events?.[0]?.expect?.groups?.length).toBe(want.size);
  });

  it("lspci -n: the IDs and class come from the numbers (the G14 dump)", () => {
    const d = imported("asus-g14-ga402-rembrandt.knvvv.txt").devices.find((x) => x.name === "0000:00:01.1")!;
    expect([d.id, d.subsystem, d.class]).toEqual(["1022:14b8", "1043:1d42", "060400"]);
  });
});

/**
 * Known differences: the published groups, the groups the model makes
 * instead, and what the model lacks. Each also shows that supplying the
 * missing fact makes the model agree.
 */
/** Short BDFs on segment 0 as full names. */
const bdfs = (...xs: string[]) => xs.map((x) => `0000:${x}`).sort();

const KNOWN: Record<string, { why: string; model: (pub: Groups) => Groups; fix?: (s: Scenario) => void }> = {
  // lspci without root: every function's capabilities read `<access denied>`,
  // so neither the Express types nor ACS are known. The import assumes no ACS
  // anywhere (and says so); the kernel, which read the registers, made 39
  // groups where the model makes 9: each root port's whole tree is one group.
  // No fact of the dump can fix it; `sudo lspci -vv` can.
  "gigabyte-x570-2xarc-a770.user-vv.txt": {
    why: "a dump without root: ACS unknown, the model assumes none, so every port's subtree shares its group",
    model: () =>
      new Map([
        [0, bdfs("00:01.0", "00:01.1", "00:01.2", "01:00.0", "02:00.0", "03:01.0", "03:02.0", "03:04.0", "03:08.0", "03:09.0", "03:0a.0", "04:00.0", "05:00.0", "06:01.0", "06:04.0", "07:00.0", "08:00.0", "09:00.0", "0a:00.0", "0a:00.1", "0a:00.3", "0b:00.0", "0c:00.0")],
        [1, bdfs("00:02.0")],
        [2, bdfs("00:03.0", "00:03.1", "0d:00.0", "0e:01.0", "0e:04.0", "0f:00.0", "10:00.0")],
        [3, bdfs("00:04.0")],
        [4, bdfs("00:05.0")],
        [5, bdfs("00:07.0", "00:07.1", "11:00.0")],
        [6, bdfs("00:08.0", "00:08.1", "12:00.0", "12:00.1", "12:00.3", "12:00.4")],
        [7, bdfs("00:14.0", "00:14.3")],
        [8, bdfs("00:18.0", "00:18.1", "00:18.2", "00:18.3", "00:18.4", "00:18.5", "00:18.6", "00:18.7")],
      ]),
  },
  // lspci without -nn prints no IDs, so pci_quirk_intel_spt_pch_acs (Sunrise
  // Point-LP root ports 8086:9d10..9d1b, whose ACS control sits at cap + 8,
  // lspci showing the wrong word: ACSCtl all off) cannot match. The model
  // then sees three root ports without enabled ACS: 00:1c.0 and 00:1c.4
  // (functions of one slot) share a group with the devices below them, and
  // 00:1d.0 with its NVMe drive.
  "microsoft-surfacebook2-kbl.vvv.txt": {
    why: "no IDs in the dump (lspci -vvv without -nn): pci_quirk_intel_spt_pch_acs cannot match the Sunrise Point-LP root ports",
    model: () =>
      new Map([
        [0, ["0000:00:00.0"]],
        [1, ["0000:00:02.0"]],
        [2, ["0000:00:04.0"]],
        [3, ["0000:00:05.0"]],
        [4, ["0000:00:13.0"]],
        [5, ["0000:00:14.0", "0000:00:14.2", "0000:00:14.3"]],
        [6, ["0000:00:15.0", "0000:00:15.1", "0000:00:15.2", "0000:00:15.3"]],
        [7, ["0000:00:16.0", "0000:00:16.4"]],
        [8, ["0000:00:1c.0", "0000:00:1c.4", "0000:01:00.0", "0000:02:00.0"]],
        [9, ["0000:00:1d.0", "0000:03:00.0"]],
        [10, ["0000:00:1e.0"]],
        [11, ["0000:00:1f.0", "0000:00:1f.2", "0000:00:1f.3", "0000:00:1f.4"]],
      ]),
    // The IDs the dump's names stand for ("Sunrise Point-LP PCI Express Root Port #1, #5, #9": 8086:9d10, 9d14, 9d18).
    fix: (s) => {
      const ids: Record<string, string> = { "0000:00:1c.0": "8086:9d10", "0000:00:1c.4": "8086:9d14", "0000:00:1d.0": "8086:9d18" };
      for (const d of s.devices) if (ids[d.name] !== undefined) (d as { id?: string }).id = ids[d.name];
    },
  },
};

describe("real dumps: known differences, asserted", () => {
  it.each(Object.entries(KNOWN).map(([d, k]) => [d, k.why] as const))("%s differs: %s", (d) => {
    const k = KNOWN[d]!;
    const want = published(groupsFile(d));
    const s = imported(d);
    const got = modelGroups(s);
    expect(got).not.toEqual(want);
    expect(got).toEqual(k.model(want));
    expect(readFileSync("docs/real-machines.md", "utf8")).toContain(d);
    // Where a fact of the dump is missing but known (an ID), supplying it makes the model agree.
    if (k.fix !== undefined) {
      k.fix(s);
      expect(modelGroups(s)).toEqual(want);
    }
  });
});

describe("the README's VFIO example is a real dump", () => {
  it("the B350 fixture is examples/b350-rx580.lspci.txt (one file, the fixture a link to it), so the groups README shows are the kernel's", () => {
    expect(realpathSync(DIR + "asus-b350-zen1-rx580.kvv.txt")).toBe(realpathSync("examples/b350-rx580.lspci.txt"));
    expect(MATCHING).toContain("asus-b350-zen1-rx580.kvv.txt");
    expect(readFileSync("README.md", "utf8")).toContain("$ iommu-sim groups examples/b350-rx580.lspci.txt");
  });
});
