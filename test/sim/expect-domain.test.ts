import { describe, expect, it } from "vitest";
import { parseScenario } from "../../src/sim/scenario/load.ts";
import { run } from "../helpers.ts";

const MACHINE = (cmdline = "") => `
name: kinds
boot: {cmdline: "${cmdline}"}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /smmu0}
devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[smmu0, 1]]}
  - {name: b, bus: platform, fwnode: /b, iommus: [[smmu0, 2]]}
  - {name: plain, bus: platform, fwnode: /plain}
events:
  - domain_alloc: {name: u, device: b}
  - attach_group: {domain: u, device: b}
  - claim_dma_owner: {device: a, owner: vfio}
`;

const failures = (yaml: string) => run(yaml).failures.map((f) => f.message);

describe("expect names a group's or device's domain by kind", () => {
  it("blocked: a user-owned group sits on its blocking domain", () => {
    expect(failures(MACHINE() + "  - expect: {groups: [{devices: [a], domain: blocked}], devices: {a: {domain: blocked}}}\n")).toEqual([]);
  });

  it("a domain of another kind does not match, and the message says which it is", () => {
    const r = run(MACHINE() + "  - expect: {groups: [{devices: [a], domain: identity}, {devices: [b], domain: blocked}], devices: {plain: {domain: blocked}}}\n");
    const blk = r.snapshot.groups.find((g) => g.devices.includes("a"))!.domain;
    const u = r.snapshot.user_domains["u"]!.id;
    expect(r.failures.map((f) => f.message).sort()).toEqual(
      [
        `devices.plain.domain: expected a blocked domain, got none`,
        `groups[0] (group ${r.snapshot.groups.find((g) => g.devices.includes("a"))!.id}).domain: expected an identity domain, got domain ${blk} (blocked)`,
        `groups[1] (group ${r.snapshot.groups.find((g) => g.devices.includes("b"))!.id}).domain: expected a blocked domain, got domain ${u} (unmanaged)`,
      ].sort(),
    );
  });

  it("identity: groups of a passthrough boot, until a domain is attached", () => {
    const yaml = MACHINE("iommu.passthrough=1").replace("  - claim_dma_owner: {device: a, owner: vfio}\n", "");
    expect(failures(yaml + "  - expect: {groups: [{devices: [a], domain: identity, type: identity}], devices: {a: {domain: identity}, b: {domain: u}}}\n")).toEqual([]);
    expect(failures(yaml + "  - expect: {devices: {b: {domain: identity}}}\n")).toEqual([expect.stringMatching(/^devices\.b\.domain: expected an identity domain, got domain \d+ \(unmanaged\)$/)]);
  });

  it("names and ids still mean the domain_alloc domain and the model id", () => {
    const r = run(MACHINE() + "  - expect: {groups: [{devices: [b], domain: u}], devices: {b: {domain: u}}}\n");
    expect(r.failures).toEqual([]);
    const id = r.snapshot.user_domains["u"]!.id;
    expect(failures(MACHINE() + `  - expect: {devices: {b: {domain: ${id}}}}\n`)).toEqual([]);
  });

  it("the kinds are not domain_alloc names: using one as a name is refused at load", () => {
    expect(() => parseScenario(MACHINE() + "  - expect: {devices: {a: {domain: blocked}}}\n", "k.yaml")).not.toThrow();
    expect(() => parseScenario(MACHINE().replace("name: u,", "name: blocked,").replace("domain: u,", "domain: blocked,"), "k.yaml")).toThrow(
      /domain_alloc\.name: 'blocked' is reserved: expect reads blocked and identity as kinds of domain/,
    );
  });
});
