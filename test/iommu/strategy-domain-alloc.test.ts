/**
 * The domain-allocation design axis (DESIGN.md) on the shipped two-instance
 * machine: through the device's ops (iommu_paging_domain_alloc, v6.11+) the
 * domain is finalised for the instance serving the device; through the bus
 * with a NULL device (iommu_domain_alloc(bus), up to v6.12) the driver cannot
 * know the instance: the domain stays unfinalised (no page table, the ops'
 * page sizes) until its first attach finalises it for whichever SMMU that
 * device is behind, the right one or not.
 */
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import type { Machine } from "../../src/sim/machine.ts";
import { runScenario } from "../../src/sim/runner.ts";
import { loadScenarioFile } from "../../src/sim/scenario/load.ts";
import type { EventSpec, Scenario } from "../../src/sim/scenario/schema.ts";
import { takeSnapshot, type Snapshot } from "../../src/sim/snapshot.ts";
import { boot, dev, outcome, state, step } from "../helpers.ts";

const FILE = new URL("../../scenarios/two-instance-domain-alloc.yaml", import.meta.url).pathname;

type DomainAllocName = "device-ops" | "bus-null-device";

/** The shipped scenario with boot.strategy.domain_alloc set, as the CLI's --strategy domain_alloc=... does. */
function withDomainAlloc(s: Scenario, name: DomainAllocName): Scenario {
  return { ...s, boot: { ...s.boot, strategy: { ...s.boot?.strategy, domain_alloc: name } } };
}

/** The file's domain_alloc event that names `name`. */
function allocEvent(s: Scenario, name: string): EventSpec {
  const e = s.events.find((x) => x.domain_alloc?.name === name);
  if (e === undefined) throw new Error(`the scenario has no domain_alloc event named ${name}`);
  return e;
}

/** Boots the shipped machine under `strategy` and runs its two domain_alloc events (for-dsp on dsp behind smmu0, for-gpu on gpu behind smmu1). */
function allocBoth(strategy: DomainAllocName): Machine {
  const s = withDomainAlloc(loadScenarioFile(FILE), strategy);
  const m = boot(s);
  for (const name of ["for-dsp", "for-gpu"]) expect(step(m, allocEvent(s, name))).toBe(0);
  return m;
}

/** Attaches `domain` to `device`: the state before and after, and the result. */
function attach(m: Machine, domain: string, device: string) {
  const before = takeSnapshot(m, [], []);
  const r = step(m, { attach_device: { domain, device } });
  return { before, after: takeSnapshot(m, [], []), result: outcome(r), message: r === 0 ? "" : r.message };
}

/** Both instances' sizes: arm_smmu_ops.pgsize_bitmap, ORed over every SMMU probed. */
const UNION = ["4K", "64K", "2M", "512M", "1G"];

const userDomain = (snap: Snapshot, name: string) => {
  const d = snap.user_domains[name];
  if (d === undefined) throw new Error(`no domain ${name} in the snapshot`);
  return d;
};

describe("domain allocation strategy on the two-instance machine", () => {
  it("device-ops: the domain allocated for gpu is finalised for smmu1 (its page sizes) and attaches to gpu", () => {
    const m = allocBoth("device-ops");
    expect(m.k.strategy.domainAllocation.name).toBe("device-ops");
    const { before, after, result } = attach(m, "for-gpu", "gpu");
    expect(userDomain(before, "for-dsp")).toMatchObject({ type: "unmanaged", iommu: "smmu0", page_sizes: ["4K", "2M", "1G"], live: true });
    expect(userDomain(before, "for-gpu")).toMatchObject({ type: "unmanaged", iommu: "smmu1", page_sizes: ["64K", "512M"], live: true });
    expect(result).toBe("ok");
    const forGpu = userDomain(after, "for-gpu").id;
    expect(dev(after, "gpu").domain).toBe(forGpu);
    expect(after.groups.find((g) => g.devices.includes("gpu"))).toMatchObject({ devices: ["gpu"], domain: forGpu });
    // gpu's group left its default domain; npu, behind the same SMMU, was not touched.
    expect(dev(after, "gpu").domain).not.toBe(dev(before, "gpu").domain);
    expect(dev(after, "npu").domain).toBe(dev(before, "npu").domain);
  });

  it("device-ops: the domain for dsp cannot attach to gpu (EINVAL), state unchanged", () => {
    const m = allocBoth("device-ops");
    const { before, after, result, message } = attach(m, "for-dsp", "gpu");
    expect(result).toBe("EINVAL");
    expect(message).toMatch(/smmu0.*gpu.*smmu1/);
    expect(state(after)).toEqual(state(before));
  });

  it("bus-null-device: both domains come back finalised for no SMMU, with the page sizes of the ops (both SMMUs together) and no page table", () => {
    const m = allocBoth("bus-null-device");
    expect(m.k.strategy.domainAllocation.name).toBe("bus-null-device");
    const snap = takeSnapshot(m, [], []);
    for (const name of ["for-dsp", "for-gpu"]) {
      expect(userDomain(snap, name)).toMatchObject({ type: "unmanaged", iommu: null, page_sizes: UNION, format: null, pgtable_pages: 0, mapped_bytes: 0 });
    }
  });

  it("bus-null-device: iommu_map before any attach fails with ENODEV (arm_smmu_map_pages has no io-pgtable ops), state unchanged", () => {
    const m = allocBoth("bus-null-device");
    const before = takeSnapshot(m, [], []);
    const r = step(m, { map: { domain: "for-dsp", iova: 0x100000, paddr: 0x80000000, size: 0x1000, prot: "rw" } });
    expect(outcome(r)).toBe("ENODEV");
    expect(r !== 0 && r.message).toMatch(/not finalised/);
    expect(state(takeSnapshot(m, [], []))).toEqual(state(before));
  });

  it("bus-null-device: the domain meant for dsp, attached first to gpu, is finalised for smmu1 (the wrong instance); attaching it to dsp then fails with EINVAL", () => {
    const m = allocBoth("bus-null-device");
    // Nothing stops the mistake: the first attach finalises the domain for the attaching device's SMMU.
    const first = attach(m, "for-dsp", "gpu");
    expect(first.result).toBe("ok");
    expect(userDomain(first.after, "for-dsp")).toMatchObject({ iommu: "smmu1", page_sizes: ["64K", "512M"], format: "ARM_64_LPAE_S1" });
    expect(dev(first.after, "gpu").domain).toBe(userDomain(first.after, "for-dsp").id);
    // Now it can never serve dsp, the device it was meant for.
    expect(outcome(step(m, { detach: { domain: "for-dsp", device: "gpu" } }))).toBe("ok");
    const second = attach(m, "for-dsp", "dsp");
    expect(second.result).toBe("EINVAL");
    expect(second.message).toMatch(/smmu1.*dsp.*smmu0/);
    expect(state(second.after)).toEqual(state(second.before));
    // for-gpu, attached to gpu first, ends where device-ops would have put it.
    const third = attach(m, "for-gpu", "gpu");
    expect(third.result).toBe("ok");
    expect(userDomain(third.after, "for-gpu")).toMatchObject({ iommu: "smmu1", page_sizes: ["64K", "512M"] });
  });

  it("bus-null-device: a failed first attach leaves the domain unfinalised", () => {
    const m = allocBoth("bus-null-device");
    // An injected attach fault refuses the attach before the driver finalises anything.
    m.quirks.failAttach.set("gpu", "EIO");
    const r = attach(m, "for-dsp", "gpu");
    expect(r.result).toBe("EIO");
    expect(state(r.after)).toEqual(state(r.before));
    expect(userDomain(r.after, "for-dsp")).toMatchObject({ iommu: null, page_sizes: UNION });
  });

  it("the same boot under each strategy differs only in the domains allocated after it", () => {
    const a = takeSnapshot(allocBoth("device-ops"), [], []);
    const b = takeSnapshot(allocBoth("bus-null-device"), [], []);
    const boot = (snap: Snapshot) => ({ devices: snap.devices.map((d) => ({ ...d, domain: null })), groups: snap.groups.map((g) => g.devices) });
    expect(boot(b)).toEqual(boot(a));
    // Default domains are allocated through the device's ops under both strategies.
    const defaults = (snap: Snapshot) => snap.domains.filter((d) => d.name === null).map((d) => [d.iommu, d.page_sizes]);
    expect(defaults(b)).toEqual(defaults(a));
  });

  it("the shipped scenario passes under device-ops and its expectations catch the unfinalised domains and the wrong instance under bus-null-device", () => {
    const s = loadScenarioFile(FILE);
    expect(runScenario(withDomainAlloc(s, "device-ops")).failures).toEqual([]);
    const r = runScenario(withDomainAlloc(s, "bus-null-device"));
    const messages = r.failures.map((f) => `${f.step} ${f.message}`);
    expect(messages).toContain('events[2] domains.for-gpu.iommu: expected "smmu1", got null');
    expect(messages).toContain('events[2] domains.for-dsp.page_sizes: expected ["4K","2M","1G"], got ["4K","64K","2M","512M","1G"]');
    // for-dsp attached to gpu: refused under device-ops, accepted (and finalised for smmu1) under bus-null-device.
    expect(r.machine.events.find((e) => e.event === "attach_device" && e.arg === "for-dsp gpu")?.result).toBe("ok");
    // The failure is the domain's instance, not a broken rule of the core.
    expect(r.violations).toEqual([]);
  });

  it("the CLI's --strategy domain_alloc=bus-null-device applies the same override", async () => {
    const out: string[] = [];
    const code = await main(["run", FILE, "--json", "--strategy", "domain_alloc=bus-null-device"], { out: (x) => out.push(x), err: () => {} });
    expect(code).toBe(1);
    const snap = JSON.parse(out.join("\n")) as Snapshot;
    expect(snap.events.find((e) => e.event === "attach_device" && e.arg === "for-dsp gpu")?.result).toBe("ok");
    expect(snap.user_domains["for-dsp"]).toMatchObject({ iommu: "smmu1", page_sizes: ["64K", "512M"] });
  });
});
