import { describe, expect, it } from "vitest";
import { runScenario } from "../../src/sim/runner.ts";
import { checkInvariants, formatViolation } from "../../src/sim/invariants.ts";
import { takeSnapshot, type Snapshot } from "../../src/sim/snapshot.ts";
import { boot, run, scenario, state, step } from "../helpers.ts";

const MACHINE = (extra03 = "", extraBoot = "") => `
name: attach
${extraBoot}
iommus:
  - {name: dmar, driver: intel-iommu, scope: all, pasid-bits: 12}
devices:
  - {name: "0000:00:1c.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0", multifunction: true}
  - {name: "0000:01:00.1", bus: pci, parent: "0000:00:1c.0", multifunction: true}
  - {name: "0000:00:1d.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:02:00.0", bus: pci, parent: "0000:00:1d.0", pasid-bits: 8}
  - {name: "0000:00:1b.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:03:00.0", bus: pci, parent: "0000:00:1b.0", multifunction: true, acs: [SV, RR, CR, UF], pasid-bits: 10}
  - {name: "0000:03:00.1", bus: pci, parent: "0000:00:1b.0", multifunction: true, acs: [SV, RR, CR, UF], pasid-bits: 10, dma-alias: ["00.0"]${extra03}}
  - {name: "0000:00:1e.0", bus: pci, type: root-port}
  - {name: "0000:04:00.0", bus: pci, parent: "0000:00:1e.0", pasid-bits: 8}
drivers:
  - {name: vfio-pci, bus: pci, match: "*", driver_managed_dma: true, registered: false}
  - {name: ice, bus: pci, match: ["0000:03:00.0", "0000:03:00.1"], registered: false}
events:
  - domain_alloc: {name: u1, device: "0000:01:00.0"}
  - domain_alloc: {name: u2, device: "0000:02:00.0"}
  - domain_alloc: {name: p1, device: "0000:03:00.0"}
  - domain_alloc: {name: p2, device: "0000:03:00.0"}
`;

/** Runs the machine's events, then `extra`, returning the state before and after `extra` and its result. */
function attempt(extra: string, machine = MACHINE()) {
  const s = scenario(machine + `  - ${extra}\n`);
  const m = boot(s);
  for (const e of s.events.slice(0, -1)) step(m, e);
  const before = state(takeSnapshot(m, [], []));
  const r = step(m, s.events.at(-1)!);
  return { r: r === 0 ? "ok" : r.errno, before, after: state(takeSnapshot(m, [], [])), m };
}

describe("attach and detach", () => {
  it("iommu_attach_group switches every member; detach returns the group to its default domain", () => {
    const r = run(MACHINE() + `
  - attach_group: {domain: u1, device: "0000:01:00.1"}
  - expect:
      devices: {"0000:01:00.0": {domain: u1}, "0000:01:00.1": {domain: u1}}
      groups: [{devices: ["0000:01:00.0", "0000:01:00.1"], domain: u1}]
      violations: []
  - detach: {device: "0000:01:00.0"}
  - expect:
      devices: {"0000:01:00.0": {domain: 2}, "0000:01:00.1": {domain: 2}}
      groups: [{devices: ["0000:01:00.0", "0000:01:00.1"], domain: 2, type: DMA-FQ}]
      violations: []
`);
    expect(r.failures).toEqual([]);
  });

  it("rolls back every member when one fails to attach: the group stays on its previous domain", () => {
    const s = MACHINE().replace('{name: "0000:01:00.1", bus: pci, parent: "0000:00:1c.0", multifunction: true}', '{name: "0000:01:00.1", bus: pci, parent: "0000:00:1c.0", multifunction: true, fail_attach: ENOMEM}');
    const { r, before, after } = attempt('attach_group: {domain: u1, device: "0000:01:00.0"}', s);
    expect(r).toBe("ENOMEM");
    expect(after).toEqual(before);
  });

  const bad: [string, string, string][] = [
    ["attach_device to a non-singleton group", 'attach_device: {domain: u1, device: "0000:01:00.0"}', "EINVAL"],
    ["an unknown domain id", 'attach_group: {domain: 424242, device: "0000:02:00.0"}', "ENOENT"],
    ["freeing an unattached domain", "domain_free: u2", "ok"],
    ["a PASID beyond max_pasids", 'attach_pasid: {domain: u2, device: "0000:02:00.0", pasid: 256}', "EINVAL"],
    ["PASID 0 (the RID itself)", 'attach_pasid: {domain: u2, device: "0000:02:00.0", pasid: 0}', "EINVAL"],
    ["PASID on a function whose path lacks ACS RR/UF", 'attach_pasid: {domain: u2, device: "0000:04:00.0", pasid: 5}', "EINVAL"],
    ["detaching a domain that is not attached", 'detach: {domain: u2, device: "0000:02:00.0"}', "EINVAL"],
    ["releasing ownership nobody holds", 'release_dma_owner: {device: "0000:02:00.0"}', "EINVAL"],
  ];
  for (const [what, ev, errno] of bad) {
    it(`${what}: ${errno}${errno === "ok" ? "" : ", state unchanged"}`, () => {
      const { r, before, after } = attempt(ev);
      expect(r).toBe(errno);
      if (errno !== "ok") expect(after).toEqual(before);
    });
  }

  it("the PASID just below max_pasids attaches: 02:00.0 has 8 PASID bits (max_pasids 256), so 255 is the last", () => {
    const { r, before, after } = attempt('attach_pasid: {domain: u2, device: "0000:02:00.0", pasid: 255}');
    expect(r).toBe("ok");
    // Only the group's pasid_array changes.
    const at = before.groups.findIndex((x) => x.devices.includes("0000:02:00.0"));
    expect(before.groups[at]!.pasids).toEqual([]);
    expect(after).toEqual({ ...before, groups: before.groups.map((g, i) => (i === at ? { ...g, pasids: [255] } : g)) });
  });

  // domain-actions.ts findDomain: a name whose domain was freed names no live domain (ENOENT),
  // refused before any kernel entry point runs.
  const FREED = MACHINE() + "  - domain_free: u2\n";
  for (const ev of ['attach_group: {domain: u2, device: "0000:02:00.0"}', 'attach_device: {domain: u2, device: "0000:02:00.0"}']) {
    it(`a freed domain: ${ev.split(":")[0]} fails with ENOENT, state unchanged`, () => {
      const { r, before, after } = attempt(ev, FREED);
      // The setup really freed it: no domain named u2 is left, and 02:00.0 sits on its default domain.
      expect(before.domains.filter((d) => d.name === "u2")).toEqual([]);
      const g = before.groups.find((x) => x.devices.includes("0000:02:00.0"))!;
      expect(g.domain).toBe(g.default_domain);
      expect(r).toBe("ENOENT");
      expect(after).toEqual(before);
    });
  }

  it("a domain finalised for another instance cannot attach (EINVAL), state unchanged", () => {
    const two = `
name: two smmus
iommus:
  - {name: s0, driver: arm-smmu-v3, fwnode: /s0}
  - {name: s1, driver: arm-smmu-v3, fwnode: /s1}
devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[s0, 1]]}
  - {name: b, bus: platform, fwnode: /b, iommus: [[s1, 1]]}
events:
  - domain_alloc: {name: da, device: a}
`;
    const { r, before, after } = attempt("attach_device: {domain: da, device: b}", two);
    expect(r).toBe("EINVAL");
    expect(after).toEqual(before);
  });
});

describe("PASID", () => {
  it("applies a PASID attachment to every PASID-capable member of the group", () => {
    const r = run(MACHINE() + `
  - attach_pasid: {domain: p1, device: "0000:03:00.0", pasid: 7}
  - attach_pasid: {domain: p2, device: "0000:03:00.1", pasid: 7}
    expect_error: EBUSY
  - expect: {groups: [{devices: ["0000:03:00.0", "0000:03:00.1"], pasids: [7]}], violations: []}
  - replace_pasid: {domain: p2, device: "0000:03:00.1", pasid: 7}
  - detach_pasid: {domain: p2, device: "0000:03:00.0", pasid: 7}
  - expect: {groups: [{devices: ["0000:03:00.0", "0000:03:00.1"], pasids: []}]}
`);
    expect(r.failures).toEqual([]);
    const t = r.machine.ctx.trace.records.filter((x) => x.kind === "call" && x.fn.includes("pasid")).map((x) => `${x.fn}=${x.result}`);
    expect(t).toEqual([
      "iommu_attach_device_pasid=0",
      "iommu_attach_device_pasid=EBUSY",
      "iommu_replace_device_pasid=0",
      "iommu_detach_device_pasid=0",
    ]);
  });

  it("rolls the other members back through the blocked domain when one fails", () => {
    const { r, before, after } = attempt('attach_pasid: {domain: p1, device: "0000:03:00.0", pasid: 9}', MACHINE(", fail_attach: ENOMEM"));
    expect(r).toBe("ENOMEM");
    expect(after).toEqual(before);
  });

  it("while PASIDs are attached no second DMA-API user joins the group and ownership cannot change", () => {
    const r = runScenario(
      scenario(
        MACHINE() +
          `
  - attach_pasid: {domain: p1, device: "0000:03:00.0", pasid: 3}
  - claim_dma_owner: {device: "0000:03:00.0", owner: vfio}
    expect_error: EBUSY
  - driver_register: ice
  - expect:
      devices: {"0000:03:00.0": {probe: bound}, "0000:03:00.1": {probe: failed, probe_error: EBUSY}}
      groups: [{devices: ["0000:03:00.0", "0000:03:00.1"], owner: kernel, owner_cnt: 1, pasids: [3]}]
`,
      ),
    );
    expect(r.failures).toEqual([]);
  });

  it("a PASID-capable group gets a PASID-compatible default domain from a driver that distinguishes (AMD v2)", () => {
    const r = run(`
name: amd
iommus:
  - {name: ivhd, driver: amd-iommu, scope: all}
devices:
  - {name: "0000:00:01.0", bus: pci, pasid-bits: 16}
  - {name: "0000:00:02.0", bus: pci}
`);
    const fmt = (d: string) => r.snapshot.domains.find((x) => x.id === r.snapshot.devices.find((y) => y.name === d)!.domain)!.format;
    expect(fmt("0000:00:01.0")).toBe("amd-v2");
    expect(fmt("0000:00:02.0")).toBe("amd-v1");
  });
});

/**
 * Runs the machine's events, then `extra` one at a time: each step's result and
 * the snapshot after it (state without the event log), with the warnings it added.
 */
function steps(extra: string[], machine = MACHINE()) {
  const s = scenario(machine + extra.map((e) => `  - ${e}\n`).join(""));
  const m = boot(s);
  const base = s.events.length - extra.length;
  for (const e of s.events.slice(0, base)) step(m, e);
  let warned = takeSnapshot(m, [], []).warnings.length;
  const out = s.events.slice(base).map((e) => {
    const r = step(m, e);
    const snap = takeSnapshot(m, [], checkInvariants(m).map(formatViolation));
    const added = snap.warnings.slice(warned);
    warned = snap.warnings.length;
    return { r: r === 0 ? "ok" : r.errno, snap, warnings: added };
  });
  return { m, out };
}

const GROUP03 = ["0000:03:00.0", "0000:03:00.1"];
const group03 = (snap: Snapshot) => snap.groups.find((g) => g.devices.includes("0000:03:00.0"))!;

/**
 * The release side of the PASID/ownership coupling (iommu.c): __iommu_release_dma_ownership
 * and iommu_device_unuse_default_domain WARN and change nothing while pasid_array is not
 * empty; iommu_device_release_dma_owner only reaches that check for the last claim — with
 * owner_cnt > 1 it just decrements, PASIDs or not.
 */
describe("PASID attachments and releasing ownership", () => {
  it("device API: a non-last release just decrements; the last one WARNs and leaves owner, owner_cnt, domain and PASIDs as they were", () => {
    const { out } = steps([
      'claim_dma_owner: {device: "0000:03:00.0", owner: vfio}',
      'claim_dma_owner: {device: "0000:03:00.1", owner: vfio}',
      'attach_pasid: {domain: p1, device: "0000:03:00.0", pasid: 3}',
      'release_dma_owner: {device: "0000:03:00.1"}',
      'release_dma_owner: {device: "0000:03:00.0"}',
      'detach_pasid: {domain: p1, device: "0000:03:00.0", pasid: 3}',
      'release_dma_owner: {device: "0000:03:00.0"}',
    ]);
    const [, claimed, attached, firstRelease, lastRelease, detached, released] = out;
    expect(out.map((x) => x.r)).toEqual(["ok", "ok", "ok", "ok", "ok", "ok", "ok"]);
    expect(group03(claimed!.snap)).toMatchObject({ devices: GROUP03, owner: "user", owner_cnt: 2, pasids: [] });
    const blocking = group03(claimed!.snap).domain;
    expect(blocking).not.toBe(group03(claimed!.snap).default_domain);
    expect(group03(attached!.snap)).toMatchObject({ owner: "user", owner_cnt: 2, pasids: [3], domain: blocking });

    // owner_cnt 2 -> 1 without looking at the PASIDs, and without a warning.
    expect(group03(firstRelease!.snap)).toMatchObject({ owner: "user", owner_cnt: 1, pasids: [3], domain: blocking });
    expect(firstRelease!.warnings).toEqual([]);

    // The last claim: WARN, and nothing changes.
    expect(lastRelease!.warnings).toEqual([`__iommu_release_dma_ownership: group ${group03(lastRelease!.snap).id}: releasing ownership that is not held, or with PASIDs attached`]);
    expect(state(lastRelease!.snap)).toEqual({ ...state(firstRelease!.snap), warnings: lastRelease!.snap.warnings });
    expect(lastRelease!.snap.violations).toEqual([]);

    // Once the PASID is detached the same release goes through: back on the default domain.
    expect(group03(detached!.snap)).toMatchObject({ owner: "user", owner_cnt: 1, pasids: [] });
    expect(group03(released!.snap)).toMatchObject({ owner: "none", owner_cnt: 0, pasids: [] });
    expect(group03(released!.snap).domain).toBe(group03(released!.snap).default_domain);
    expect(released!.warnings).toEqual([]);
    expect(released!.snap.violations).toEqual([]);
  });

  it("group API: iommu_group_release_dma_owner WARNs while a PASID is attached, state unchanged", () => {
    const { out } = steps([
      'claim_dma_owner: {device: "0000:03:00.1", owner: vfio, group: true}',
      'attach_pasid: {domain: p2, device: "0000:03:00.1", pasid: 9}',
      'release_dma_owner: {device: "0000:03:00.0", group: true}',
    ]);
    const [, attached, release] = out;
    expect(out.map((x) => x.r)).toEqual(["ok", "ok", "ok"]);
    expect(group03(attached!.snap)).toMatchObject({ owner: "user", owner_cnt: 1, pasids: [9] });
    expect(release!.warnings).toHaveLength(1);
    expect(release!.warnings[0]).toMatch(/^__iommu_release_dma_ownership: /);
    expect(state(release!.snap)).toEqual({ ...state(attached!.snap), warnings: release!.snap.warnings });
  });

  it("unbinding a DMA-API driver while a PASID is attached WARNs and does not decrement owner_cnt", () => {
    const { out } = steps([
      "driver_register: ice",
      'attach_pasid: {domain: p1, device: "0000:03:00.0", pasid: 4}',
      'driver_unbind: "0000:03:00.1"',
      'detach_pasid: {domain: p1, device: "0000:03:00.0", pasid: 4}',
      'driver_unbind: "0000:03:00.0"',
    ]);
    const [bound, attached, unbound, detached, unbound2] = out;
    expect(out.map((x) => x.r)).toEqual(["ok", "ok", "ok", "ok", "ok"]);
    expect(group03(bound!.snap)).toMatchObject({ owner: "kernel", owner_cnt: 2, pasids: [] });
    expect(group03(attached!.snap)).toMatchObject({ owner: "kernel", owner_cnt: 2, pasids: [4] });
    // The driver is gone, the count is not: iommu_device_unuse_default_domain WARNed instead.
    expect(unbound!.snap.devices.find((d) => d.name === "0000:03:00.1")).toMatchObject({ driver: null, probe: "none" });
    expect(group03(unbound!.snap)).toMatchObject({ owner: "kernel", owner_cnt: 2, pasids: [4] });
    expect(unbound!.warnings).toEqual(["iommu_device_unuse_default_domain: 0000:03:00.1: owner_cnt=2, 1 PASIDs attached; not decremented"]);
    // A state the kernel reaches with that WARN: the owner-count invariant gives way to it.
    expect(unbound!.snap.violations).toEqual([]);
    // Without PASIDs the next unbind decrements again, but the leaked claim stays.
    expect(group03(detached!.snap)).toMatchObject({ owner_cnt: 2, pasids: [] });
    expect(unbound2!.warnings).toEqual([]);
    expect(group03(unbound2!.snap)).toMatchObject({ owner: "kernel", owner_cnt: 1 });
    expect(unbound2!.snap.violations).toEqual([]);
  });
});

describe("group-level allocation uses the group's first device", () => {
  const amd = (first: string, second: string) =>
    run(`
name: amd group
iommus:
  - {name: ivhd, driver: amd-iommu, scope: all}
devices:
  - {name: "0000:00:1c.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - ${first}
  - ${second}
`);
  const PASID = '{name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0", multifunction: true, pasid-bits: 16}';
  const PLAIN = '{name: "0000:01:00.1", bus: pci, parent: "0000:00:1c.0", multifunction: true}';
  const fmt = (r: ReturnType<typeof run>) => {
    const g = r.snapshot.groups.find((x) => x.devices.length === 2)!;
    return r.snapshot.domains.find((d) => d.id === g.default_domain)!.format;
  };
  it("a PASID-capable first device gets the group a PASID-capable (v2) default domain", () => {
    expect(fmt(amd(PASID, PLAIN))).toBe("amd-v2");
  });
  it("the same devices in the other order get v1: only the first device is asked", () => {
    expect(fmt(amd(PLAIN, PASID))).toBe("amd-v1");
  });
});
