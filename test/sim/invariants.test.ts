import { describe, expect, it } from "vitest";
import { FwnodeHandle } from "../../src/base/fwnode.ts";
import { devIommu, IommuFwspec } from "../../src/iommu/dev-iommu.ts";
import { checkInvariants, formatViolation } from "../../src/sim/invariants.ts";
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

/** BASE with a third device behind an instance of another driver. */
const MIXED = BASE.replace(
  "  - {name: s1, driver: arm-smmu-v3, fwnode: /s1}\n",
  "  - {name: s1, driver: arm-smmu-v3, fwnode: /s1}\n  - {name: s2, driver: arm-smmu, fwnode: /s2}\n",
).replace("drivers:\n", "  - {name: c, bus: platform, fwnode: /c, iommus: [[s2, 1]]}\ndrivers:\n");

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
  it("I4: a probed device its group does not list, a member listed twice, an unprobed device naming a group", () => {
    const messages = (corrupt: (m: Machine) => void) => {
      const m = run(BASE).machine;
      corrupt(m);
      const whole = checkInvariants(m).map(formatViolation);
      // The same break seen from a step that touched the device and its group.
      const a = m.devices.get("a")!.dev;
      const scoped = checkInvariants(m, { devices: [a], groups: [...m.k.groups], locks: [] }).map(formatViolation);
      return { whole, scoped };
    };
    const dropped = messages((m) => group(m, "a").devices.splice(0, 1));
    expect(dropped.whole.filter((v) => v.startsWith("I4"))).toEqual([
      expect.stringMatching(/^I4 group-membership: a is probed against s0 and its iommu_group is group \d+ \[none\], which does not list it/),
    ]);
    expect(dropped.scoped.filter((v) => v.startsWith("I4"))).toEqual(dropped.whole.filter((v) => v.startsWith("I4")));
    const twice = messages((m) => group(m, "a").devices.push(group(m, "a").devices[0]!));
    expect(twice.whole).toContainEqual(expect.stringMatching(/^I4 group-membership: group \d+ \[a, a\] lists a device more than once/));
    const unprobed = messages((m) => (devIommu(m.devices.get("a")!.dev)!.iommuDev = null));
    expect(unprobed.whole).toContainEqual(expect.stringMatching(/^I4 group-membership: a has no IOMMU but its iommu_group is group \d+ \[a\]/));
  });
  it("I9: a group mixing drivers' ops (members behind two instances of one driver are allowed)", () => {
    const m = run(MIXED).machine;
    expect(checkInvariants(m)).toEqual([]);
    // a (s0) and b (s1) are both arm-smmu-v3: one group may hold both (pci_device_group does not ask).
    group(m, "a").devices.push(group(m, "b").devices[0]!);
    expect(checkInvariants(m).map((v) => v.rule)).not.toContain("I9 group-ops");
    // c is behind arm-smmu: a group of arm-smmu-v3 and arm-smmu members would be driven with one driver's ops.
    group(m, "a").devices.push(group(m, "c").devices[0]!);
    const i9 = checkInvariants(m).filter((v) => v.rule === "I9 group-ops");
    expect(i9.map((v) => v.message)).toEqual([expect.stringMatching(/^group \d+ \[a, b, c\] mixes arm-smmu-v3 \(a\) and arm-smmu \(c\)/)]);
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
      {
        rule: "I-default-domain",
        message: `group ${g.id} [a] has 1 kernel DMA user(s) but no default domain (iommu_device_use_default_domain returns EPROBE_DEFER without one)`,
      },
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

describe("rules give way where the kernel warns or allows", () => {
  it("I24 and I23 stand aside for a group whose owner_cnt a WARN left out of step, and only for it", () => {
    const m = run(BASE).machine;
    const g = group(m, "a");
    g.ownerCnt = 0;
    expect(checkInvariants(m).map((v) => v.rule)).toEqual(["I24 owner-count"]);
    g.ownerCntStale = true;
    expect(checkInvariants(m)).toEqual([]);
    // A user owner next to the bound DMA-API driver: I23, unless a WARN broke the count.
    g.owner = { name: "iommufd" };
    g.ownerCnt = 1;
    expect(checkInvariants(m)).toEqual([]);
    g.ownerCntStale = false;
    expect(checkInvariants(m).map((v) => v.rule)).toEqual(["I23 user-vs-kernel"]);
    expect(checkInvariants(m)[0]!.message).toMatch(/^group \d+ \[a\] is owned by user space while a is bound to a DMA-API driver/);
  });

  it("I24 does not count a driver bound on a bus without dma_configure (the iommufd mock bus)", () => {
    const r = run(`
name: mock driver
iommus:
  - {name: mock0, driver: mock}
devices:
  - {name: md, bus: iommufd_mock}
drivers:
  - {name: mdrv, bus: iommufd_mock, match: [md]}
`);
    expect(r.snapshot.devices.find((d) => d.name === "md")).toMatchObject({ driver: "mdrv", probe: "bound" });
    expect(r.snapshot.groups[0]).toMatchObject({ devices: ["md"], owner: "none", owner_cnt: 0 });
    expect(r.violations).toEqual([]);
    // Counting it is what would be wrong.
    group(r.machine, "md").ownerCnt = 1;
    expect(checkInvariants(r.machine).map((v) => v.message)).toEqual([expect.stringContaining("has owner_cnt 1, but 0 device(s) are bound to a DMA-API driver (none)")]);
  });

  it("I11 leaves an empty group's owner_cnt to the WARN of __iommu_group_free_device, but not its domains", () => {
    const m = run(BASE).machine;
    const g = group(m, "b");
    const dom = g.domain;
    g.devices.length = 0;
    g.refcount = 1;
    g.defaultDomain = null;
    g.domain = null;
    m.devices.get("b")!.dev.iommu = null;
    m.devices.get("b")!.dev.iommuGroup = null;
    expect(checkInvariants(m)).toEqual([]);
    g.ownerCnt = 1;
    expect(checkInvariants(m).map((v) => v.rule)).toEqual(["I11 empty-group"]);
    g.ownerCntStale = true;
    expect(checkInvariants(m)).toEqual([]);
    g.domain = dom;
    expect(checkInvariants(m).map((v) => v.rule)).toEqual(["I11 empty-group"]);
  });

  it("I16 and I17 stand aside after a switch the core cannot fail failed for a member (and its WARN)", () => {
    // A root port behind smmu0 and its endpoint behind smmu1 share a group; while user-owned the group is
    // on the static blocking domain; the release switches it to the default domain, finalised for smmu0,
    // which smmu1's endpoint refuses: __iommu_group_set_domain_nofail WARNs and the endpoint stays blocked.
    const r = run(`
name: split group
iommus:
  - {name: s0, driver: arm-smmu-v3, fwnode: /s0}
  - {name: s1, driver: arm-smmu-v3, fwnode: /s1, registered: false}
devices:
  - name: pcie
    bus: platform
    fwnode: /pcie
    pci-host: {segment: 0, iommu-map: [[0x0, s0, 0x10000, 0x100], [0x100, s1, 0x10100, 0x100]]}
  - {name: "0000:00:00.0", bus: pci, parent: pcie, type: root-port}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:00.0", type: endpoint}
events:
  - claim_dma_owner: {device: "0000:00:00.0", owner: vfio}
  - iommu_register: s1
  - release_dma_owner: {device: "0000:00:00.0"}
  - expect:
      groups: [{devices: ["0000:00:00.0", "0000:01:00.0"], owner: none}]
      devices: {"0000:00:00.0": {iommu: s0}, "0000:01:00.0": {iommu: s1, domain: blocked}}
      warnings: ["__iommu_group_set_domain_nofail"]
      violations: []
`);
    expect(r.failures).toEqual([]);
    const g = group(r.machine, "0000:01:00.0");
    expect(g.domainWarned).toBe(true);
    g.domainWarned = false;
    expect(checkInvariants(r.machine).map((v) => v.rule)).toEqual(["I16 member-domain"]);
  });

  it("I6: a fwspec whose fwnode no listed instance has is no mismatch; one resolving to other ops is", () => {
    const m = run(MIXED).machine;
    const a = devIommu(m.devices.get("a")!.dev)!;
    const s2 = m.instances.get("s2")!.iommu;
    a.fwspec = new IommuFwspec(new FwnodeHandle("/gone", "of"));
    expect(checkInvariants(m)).toEqual([]);
    a.fwspec = new IommuFwspec(s2.fwnode);
    expect(checkInvariants(m).map((v) => v.message)).toEqual(["a's fwspec (/s2) resolves to arm-smmu, but it was probed with s0's arm-smmu-v3 (probe takes the ops from the fwspec)"]);
  });

  it("I-fwspec-deferred names a NULL fwnode as such (it printed 'undefined')", () => {
    // The v6.8-v6.17 mock wiring (no fwnode) with iommu_mock_device_add: the fwspec names the NULL fwnode,
    // which VT-d answered when it was added; VT-d then goes away. On the mock bus that is the kernel's state.
    const r = run(`
name: null fwnode
iommus:
  - {name: dmar0, driver: intel-iommu, scope: all}
  - {name: mock0, driver: mock, fwnode: null}
devices:
  - {name: m1, bus: iommufd_mock, added: false}
events:
  - iommu_unregister: mock0
  - device_add: m1
  - iommu_unregister: dmar0
  - expect: {devices: {m1: {dev_iommu: fw_only, fwspec: {iommu: null}}}, violations: []}
`);
    expect(r.failures).toEqual([]);
    // The same fwspec on a platform device, which the IOMMU core's notifier and release keep in step: a violation.
    const dev = r.machine.devices.get("m1")!.dev;
    Object.defineProperty(dev, "bus", { value: r.machine.buses.platform });
    const v = checkInvariants(r.machine);
    expect(v.map((x) => formatViolation(x))).toEqual([
      "I-fwspec-deferred: m1's fwspec names a NULL fwnode, which no registered instance has, and m1 is not on the deferred-probe list",
    ]);
  });

  it("every message names its objects: no 'undefined' or 'null' in place of a name", () => {
    const corruptions: ((m: Machine) => void)[] = [
      (m) => (m.instances.get("s1")!.iommu.listed = false),
      (m) => group(m, "b").devices.push(group(m, "a").devices[0]!),
      (m) => group(m, "a").devices.push(group(m, "c").devices[0]!),
      (m) => (devIommu(m.devices.get("a")!.dev)!.domain = group(m, "b").domain),
      (m) => (group(m, "a").ownerCnt = 0),
      (m) => (group(m, "b").domain = null),
      (m) => (group(m, "a").defaultDomain = null),
      (m) => (group(m, "b").refcount = 0),
      (m) => (group(m, "b").owner = { name: "x" }),
      (m) => (m.k.probeLock.holder = m.dc.sched.current),
    ];
    const seen = new Set<string>();
    for (const c of corruptions) {
      const m = run(MIXED).machine;
      c(m);
      const v = checkInvariants(m);
      expect(v.length).toBeGreaterThan(0);
      for (const x of v) {
        seen.add(x.rule);
        expect(x.message).not.toMatch(/undefined|\bnull\b|\[object/);
      }
    }
    expect(seen.size).toBeGreaterThanOrEqual(10);
  });
});
