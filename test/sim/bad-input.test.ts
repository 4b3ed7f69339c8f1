import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { ScenarioError } from "../../src/sim/scenario/load.ts";
import { scenario } from "../helpers.ts";

const tmp = mkdtempSync(join(tmpdir(), "iommu-sim-bad-input-"));
let files = 0;

/**
 * The same scenario through the command line, as a file: every command exits 2 with nothing on
 * stdout and no stack trace, each message line starting with the file's path. Returns the lines
 * with the path put back to "inline.yaml", to compare with what the loader reported.
 */
async function cliProblems(yaml: string): Promise<string[]> {
  const path = join(tmp, `bad-${files++}.yaml`);
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
  return errs[0]!.split("\n").map((l) => "inline.yaml" + l.slice(path.length));
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
