import { describe, expect, it } from "vitest";
import { ScenarioError } from "../../src/sim/scenario/load.ts";
import { scenario } from "../helpers.ts";

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
  it("names the file, line, column and key path of an unknown key", () => {
    const p = problems(`name: x
devices:
  - name: a
    bus: platform
    colour: blue
`);
    expect(p).toEqual(["inline.yaml:5:5: devices[0].colour: unknown key 'colour'"]);
  });

  it("reports a wrong type", () => {
    expect(problems(`name: x\niommus:\n  - {name: s, driver: arm-smmu-v3, fwnode: /s, registered: "no"}\n`)[0]).toMatch(
      /^inline\.yaml:3:\d+: iommus\[0\]\.registered: .*boolean/,
    );
  });

  it("reports an unknown driver kind with the allowed ones", () => {
    expect(problems(`name: x\niommus:\n  - {name: s, driver: arm-smmu-v9, fwnode: /s}\n`)[0]).toMatch(/iommus\[0\]\.driver: .*arm-smmu-v3/);
  });

  it("reports unknown device, instance and driver names in events", () => {
    const p = problems(`name: x${SMMU}devices:
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
      "inline.yaml:9:5: events[0].iommu_register: unknown IOMMU instance 'smmu9'",
      "inline.yaml:10:5: events[1].device_del: unknown device 'b'",
      "inline.yaml:11:30: events[2].driver_bind.driver: unknown driver 'nope'",
      "inline.yaml:12:24: events[3].expect.devices.zz: unknown device 'zz'",
    ]);
  });

  it("reports unknown instance, driver and ops names used as expected values", () => {
    const p = problems(`name: x${SMMU}devices:
  - {name: a, bus: platform}
events:
  - expect: {devices: {a: {iommu: nobody, driver: nodrv, ops: arm-smmu-v9}}}
  - expect: {devices: {a: {iommu: null, driver: null, ops: null}}}
`);
    expect(p).toEqual([
      "inline.yaml:7:28: events[0].expect.devices.a.iommu: unknown IOMMU instance 'nobody'",
      "inline.yaml:7:43: events[0].expect.devices.a.driver: unknown driver 'nodrv'",
      expect.stringMatching(/^inline\.yaml:7:\d+: events\[0\]\.expect\.devices\.a\.ops: unknown iommu_ops 'arm-smmu-v9' \(one of arm-smmu-v3, /),
    ]);
  });

  it("reports duplicate names", () => {
    const p = problems(`name: x
devices:
  - {name: a, bus: platform}
  - {name: a, bus: amba}
`);
    expect(p).toEqual(["inline.yaml:4:6: devices[1].name: duplicate name 'a' (also devices[0])"]);
  });

  it("reports an iommus entry with the wrong number of cells", () => {
    const p = problems(`name: x${SMMU}devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[smmu0, 1, 2]]}
`);
    expect(p).toEqual(["inline.yaml:5:51: devices[0].iommus[0]: smmu0 has #iommu-cells = 1, but this entry has 2 cells"]);
  });

  it("reports a PCI device whose parent does not exist", () => {
    const p = problems(`name: x
devices:
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0"}
`);
    expect(p).toEqual(["inline.yaml:3:38: devices[0].parent: parent '0000:00:1c.0' does not exist"]);
  });

  it("reports a PCI function name that is not SSSS:BB:DD.F", () => {
    expect(problems(`name: x\ndevices:\n  - {name: "00:1f.3", bus: pci}\n`)[0]).toMatch(/devices\[0\]\.name: a PCI function is named SSSS:BB:DD\.F/);
  });

  it("reports a child on the wrong bus number below its bridge", () => {
    const p = problems(`name: x
devices:
  - {name: "0000:00:1c.0", bus: pci, type: root-port}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0"}
  - {name: "0000:02:00.0", bus: pci, parent: "0000:00:1c.0"}
`);
    expect(p[0]).toMatch(/devices\[2\]\.name: 0000:02:00\.0 is on bus 02, but 0000:00:1c\.0's other children are on bus 01/);
  });

  it("reports an event with two kernel entry points", () => {
    expect(problems(`name: x\nevents:\n  - {device_add: a, device_del: a}\n`)[0]).toMatch(/events\[0\]: an event has exactly one of/);
  });

  it("reports YAML syntax errors with their position", () => {
    expect(problems(`name: x\ndevices: [\n`)[0]).toMatch(/^inline\.yaml:\d+:\d+: \(top level\): not valid YAML\/JSON/);
  });

  it("reports a missing name", () => {
    expect(problems(`devices: []\n`)[0]).toMatch(/name: /);
  });
});
