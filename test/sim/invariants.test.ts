import { describe, expect, it } from "vitest";
import { devIommu } from "../../src/iommu/dev-iommu.ts";
import { checkInvariants } from "../../src/sim/invariants.ts";
import type { Machine } from "../../src/sim/machine.ts";
import { run } from "../helpers.ts";

const BASE = `
name: base
iommus:
  - {name: s0, driver: arm-smmu-v3, fwnode: /s0}
  - {name: s1, driver: arm-smmu-v3, fwnode: /s1}
devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[s0, 1]]}
  - {name: b, bus: platform, fwnode: /b, iommus: [[s1, 1]]}
drivers:
  - {name: da, bus: platform, match: [a]}
`;

function broken(corrupt: (m: Machine) => void): string[] {
  const m = run(BASE).machine;
  expect(checkInvariants(m)).toEqual([]);
  corrupt(m);
  return checkInvariants(m).map((v) => v.rule);
}

const group = (m: Machine, d: string) => [...m.k.groups].find((g) => g.devices.some((x) => x.dev.name === d))!;

describe("invariant checkers flag the state they guard", () => {
  it("I3: a device pointing at an instance that is not registered", () => {
    expect(broken((m) => (m.instances.get("s1")!.iommu.listed = false))).toContain("I3 no-dangling-instance");
  });
  it("I4: a device in two groups", () => {
    expect(broken((m) => group(m, "b").devices.push(group(m, "a").devices[0]!))).toContain("I4 group-membership");
  });
  it("I9: a group mixing instances", () => {
    expect(broken((m) => group(m, "a").devices.push(group(m, "b").devices[0]!))).toContain("I9 group-ops");
  });
  it("I16: a member translating through a domain its group is not attached to", () => {
    expect(
      broken((m) => {
        devIommu(m.devices.get("a")!.dev)!.domain = group(m, "b").domain;
      }),
    ).toContain("I16 member-domain");
  });
  it("I17: a group attached to a domain finalised for another instance", () => {
    expect(
      broken((m) => {
        const g = group(m, "a");
        const other = group(m, "b").domain!;
        g.domain = other;
        devIommu(m.devices.get("a")!.dev)!.domain = other;
      }),
    ).toContain("I17 domain-compatible");
  });
  it("I24: owner_cnt that does not count the bound DMA-API drivers", () => {
    expect(broken((m) => (group(m, "a").ownerCnt = 0))).toContain("I24 owner-count");
  });
  it("I13: a default domain without a current one", () => {
    expect(broken((m) => (group(m, "b").domain = null))).toContain("I13 domain-set");
  });
  it("I33: a lock still held between steps", () => {
    expect(broken((m) => (m.k.probeLock.holder = m.dc.sched.current))).toContain("I33 lock-held");
  });
  it("I-default-domain: a group whose kernel DMA driver is bound but which has no default domain", () => {
    const m = run(BASE).machine;
    const g = group(m, "a");
    // Healthy: a is bound to da (a DMA-API driver), its group counts it and has a default domain.
    expect(g.ownerCnt).toBe(1);
    expect(g.defaultDomain).not.toBeNull();
    expect(checkInvariants(m).filter((v) => v.rule === "I-default-domain")).toEqual([]);
    g.defaultDomain = null;
    expect(checkInvariants(m).filter((v) => v.rule === "I-default-domain")).toEqual([
      { rule: "I-default-domain", message: `group ${g.id} has kernel DMA users but no default domain` },
    ]);
  });
  it("I-default-domain: not a rule for a group without a kernel DMA driver", () => {
    const m = run(BASE).machine;
    const g = group(m, "b");
    expect(g.ownerCnt).toBe(0);
    g.defaultDomain = null;
    expect(checkInvariants(m).map((v) => v.rule)).not.toContain("I-default-domain");
  });
  it("I-default-domain: an identity default domain counts as present (iommu.passthrough=1)", () => {
    const r = run(BASE.replace("name: base", 'name: base\nboot: {cmdline: "iommu.passthrough=1"}'));
    const g = group(r.machine, "a");
    expect(r.snapshot.groups.find((x) => x.id === g.id)).toMatchObject({ type: "identity", owner: "kernel", owner_cnt: 1 });
    expect(r.violations).toEqual([]);
    g.defaultDomain = null;
    expect(checkInvariants(r.machine).map((v) => v.rule)).toContain("I-default-domain");
  });
  it("I8: a dev_iommu left behind by a failed probe", () => {
    expect(
      broken((m) => {
        const p = devIommu(m.devices.get("b")!.dev)!;
        p.iommuDev = null;
        p.fwspec = null;
        group(m, "b").devices.length = 0;
        m.devices.get("b")!.dev.iommuGroup = null;
      }),
    ).toContain("I8 clean-failure");
  });
});
