/**
 * The domain-allocation design axis (DESIGN.md) on the shipped two-instance
 * machine: through the device's ops (iommu_paging_domain_alloc, v6.11+) the
 * domain is finalised for the instance serving the device; through the bus
 * with a NULL device (iommu_domain_alloc(bus), up to v6.12) the driver cannot
 * know the instance, and the domain meant for a device of the second SMMU
 * cannot attach to it.
 */
import { describe, expect, it } from "vitest";
import { runPath } from "../../src/base/path.ts";
import { main } from "../../src/cli/main.ts";
import { Machine } from "../../src/sim/machine.ts";
import { bootPath, eventPath, runScenario } from "../../src/sim/runner.ts";
import { loadScenarioFile } from "../../src/sim/scenario/load.ts";
import type { EventSpec, Scenario } from "../../src/sim/scenario/schema.ts";
import { takeSnapshot, type Snapshot } from "../../src/sim/snapshot.ts";
import { dev, state } from "../helpers.ts";

const FILE = new URL("../../scenarios/two-instance-domain-alloc.yaml", import.meta.url).pathname;

type DomainAllocName = "device-ops" | "bus-null-device";

/** The shipped scenario with boot.strategy.domain_alloc set, as the CLI's --domain-alloc does. */
function withDomainAlloc(s: Scenario, name: DomainAllocName): Scenario {
  return { ...s, boot: { ...s.boot, strategy: { ...s.boot?.strategy, domain_alloc: name } } };
}

/** The file's domain_alloc event that names `name`. */
function allocEvent(s: Scenario, name: string): EventSpec {
  const e = s.events.find((x) => x.domain_alloc?.name === name);
  if (e === undefined) throw new Error(`the scenario has no domain_alloc event named ${name}`);
  return e;
}

/**
 * Boots the shipped machine under `strategy`, runs its two domain_alloc
 * events (for-dsp on dsp behind smmu0, for-gpu on gpu behind smmu1), then
 * attaches for-gpu to gpu: the state before and after the attach, and its result.
 */
function allocThenAttach(strategy: DomainAllocName) {
  const s = withDomainAlloc(loadScenarioFile(FILE), strategy);
  const m = new Machine(s);
  runPath(bootPath(m, []));
  for (const name of ["for-dsp", "for-gpu"]) {
    const r = runPath(eventPath(m, allocEvent(s, name)).path);
    expect(r).toBe(0);
  }
  const before = takeSnapshot(m, [], []);
  const r = runPath(eventPath(m, { attach_device: { domain: "for-gpu", device: "gpu" } }).path);
  const after = takeSnapshot(m, [], []);
  return { m, before, after, result: r === 0 ? "ok" : r.errno, message: r === 0 ? "" : r.message };
}

const userDomain = (snap: Snapshot, name: string) => {
  const d = snap.user_domains[name];
  if (d === undefined) throw new Error(`no domain ${name} in the snapshot`);
  return d;
};

describe("domain allocation strategy on the two-instance machine", () => {
  it("device-ops: the domain allocated for gpu is finalised for smmu1 (its page sizes) and attaches to gpu", () => {
    const { m, before, after, result } = allocThenAttach("device-ops");
    expect(m.k.strategy.domainAllocation.name).toBe("device-ops");
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

  it("bus-null-device: the domain meant for gpu is finalised for smmu0, and attaching it to gpu fails with EINVAL, state unchanged", () => {
    const { m, before, after, result, message } = allocThenAttach("bus-null-device");
    expect(m.k.strategy.domainAllocation.name).toBe("bus-null-device");
    // Both allocations went through the platform bus's ops with no device: the driver picked its first SMMU.
    expect(userDomain(before, "for-dsp")).toMatchObject({ type: "unmanaged", iommu: "smmu0", page_sizes: ["4K", "2M", "1G"] });
    expect(userDomain(before, "for-gpu")).toMatchObject({ type: "unmanaged", iommu: "smmu0", page_sizes: ["4K", "2M", "1G"] });
    // gpu is behind smmu1, which only has the 64K granule.
    expect(before.iommus.find((i) => i.name === "smmu1")?.devices).toContain("gpu");
    expect(result).toBe("EINVAL");
    expect(message).toMatch(/smmu0.*gpu.*smmu1/);
    expect(state(after)).toEqual(state(before));
    expect(dev(after, "gpu").domain).not.toBe(userDomain(after, "for-gpu").id);
  });

  it("the same boot under each strategy differs only in the domains allocated after it", () => {
    const a = allocThenAttach("device-ops");
    const b = allocThenAttach("bus-null-device");
    const boot = (snap: Snapshot) => ({ devices: snap.devices.map((d) => ({ ...d, domain: null })), groups: snap.groups.map((g) => g.devices) });
    expect(boot(b.before)).toEqual(boot(a.before));
    // Default domains are allocated through the device's ops under both strategies.
    const defaults = (snap: Snapshot) => snap.domains.filter((d) => d.name === null).map((d) => [d.iommu, d.page_sizes]);
    expect(defaults(b.before)).toEqual(defaults(a.before));
  });

  it("the shipped scenario passes under device-ops and its expectations catch the wrong instance under bus-null-device", () => {
    const s = loadScenarioFile(FILE);
    expect(runScenario(withDomainAlloc(s, "device-ops")).failures).toEqual([]);
    const r = runScenario(withDomainAlloc(s, "bus-null-device"));
    const messages = r.failures.map((f) => `${f.step} ${f.message}`);
    expect(messages).toContain('events[2] domains.for-gpu.iommu: expected "smmu1", got "smmu0"');
    expect(messages).toContain('events[2] domains.for-gpu.page_sizes: expected ["64K","512M"], got ["4K","2M","1G"]');
    expect(r.machine.events.find((e) => e.event === "attach_device" && e.arg === "for-gpu gpu")?.result).toBe("EINVAL");
    // The failure is the domain's instance, not a broken rule of the core.
    expect(r.violations).toEqual([]);
  });

  it("the CLI's --domain-alloc applies the same override", async () => {
    const out: string[] = [];
    const code = await main(["run", FILE, "--json", "--domain-alloc", "bus-null-device"], { out: (x) => out.push(x), err: () => {} });
    expect(code).toBe(1);
    const snap = JSON.parse(out.join("\n")) as Snapshot;
    expect(snap.user_domains["for-gpu"]).toMatchObject({ iommu: "smmu0", page_sizes: ["4K", "2M", "1G"] });
    expect(snap.events.find((e) => e.event === "attach_device" && e.arg === "for-gpu gpu")?.result).toBe("EINVAL");
  });
});
