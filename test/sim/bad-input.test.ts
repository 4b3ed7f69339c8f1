import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { parseScenario, ScenarioError } from "../../src/sim/scenario/load.ts";
import { scenario } from "../helpers.ts";

const tmp = mkdtempSync(join(tmpdir(), "iommu-sim-bad-input-"));
let files = 0;

/**
 * The same scenario through the command line, as a file: every command exits 2 with nothing on
 * stdout and no stack trace, each message line starting with the file's path. Returns the lines
 * with the path put back to "inline.yaml", to compare with what the loader reported.
 */
async function cliProblems(yaml: string, ext = "yaml"): Promise<string[]> {
  const path = join(tmp, `bad-${files++}.${ext}`);
  writeFileSync(path, yaml);
  const errs: string[] = [];
  for (const cmd of ["validate", "check", "run"]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main([cmd, path], { out: (x) => out.push(x), err: (x) => err.push(x) });
    expect(code, cmd).toBe(2);
    expect(out, cmd).toEqual([]);
    const text = err.join("\n");
    expect(text, cmd).not.toMatch(/\n\s+at /);
    for (const line of text.split("\n")) expect(line.startsWith(`${path}:`), line).toBe(true);
    errs.push(text);
  }
  expect(errs[1]).toBe(errs[0]);
  expect(errs[2]).toBe(errs[0]);
  return errs[0]!.split("\n").map((l) => `inline.${ext}` + l.slice(path.length));
}

/** The problems of JSON text, as the loader and the command line (a .json file) report them. */
async function jsonProblems(json: string): Promise<string[]> {
  let p: string[] | null = null;
  try {
    parseScenario(json, "inline.json");
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    p = e.message.split("\n");
  }
  if (p === null) throw new Error("the scenario was accepted");
  expect(await cliProblems(json, "json")).toEqual(p);
  return p;
}

/** problems(yaml), checked to be exactly what the command line prints for the same file. */
async function problemsEverywhere(yaml: string): Promise<string[]> {
  const p = problems(yaml);
  expect(await cliProblems(yaml)).toEqual(p);
  return p;
}

/** The problems a malformed scenario reports, as "line:col path: message" lines. */
function problems(yaml: string): string[] {
  try {
    scenario(yaml);
  } catch (e) {
    if (e instanceof ScenarioError) return e.message.split("\n");
    throw e;
  }
  throw new Error("the scenario was accepted");
}

const SMMU = `
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu}
`;

describe("malformed scenarios get a precise message", () => {
  it("names the file, line, column and key path of an unknown key", async () => {
    const p = await problemsEverywhere(`name: x
devices:
  - name: a
    bus: platform
    colour: blue
`);
    expect(p).toEqual([expect.stringMatching(/^inline\.yaml:5:5: devices\[0\]\.colour: unknown key 'colour'; expected one of name, bus, fwnode, /)]);
  });

  it("reports a wrong type", async () => {
    expect((await problemsEverywhere(`name: x\niommus:\n  - {name: s, driver: arm-smmu-v3, fwnode: /s, registered: "no"}\n`))[0]).toMatch(
      /^inline\.yaml:3:\d+: iommus\[0\]\.registered: expected true or false, found 'no'$/,
    );
  });

  it("reports an unknown driver kind with the allowed ones", async () => {
    expect((await problemsEverywhere(`name: x\niommus:\n  - {name: s, driver: arm-smmu-v9, fwnode: /s}\n`))[0]).toBe(
      "inline.yaml:3:15: iommus[0].driver: expected one of arm-smmu-v3, arm-smmu, intel-iommu, amd-iommu, virtio-iommu, mock, found 'arm-smmu-v9'; did you mean 'arm-smmu-v3'?",
    );
  });

  it("reports unknown device, instance and driver names in events", async () => {
    const p = await problemsEverywhere(`name: x${SMMU}devices:
  - {name: a, bus: platform}
drivers:
  - {name: d, bus: platform, match: [a]}
events:
  - iommu_register: smmu9
  - device_del: b
  - driver_bind: {device: a, driver: nope}
  - expect: {devices: {zz: {probe: bound}}}
`);
    expect(p).toEqual([
      "inline.yaml:9:5: events[0].iommu_register: unknown IOMMU instance 'smmu9'; did you mean 'smmu0'?",
      "inline.yaml:10:5: events[1].device_del: unknown device 'b': expected one of a",
      "inline.yaml:11:30: events[2].driver_bind.driver: unknown driver 'nope': expected one of d",
      "inline.yaml:12:24: events[3].expect.devices.zz: unknown device 'zz': expected one of a",
    ]);
  });

  it("reports unknown instance, driver and ops names used as expected values", async () => {
    const p = await problemsEverywhere(`name: x${SMMU}devices:
  - {name: a, bus: platform}
events:
  - expect: {devices: {a: {iommu: nobody, driver: nodrv, ops: arm-smmu-v9}}}
  - expect: {devices: {a: {iommu: null, driver: null, ops: null}}}
`);
    expect(p).toEqual([
      "inline.yaml:7:28: events[0].expect.devices.a.iommu: unknown IOMMU instance 'nobody': expected one of smmu0",
      "inline.yaml:7:43: events[0].expect.devices.a.driver: unknown driver 'nodrv': the scenario has no driver at all",
      "inline.yaml:7:58: events[0].expect.devices.a.ops: unknown iommu_ops 'arm-smmu-v9'; did you mean 'arm-smmu-v3'?",
    ]);
  });

  it("reports duplicate names", async () => {
    const p = await problemsEverywhere(`name: x
devices:
  - {name: a, bus: platform}
  - {name: a, bus: amba}
`);
    expect(p).toEqual(["inline.yaml:4:6: devices[1].name: duplicate name 'a' (also devices[0])"]);
  });

  it("refuses an amba device on an x86 machine (amba_bustype is in iommu_buses only under CONFIG_ARM_AMBA)", async () => {
    const p = await problemsEverywhere(`name: x
iommus:
  - {name: dmar0, driver: intel-iommu, scope: all}
devices:
  - {name: a, bus: amba}
`);
    expect(p).toEqual([
      "inline.yaml:5:15: devices[0].bus: the amba bus exists on arm64 only (CONFIG_ARM_AMBA); this machine is x86 (boot.arch, or an intel-iommu/amd-iommu instance)",
    ]);
  });

  it("refuses may_fail beside expect_error, and on an expect or a concurrently block", async () => {
    const p = await problemsEverywhere(`name: x
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}
events:
  - {iommu_unregister: smmu0, may_fail: true, expect_error: ENOENT}
  - {expect: {violations: []}, may_fail: true}
`);
    expect(p).toEqual([
      "inline.yaml:5:31: events[0].may_fail: may_fail says either outcome is fine; expect_error asks for one: give one of them",
      "inline.yaml:6:32: events[1].may_fail: may_fail belongs on an event, not on expect",
    ]);
  });

  it("reports duplicate IOMMU instance names", async () => {
    const p = await problemsEverywhere(`name: x
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu1}
`);
    expect(p).toEqual(["inline.yaml:4:6: iommus[1].name: duplicate name 'smmu0' (also iommus[0])"]);
  });

  it("reports duplicate driver names", async () => {
    const p = await problemsEverywhere(`name: x
devices:
  - {name: a, bus: platform}
drivers:
  - {name: d, bus: platform, match: [a]}
  - {name: e, bus: platform, match: [a]}
  - {name: d, bus: platform, match: "*"}
`);
    expect(p).toEqual(["inline.yaml:7:6: drivers[2].name: duplicate name 'd' (also drivers[0])"]);
  });

  it("reports an iommus entry with the wrong number of cells", async () => {
    const p = await problemsEverywhere(`name: x${SMMU}devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[smmu0, 1, 2]]}
`);
    expect(p).toEqual(["inline.yaml:5:51: devices[0].iommus[0]: smmu0 has #iommu-cells = 1, but this entry has 2 cells"]);
  });

  it("reports a PCI device whose parent does not exist", async () => {
    const p = await problemsEverywhere(`name: x
devices:
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0"}
`);
    expect(p).toEqual(["inline.yaml:3:38: devices[0].parent: parent '0000:00:1c.0' does not exist"]);
  });

  it("reports a PCI function name that is not SSSS:BB:DD.F", async () => {
    expect((await problemsEverywhere(`name: x\ndevices:\n  - {name: "00:1f.3", bus: pci}\n`))[0]).toMatch(/devices\[0\]\.name: a PCI function is named SSSS:BB:DD\.F/);
  });

  it("reports a child on the wrong bus number below its bridge", async () => {
    const p = await problemsEverywhere(`name: x
devices:
  - {name: "0000:00:1c.0", bus: pci, type: root-port}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0"}
  - {name: "0000:02:00.0", bus: pci, parent: "0000:00:1c.0"}
`);
    expect(p[0]).toMatch(/devices\[2\]\.name: 0000:02:00\.0 is on bus 02, but 0000:00:1c\.0's other children are on bus 01/);
  });

  it("reports an event with two kernel entry points", async () => {
    expect((await problemsEverywhere(`name: x\nevents:\n  - {device_add: a, device_del: a}\n`))[0]).toBe(
      "inline.yaml:3:5: events[0]: expected one kernel entry point per event, found 2: device_add and device_del",
    );
  });

  it("reports YAML syntax errors with their position", async () => {
    expect((await problemsEverywhere(`name: x\ndevices: [\n`))[0]).toMatch(/^inline\.yaml:\d+:\d+: \(top level\): not valid YAML: /);
  });

  it("reports a missing name", async () => {
    expect(await problemsEverywhere(`devices: []\n`)).toEqual(["inline.yaml:1:1: name: expected a name, found nothing (this key is required)"]);
  });
});

describe("unknown keys and values get a 'did you mean' from what that path allows", () => {
  it("suggests the closest key of the mapping at that path, at every depth", async () => {
    const p = await problemsEverywhere(`name: x
boot: {cmdlin: "iommu.strict=1", strategy: {ops_resolutoin: upstream}}
iommus:
  - {name: s, driver: arm-smmu-v3, fwnode: /s, registred: false}
devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[s, 1]], Parent: s}
events:
  - {iommu_regster: s}
  - {map: {domian: 1, iova: 0, paddr: 0, size: 4K}}
  - expect: {groups: [{devices: [a], tpye: DMA}], devices: {a: {probe_eror: null}}}
`);
    expect(p).toEqual([
      "inline.yaml:2:8: boot.cmdlin: unknown key 'cmdlin'; did you mean 'cmdline'?",
      "inline.yaml:2:45: boot.strategy.ops_resolutoin: unknown key 'ops_resolutoin'; did you mean 'ops_resolution'?",
      "inline.yaml:4:48: iommus[0].registred: unknown key 'registred'; did you mean 'registered'?",
      "inline.yaml:6:60: devices[0].Parent: unknown key 'Parent'; did you mean 'parent'?",
      "inline.yaml:8:6: events[0].iommu_regster: unknown key 'iommu_regster'; did you mean 'iommu_register'?",
      "inline.yaml:9:12: events[1].map.domian: unknown key 'domian'; did you mean 'domain'?",
      "inline.yaml:10:38: events[2].expect.groups[0].tpye: unknown key 'tpye'; did you mean 'type'?",
      "inline.yaml:10:65: events[2].expect.devices.a.probe_eror: unknown key 'probe_eror'; did you mean 'probe_error'?",
    ]);
  });

  it("lists some allowed keys when none is close", async () => {
    const p = await problemsEverywhere(`name: x
drivers:
  - {name: d, bus: pci, match: "*", flavour: mild}
`);
    expect(p).toEqual(["inline.yaml:3:37: drivers[0].flavour: unknown key 'flavour'; expected one of name, bus, match, driver_managed_dma, registered, probe_result"]);
  });

  it("suggests enum values, and names the kernel entry points an event may have", async () => {
    const p = await problemsEverywhere(`name: x
devices:
  - {name: a, bus: platfrom}
events:
  - {note: nothing happens}
`);
    expect(p).toEqual([
      "inline.yaml:3:15: devices[0].bus: expected one of platform, pci, amba, iommufd_mock, found 'platfrom'; did you mean 'platform'?",
      "inline.yaml:5:5: events[0]: expected one kernel entry point, expect or concurrently (iommu_register, iommu_unregister, device_add, device_del, driver_register, … (29 in all)), found only 'note'",
    ]);
  });
});

describe("every message says what was expected and what was found", () => {
  it("for types, bounds, empty strings, lists and unions", async () => {
    const p = await problemsEverywhere(`name: ""
iommus:
  - {name: s, driver: arm-smmu-v3, fwnode: /s, pasid-bits: 99, ias: "48", page-sizes: []}
devices:
  - {name: a, bus: platform, dma-mask: 0}
drivers:
  - {name: d, bus: platform, match: 42}
  - {name: e, bus: platform, match: "**"}
events:
  - expect: {groups: [5]}
`);
    expect(p).toEqual([
      "inline.yaml:1:1: name: expected a non-empty string, found an empty string",
      "inline.yaml:3:48: iommus[0].pasid-bits: expected an integer from 0 to 20, found 99",
      "inline.yaml:3:64: iommus[0].ias: expected an integer from 32 to 52, found '48'",
      "inline.yaml:3:75: iommus[0].page-sizes: expected at least 1 item, found an empty list",
      "inline.yaml:5:30: devices[0].dma-mask: expected an integer from 1 to 64, found 0",
      "inline.yaml:7:30: drivers[0].match: expected a list of names, or \"*\", found 42",
      "inline.yaml:8:30: drivers[1].match: expected a list of names, or \"*\", found '**'",
      "inline.yaml:10:23: events[0].expect.groups[0]: expected a list of names, or a mapping, found 5",
    ]);
    for (const line of p) expect(line).not.toMatch(/Invalid input|Too (big|small)|Invalid option/);
  });

  it("quotes a long value only in part, with its length, and keeps every message short", async () => {
    const long = "x".repeat(100_000);
    const schema = await problemsEverywhere(`name: x\ndevices:\n  - {name: a, bus: ${long}}\n`);
    expect(schema).toEqual([`inline.yaml:3:15: devices[0].bus: expected one of platform, pci, amba, iommufd_mock, found '${"x".repeat(80)}…' (100000 characters)`]);
    // A long key (JSON: YAML keys stop at 1024 characters) and long names in references.
    const key = await jsonProblems(JSON.stringify({ name: "x", devices: [{ name: "b", bus: "platform", [long]: 1 }] }));
    const refs = await problemsEverywhere(`name: x
devices:
  - {name: a, bus: platform}
drivers:
  - {name: d, bus: platform, match: [${long}]}
events:
  - device_add: ${long}
  - expect: {devices: {${long}: {probe: bound}}}
`);
    expect(refs).toHaveLength(3);
    for (const line of [...schema, ...key, ...refs]) {
      expect(line.length).toBeLessThan(400);
      expect(line).toMatch(/…'? \(100000 characters\)/);
    }
  });
});

describe("numbers written as strings have the bounds numbers have", () => {
  const MAP = `name: x
iommus:
  - {name: m, driver: mock}
devices:
  - {name: d, bus: iommufd_mock, reserved-regions: [{start: RS, length: 4K, type: reserved}]}
events:
  - domain_alloc: {name: u, device: d}
  - map: {domain: u, iova: IOVA, paddr: 0, size: 4K}
  - dma_map: {device: d, name: h, sg: [[0, SG]]}
  - device_dma: {device: d, iova: 0, size: SIZE}
`;
  const fill = (v: Record<string, string>) => MAP.replace(/RS|IOVA|SG|SIZE/g, (k) => v[k] ?? "0");

  it("accepts hex and unit strings within the bound, as the same numbers", () => {
    const ok = scenario(fill({ RS: '"0x1000"', IOVA: '"0x1fffffffffffff"', SG: '"8T"', SIZE: "0x1000" }));
    expect(ok.events[1]!.map!.iova).toBe("0x1fffffffffffff");
    expect(ok.devices[0]!["reserved-regions"]![0]!.start).toBe("0x1000");
  });

  it("refuses a hex or unit string past 2^53-1 in every size field, as it refuses the number", async () => {
    const p = await problemsEverywhere(fill({ RS: '"0x20000000000000"', IOVA: '"0xffffffffffffffff"', SG: '"9999999T"', SIZE: '"18446744073709551615"' }));
    expect(p).toEqual([
      "inline.yaml:5:54: devices[0].reserved-regions[0].start: expected a size of at most 2^53-1 (0x1fffffffffffff), found '0x20000000000000' = 0x20000000000000",
      "inline.yaml:8:22: events[1].map.iova: expected a size of at most 2^53-1 (0x1fffffffffffff), found '0xffffffffffffffff' = 0xffffffffffffffff",
      "inline.yaml:9:44: events[2].dma_map.sg[0][1]: expected a size of at most 2^53-1 (0x1fffffffffffff), found '9999999T' = 0x98967f0000000000",
      "inline.yaml:10:38: events[3].device_dma.size: expected a size of at most 2^53-1 (0x1fffffffffffff), found '18446744073709551615' = 0xffffffffffffffff",
    ]);
    const asNumber = await problemsEverywhere(fill({ IOVA: "0x20000000000000" }));
    expect(asNumber).toEqual(["inline.yaml:8:22: events[1].map.iova: expected a size: a non-negative integer, or a string like 4K, 2M, 1G or 0x1000 (at most 2^53-1), found 9007199254740992"]);
  });

  it("refuses a string that is not a size, saying what a size looks like", async () => {
    expect(await problemsEverywhere(fill({ IOVA: "4 KiB" }))).toEqual([
      "inline.yaml:8:22: events[1].map.iova: expected a size: a non-negative integer, or a string like 4K, 2M, 1G or 0x1000, found '4 KiB'",
    ]);
  });
});

describe("YAML that could exhaust the loader is refused with exit 2", () => {
  it("an alias bomb", async () => {
    let y = "name: x\ndescription: &a [x, x, x, x, x, x, x, x, x]\n";
    for (let i = 1; i < 12; i++) y += `k${i}: &a${i} [${Array(9).fill(i === 1 ? "*a" : `*a${i - 1}`).join(", ")}]\n`;
    const p = await problemsEverywhere(y);
    expect(p).toEqual([expect.stringMatching(/^inline\.yaml:\d+:\d+: \(top level\): aliases expand too far: expected at most 100000 nodes added by aliases, found more at alias '\*a\d+'$/)]);
  });

  it("an undefined alias, and an alias inside its own anchor", async () => {
    expect(await problemsEverywhere("name: *nope\n")).toEqual(["inline.yaml:1:7: (top level): alias '*nope' names no anchor: expected an anchor &nope earlier in the file"]);
    expect(await problemsEverywhere("name: x\ndescription: &loop [a, *loop]\n")).toEqual([
      "inline.yaml:2:24: (top level): alias '*loop' sits inside the node its anchor names: expected an alias to a complete node, found a cycle",
    ]);
  });

  it("aliases that are fine load as the values they name", () => {
    const s = scenario("name: x\ndevices:\n  - &dev {name: a, bus: platform}\ndrivers:\n  - {name: d, bus: platform, match: [a]}\n  - {name: e, bus: platform, match: &all [a]}\n  - {name: f, bus: platform, match: *all}\n");
    expect(s.drivers[2]!.match).toEqual(["a"]);
  });

  it("2,000-deep nesting, in flow and block style, and aliases that nest too deep once expanded", async () => {
    for (const y of [`name: x\ndescription: ${"[".repeat(2000)}${"]".repeat(2000)}\n`, `name: x\ndescription:\n${Array.from({ length: 2000 }, (_, i) => `${" ".repeat(i + 1)}k:\n`).join("")}`]) {
      const p = await problemsEverywhere(y);
      expect(p).toEqual([expect.stringMatching(/^inline\.yaml:\d+:\d+: \(top level\): expected at most 64 levels of nested mappings and lists \(a scenario needs about 10\), found deeper nesting here$/)]);
    }
    let y = `name: x\na0: &a0 ${"[".repeat(40)}${"]".repeat(40)}\n`;
    y += `a1: &a1 ${"[".repeat(40)}*a0${"]".repeat(40)}\n`;
    expect(await problemsEverywhere(y)).toEqual([expect.stringMatching(/^inline\.yaml:3:49: \(top level\): alias '\*a0' nests too deep: expected at most 64 levels once expanded, found 80$/)]);
  });

  it("an empty document", async () => {
    for (const y of ["", "---\n", "# nothing but a comment\n"]) {
      expect(await problemsEverywhere(y)).toEqual(["inline.yaml: (top level): expected a scenario (a mapping with at least a name), found an empty document"]);
    }
  });

  it("more than one document, and unknown tags", async () => {
    expect(await problemsEverywhere("name: x\n---\nname: y\n")).toEqual(["inline.yaml:3:1: (top level): expected one YAML document, found several (a line '---' starts another)"]);
    expect(await problemsEverywhere("name: !color red\n")).toEqual(["inline.yaml:1:7: (top level): not valid YAML: Unresolved tag: !color"]);
    expect(await problemsEverywhere("name: !!binary eA==\n")).toEqual(["inline.yaml:1:1: name: expected a name, found binary data (a YAML !!binary value)"]);
  });
});

describe(".json files are JSON, parsed strictly, with positions", () => {
  it("refuses trailing commas, comments, YAML tags and YAML flow style, saying where", async () => {
    expect(await jsonProblems('{"name": "x", "devices": [],}')).toEqual(["inline.json:1:29: (top level): not valid JSON: expected a double-quoted key (JSON allows no trailing comma), found '}'"]);
    expect(await jsonProblems('{"name": "x",\n "devices": [1, 2,]}')).toEqual(["inline.json:2:19: (top level): not valid JSON: expected a value (JSON allows no trailing comma), found ']'"]);
    expect(await jsonProblems('{"name": !!str x}')).toEqual(["inline.json:1:10: (top level): not valid JSON: expected a JSON value, found '!' (a YAML tag; JSON has none)"]);
    expect(await jsonProblems('{name: x}')).toEqual(["inline.json:1:2: (top level): not valid JSON: expected a double-quoted key or '}', found 'name'"]);
    expect(await jsonProblems('{"name": "x"} // done')).toEqual(["inline.json:1:15: (top level): not valid JSON: expected the end of the document, found '/' (a comment; JSON has none)"]);
    expect(await jsonProblems("")).toEqual(["inline.json:1:1: (top level): not valid JSON: expected a JSON value, found the end of the text"]);
  });

  it("reports validation problems at their line and column in the JSON text", async () => {
    const json = JSON.stringify({ name: "x", iommus: [{ name: "s", driver: "arm-smmu-v3", fwnode: "/s" }], devices: [{ name: "a", bus: "platform", fwnode: "/a", iommus: [["t", 1]] }, { name: "b", bus: "pci" }] }, null, 2);
    expect(await jsonProblems(json)).toEqual([
      "inline.json:17:11: devices[0].iommus[0][0]: unknown IOMMU instance 't': expected one of s",
      "inline.json:23:7: devices[1].name: a PCI function is named SSSS:BB:DD.F (segment, bus, device, function); 'b' is not",
    ]);
  });

  it("deep nesting is refused by the schema at its first level, without recursing into it", async () => {
    const deep = (n: number) => `{"name": "x", "description": ${"[".repeat(n)}${"]".repeat(n)}}`;
    for (const n of [2000, 100_000]) expect(await jsonProblems(deep(n))).toEqual(["inline.json:1:15: description: expected a string, found a list of 1 item"]);
    expect(await jsonProblems(`[${deep(10)}]`)).toEqual(["inline.json:1:1: (top level): expected a mapping, found a list of 1 item"]);
  });

  it("a malformed cmdline value is exit 2 at boot.cmdline, not a failed boot", async () => {
    expect(await jsonProblems('{"name": "x", "boot": {"cmdline": "quiet iommu.strict=banana"}}')).toEqual([
      "inline.json:1:24: boot.cmdline: iommu.strict=banana: expected a boolean (1/0, y/n, on/off, true/false), found 'banana'",
    ]);
  });
});
