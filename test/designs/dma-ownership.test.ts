/**
 * The dma_ownership axis: a kernel DMA driver binding into a group user
 * space owns is refused before its probe (driver-core, v5.19+), or binds
 * and is found out by VFIO's group notifier, a kernel BUG (notifier, up to
 * v5.18), which the isolation invariant (I23) catches.
 */
import { describe, expect, it } from "vitest";
import { BUS_NOTIFY_BIND_DRIVER, BUS_NOTIFY_BOUND_DRIVER, busRegisterNotifier } from "../../src/base/bus.ts";
import type { Device } from "../../src/base/device.ts";
import { NO_POINT } from "../../src/base/path.ts";
import { devGroup } from "../../src/iommu/dev-iommu.ts";
import { checkInvariants, formatViolation } from "../../src/sim/invariants.ts";
import type { Machine } from "../../src/sim/machine.ts";
import { boot, dev, outcome, run, snapshot, state, step } from "../helpers.ts";

const FN0 = "0000:01:00.0";
const FN1 = "0000:01:00.1";

/**
 * Two functions of one device behind a root port with ACS, with no ACS
 * between them: one group. fn0 is bound to vfio-pci; e1000e, which matches
 * fn1, is registered by an event.
 */
const MACHINE = (strategy: string, extraDevices = "", extraDrivers = "") => `
name: dma-ownership
boot: {strategy: {dma_ownership: ${strategy}}}
iommus:
  - {name: dmar, driver: intel-iommu, scope: all}
devices:
  - {name: "0000:00:1c.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "${FN0}", bus: pci, parent: "0000:00:1c.0", multifunction: true}
  - {name: "${FN1}", bus: pci, parent: "0000:00:1c.0", multifunction: true}
${extraDevices}
drivers:
  - {name: vfio-pci, bus: pci, match: ["${FN0}"], driver_managed_dma: true}
  - {name: e1000e, bus: pci, match: ["${FN1}"], registered: false}
${extraDrivers}
`;

/** Counts the calls of a driver's probe, and the kernel BUGs recorded when each ran. */
function spyProbe(m: Machine, driver: string): { calls: number; bugsAtProbe: number[] } {
  const drv = m.drivers.get(driver)!;
  const orig = drv.probe.bind(drv);
  const spy = { calls: 0, bugsAtProbe: [] as number[] };
  drv.probe = (d: Device) => {
    spy.calls++;
    spy.bugsAtProbe.push(m.ctx.diag.bugs.length);
    return orig(d);
  };
  return spy;
}

function claimed(strategy: string) {
  const m = boot(MACHINE(strategy));
  expect(snapshot(m).groups.find((g) => g.devices.includes(FN0))!.devices.sort()).toEqual([FN0, FN1]);
  expect(outcome(step(m, { claim_dma_owner: { device: FN0, owner: "vfio", group: true } }))).toBe("ok");
  return m;
}

const violations = (m: Machine) => checkInvariants(m);

/** The driver core's BIND/BOUND notifications for `name`, each with the kernel BUGs recorded when it was sent (a notifier last on the chain). */
function spyNotifications(m: Machine, name: string): { action: string; bugs: number }[] {
  const seen: { action: string; bugs: number }[] = [];
  const dev = m.devices.get(name)!.dev;
  busRegisterNotifier(dev.bus, {
    name: "test-spy",
    actions: (1 << BUS_NOTIFY_BIND_DRIVER) | (1 << BUS_NOTIFY_BOUND_DRIVER),
    call(action, d) {
      if (d === dev) seen.push({ action: action === BUS_NOTIFY_BOUND_DRIVER ? "BOUND_DRIVER" : "BIND_DRIVER", bugs: m.ctx.diag.bugs.length });
      return NO_POINT;
    },
  });
  return seen;
}

describe("dma_ownership=driver-core (v5.19+): the bind is refused before the driver's probe", () => {
  it("a kernel DMA driver binding into the user-owned group gets EBUSY from dma_configure; its probe never runs", () => {
    const m = claimed("driver-core");
    m.ctx.trace.records.length = 0;
    const spy = spyProbe(m, "e1000e");
    const notes = spyNotifications(m, FN1);
    expect(outcome(step(m, { driver_register: "e1000e" }))).toBe("ok");
    expect(outcome(step(m, { driver_bind: { device: FN1, driver: "e1000e" } }))).toBe("EBUSY");
    expect(spy.calls).toBe(0);
    // Refused in dma_configure, before driver_sysfs_add: neither BIND_DRIVER nor BOUND_DRIVER is sent.
    expect(notes).toEqual([]);
    const s = snapshot(m);
    // The autoprobe at driver_register failed the same way, and left the device so.
    expect(dev(s, FN1)).toMatchObject({ driver: null, probe: "failed", probe_error: "EBUSY" });
    expect(s.groups.find((g) => g.devices.includes(FN0))).toMatchObject({ owner: "user", owner_cnt: 1 });
    // iommu_device_use_default_domain refused it inside really_probe; no BOUND notification, no BUG.
    const rec = m.ctx.trace.records;
    expect(rec.some((r) => r.kind === "call" && r.fn === "iommu_device_use_default_domain" && r.result === "EBUSY")).toBe(true);
    expect(rec.some((r) => r.fn === "vfio_iommu_group_notifier")).toBe(false);
    expect(s.bugs).toEqual([]);
    expect(violations(m)).toEqual([]);
  });

  it("owner_cnt counts each kernel DMA-API driver, and a claim is EPERM while it is not 0", () => {
    const m = boot(MACHINE("driver-core"));
    step(m, { driver_register: "e1000e" });
    const g = () => snapshot(m).groups.find((x) => x.devices.includes(FN0))!;
    expect(g()).toMatchObject({ owner: "kernel", owner_cnt: 1 });
    expect(outcome(step(m, { claim_dma_owner: { device: FN0, owner: "vfio", group: true } }))).toBe("EPERM");
    expect(violations(m)).toEqual([]);
  });
});

describe("dma_ownership=notifier (up to v5.18): the driver binds, then VFIO's group notifier BUGs", () => {
  it("the driver's probe runs, it stays bound, the BUG is recorded after the probe, and I23 fires", () => {
    const m = claimed("notifier");
    const spy = spyProbe(m, "e1000e");
    const notes = spyNotifications(m, FN1);
    expect(outcome(step(m, { driver_register: "e1000e" }))).toBe("ok");
    expect(spy.calls).toBe(1);
    // BIND_DRIVER before the probe, BOUND_DRIVER after it: VFIO's notifier (earlier on the chain) BUGged on the latter.
    expect(notes).toEqual([
      { action: "BIND_DRIVER", bugs: 0 },
      { action: "BOUND_DRIVER", bugs: 1 },
    ]);
    // No BUG yet when the probe ran: VFIO hears of the bind only from driver_bound's notification.
    expect(spy.bugsAtProbe).toEqual([0]);
    const s = snapshot(m);
    expect(dev(s, FN1)).toMatchObject({ driver: "e1000e", probe: "bound" });
    expect(s.bugs).toHaveLength(1);
    expect(s.bugs[0]).toMatch(new RegExp(`^vfio_iommu_group_notifier: ${FN1.replace(/\./g, "\\.")}: BUG_ON\\(vfio_group_nb_verify\\(\\)\\): e1000e is bound`));
    // Not a WARN: the snapshot keeps BUGs apart.
    expect(s.warnings).toEqual([]);
    const v = violations(m);
    expect(v.map((x) => x.rule)).toEqual(["I23 user-vs-kernel"]);
    expect(v[0]!.afterKernelBug).toBe(true);
    expect(formatViolation(v[0]!)).toContain(`${FN1} is bound to a DMA-API driver`);
    expect(formatViolation(v[0]!)).toContain("reached only after the kernel BUG in vfio_iommu_group_notifier");
  });

  it("the trace shows the BUG inside the bind, after really_probe's dma_configure", () => {
    const m = claimed("notifier");
    m.ctx.trace.records.length = 0;
    step(m, { driver_register: "e1000e" });
    const rec = m.ctx.trace.records;
    const bind = rec.findIndex((r) => r.kind === "call" && r.fn === "really_probe" && r.subject === FN1);
    const cfg = rec.findIndex((r, i) => i > bind && r.kind === "call" && r.fn === "pci_dma_configure");
    const bug = rec.findIndex((r) => r.kind === "bug" && r.fn === "vfio_iommu_group_notifier");
    expect(bind).toBeGreaterThanOrEqual(0);
    expect(cfg).toBeGreaterThan(bind);
    expect(bug).toBeGreaterThan(cfg);
    expect(rec[bug]!.depth).toBeGreaterThan(rec[bind]!.depth);
    // dma_configure counted nothing.
    expect(rec.some((r) => r.fn === "iommu_device_use_default_domain")).toBe(false);
  });

  it("a scenario run reports I23 as a failure unless an expectation names it", () => {
    const base = MACHINE("notifier") + `events:\n  - claim_dma_owner: {device: "${FN0}", owner: vfio, group: true}\n  - driver_register: e1000e\n`;
    const bare = run(base);
    expect(bare.failures.map((f) => f.kind)).toEqual(["invariant"]);
    expect(bare.failures[0]!.message).toMatch(/^I23 user-vs-kernel: /);
    const expected = run(base + `  - expect:\n      bugs: [vfio_iommu_group_notifier]\n      violations: ["I23 user-vs-kernel"]\n`);
    expect(expected.failures).toEqual([]);
    expect(expected.violations).toHaveLength(1);
    expect(expected.expectedViolations).toEqual(expected.violations);
  });

  it("a claim of a group with a kernel DMA driver bound is EINVAL (not viable), and changes nothing", () => {
    const m = boot(MACHINE("notifier"));
    step(m, { driver_register: "e1000e" });
    const before = state(snapshot(m));
    const r = step(m, { claim_dma_owner: { device: FN0, owner: "vfio", group: true } });
    expect(outcome(r)).toBe("EINVAL");
    expect(r !== 0 && r.message).toContain(`${FN1} is bound to e1000e`);
    expect(state(snapshot(m))).toEqual(before);
    // The per-device claim too.
    expect(outcome(step(m, { claim_dma_owner: { device: FN0, owner: "iommufd" } }))).toBe("EINVAL");
    expect(state(snapshot(m))).toEqual(before);
    // Once e1000e is unbound the group is viable again.
    expect(outcome(step(m, { driver_unbind: FN1 }))).toBe("ok");
    expect(outcome(step(m, { claim_dma_owner: { device: FN0, owner: "vfio", group: true } }))).toBe("ok");
    expect(violations(m)).toEqual([]);
  });

  it("owner_cnt counts no kernel driver: only the user's claims", () => {
    const m = boot(MACHINE("notifier"));
    step(m, { driver_register: "e1000e" });
    const group = devGroup(m.devices.get(FN1)!.dev)!;
    expect(snapshot(m).groups.find((x) => x.devices.includes(FN0))).toMatchObject({ owner: "none", owner_cnt: 0 });
    expect(violations(m)).toEqual([]);
    step(m, { driver_unbind: FN1 });
    expect(group.ownerCnt).toBe(0);
    expect(group.ownerCntStale).toBe(false);
    // Claims count themselves (a second device claim with the same owner counts one more), releases uncount.
    expect(outcome(step(m, { claim_dma_owner: { device: FN0, owner: "iommufd" } }))).toBe("ok");
    expect(outcome(step(m, { claim_dma_owner: { device: FN1, owner: "iommufd" } }))).toBe("ok");
    expect(group.ownerCnt).toBe(2);
    step(m, { release_dma_owner: { device: FN1 } });
    step(m, { release_dma_owner: { device: FN0 } });
    expect(group.ownerCnt).toBe(0);
    expect(group.owner).toBe(null);
    expect(violations(m)).toEqual([]);
    // I24 under notifier: no owner, so owner_cnt must be 0, whatever is bound.
    step(m, { driver_bind: { device: FN1, driver: "e1000e" } });
    group.ownerCnt = 1;
    expect(violations(m).map((v) => v.rule)).toEqual(["I24 owner-count"]);
  });

  it("a PCI bridge does not make a group unviable, and may stay bound in it", () => {
    // A root port without ACS: it shares its group with the function below it.
    const m = boot(
      MACHINE(
        "notifier",
        `  - {name: "0000:00:1e.0", bus: pci, type: root-port}\n  - {name: "0000:04:00.0", bus: pci, parent: "0000:00:1e.0"}`,
        `  - {name: pcieport, bus: pci, match: ["0000:00:1e.0"]}\n  - {name: vfio-pci-04, bus: pci, match: ["0000:04:00.0"], driver_managed_dma: true}`,
      ),
    );
    const s = snapshot(m);
    expect(s.groups.find((g) => g.devices.includes("0000:04:00.0"))!.devices.sort()).toEqual(["0000:00:1e.0", "0000:04:00.0"]);
    expect(dev(s, "0000:00:1e.0")).toMatchObject({ driver: "pcieport", probe: "bound" });
    expect(outcome(step(m, { claim_dma_owner: { device: "0000:04:00.0", owner: "vfio", group: true } }))).toBe("ok");
    expect(violations(m)).toEqual([]);
    // Rebinding the bridge's driver in the owned group is no BUG either.
    step(m, { driver_unbind: "0000:00:1e.0" });
    expect(outcome(step(m, { driver_bind: { device: "0000:00:1e.0", driver: "pcieport" } }))).toBe("ok");
    expect(snapshot(m).bugs).toEqual([]);
    expect(violations(m)).toEqual([]);
  });

  it("under driver-core the same bridge driver (not driver_managed_dma) is counted and blocks the claim", () => {
    const m = boot(
      MACHINE(
        "driver-core",
        `  - {name: "0000:00:1e.0", bus: pci, type: root-port}\n  - {name: "0000:04:00.0", bus: pci, parent: "0000:00:1e.0"}`,
        `  - {name: pcieport, bus: pci, match: ["0000:00:1e.0"]}\n  - {name: vfio-pci-04, bus: pci, match: ["0000:04:00.0"], driver_managed_dma: true}`,
      ),
    );
    expect(outcome(step(m, { claim_dma_owner: { device: "0000:04:00.0", owner: "vfio", group: true } }))).toBe("EPERM");
  });

  it("a driver_managed_dma driver (vfio-pci, pci-stub) binding into the owned group is no BUG", () => {
    const m = boot(MACHINE("notifier", "", `  - {name: pci-stub, bus: pci, match: ["${FN1}"], driver_managed_dma: true}`));
    expect(dev(snapshot(m), FN1)).toMatchObject({ driver: "pci-stub" });
    step(m, { driver_unbind: FN1 });
    expect(outcome(step(m, { claim_dma_owner: { device: FN0, owner: "vfio", group: true } }))).toBe("ok");
    expect(outcome(step(m, { driver_bind: { device: FN1, driver: "pci-stub" } }))).toBe("ok");
    expect(snapshot(m).bugs).toEqual([]);
    expect(violations(m)).toEqual([]);
  });

  it("releasing the claim (VFIO unsetting the container) ends the conflict: a later bind is no BUG", () => {
    const m = claimed("notifier");
    step(m, { release_dma_owner: { device: FN0, group: true } });
    expect(outcome(step(m, { driver_register: "e1000e" }))).toBe("ok");
    const s = snapshot(m);
    expect(s.bugs).toEqual([]);
    expect(s.groups.find((g) => g.devices.includes(FN0))).toMatchObject({ owner: "none", owner_cnt: 0 });
    expect(violations(m)).toEqual([]);
  });
});
