/**
 * After each event the runner checks the invariants only on what the event
 * touched: the devices and groups whose locks it took or whose IOMMU state
 * it changed outside one (probe, release, deferral). That finds what a
 * whole check finds only if every object whose checked state changed was
 * touched: this checks it, field by field, on random machines and events
 * (failed events included). What a scope cannot see the runner's whole
 * check after the last event still reports.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Device } from "../../src/base/device.ts";
import { trackTouches } from "../../src/base/path.ts";
import { devGroup, devIommu } from "../../src/iommu/dev-iommu.ts";
import type { IommuGroup } from "../../src/iommu/group.ts";
import { checkInvariants, formatViolation, scopeOfTouched } from "../../src/sim/invariants.ts";
import type { Machine } from "../../src/sim/machine.ts";
import { runScenario } from "../../src/sim/runner.ts";
import { scenario, step } from "../helpers.ts";
import { knobs, randomMachine, rawEvent, toEvent } from "./random-events.ts";

/** What the per-device rules read (I3, I4, I6, I8, I-fwspec-deferred, I33 on its lock). */
function deviceState(m: Machine, dev: Device): unknown[] {
  const p = devIommu(dev);
  const fw = p?.fwspec ?? null;
  return [
    dev.registered,
    dev.deferredProbe,
    dev.lock.holder,
    p,
    p?.iommuDev ?? null,
    p?.iommuDev?.listed ?? null,
    p?.iommuDev?.ops ?? null,
    fw,
    // The instance the fwspec resolves to, where a rule reads it: I6 (probed against a listed
    // instance) and I-fwspec-deferred (unprobed, on an IOMMU bus).
    fw !== null && (p!.iommuDev?.listed === true || (p!.iommuDev === null && m.k.iommuBuses.includes(dev.bus))) ? m.k.firstByFwnode(fw.iommuFwnode) : null,
    devGroup(dev),
  ];
}

/** What the group rules read of each member (I16, I18, I23, I24): covered by touching the device or its group. */
function memberState(dev: Device): unknown[] {
  const p = devIommu(dev);
  return [dev.bound, dev.driver, p?.domain ?? null, p?.attachDeferred ?? null, p?.requireDirect ?? null];
}

/** Everything the checker reads of a group. */
function groupState(g: IommuGroup): unknown[] {
  return [
    g.devices.map((gd) => gd.dev).join("\u0000"),
    g.devices.length,
    g.refcount,
    g.defaultDomain,
    g.blockingDomain,
    g.domain,
    g.domain?.iommu ?? null,
    g.ownerCnt,
    g.owner,
    g.ownerCntStale,
    g.domainWarned,
    g.mutex.holder,
    g.id,
  ];
}

function same(a: unknown[], b: unknown[]): boolean {
  return a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
}

describe("incremental invariant checks", () => {
  it("every device and group whose checked state an event changes is in the event's touched set", () => {
    fc.assert(
      fc.property(knobs, fc.array(rawEvent, { maxLength: 30 }), (o, raw) => {
        const m = runScenario(randomMachine(o), { trace: false }).machine;
        const devices = [...m.devices.values()].map((r) => r.dev);
        for (const x of raw) {
          const e = toEvent(o.x86, x);
          const beforeDev = devices.map((d) => deviceState(m, d));
          const beforeMember = devices.map(memberState);
          const beforeGroups = new Map([...m.k.groups].map((g) => [g, groupState(g)] as const));
          const touched = trackTouches(m.dc.sched);
          step(m, e);
          const scope = scopeOfTouched(touched);
          const missed: string[] = [];
          const groupInScope = (g: IommuGroup | null) => g !== null && (scope.groups.includes(g) || scope.devices.some((d) => devGroup(d) === g));
          devices.forEach((d, i) => {
            if (!same(beforeDev[i]!, deviceState(m, d)) && !scope.devices.includes(d)) missed.push(`device ${d.name}`);
            if (!same(beforeMember[i]!, memberState(d)) && !scope.devices.includes(d) && !groupInScope(devGroup(d))) {
              missed.push(`member ${d.name}`);
            }
          });
          for (const g of m.k.groups) {
            const before = beforeGroups.get(g);
            if (before !== undefined && same(before, groupState(g))) continue;
            // A group the checker looks at: locked by the event, or the group of a touched device.
            if (!groupInScope(g)) missed.push(`${g}`);
          }
          expect({ event: e, missed }).toEqual({ event: e, missed: [] });
        }
      }),
      { numRuns: 150 },
    );
  });

  it("finds on what a step touched the violations a whole check finds there", () => {
    const s = scenario(`
name: two devices
iommus: [{name: s0, driver: arm-smmu-v3, fwnode: /s0}]
devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[s0, 1]]}
  - {name: b, bus: platform, fwnode: /b, iommus: [[s0, 2]]}
drivers: [{name: drv, bus: platform, match: "*"}]
`);
    const m = runScenario(s, { trace: false }).machine;
    const a = m.devices.get("a")!.dev;
    const b = m.devices.get("b")!.dev;
    // A step that unbinds a's driver (taking a's lock) and, by a model bug, also breaks b's group count.
    const touched = trackTouches(m.dc.sched);
    step(m, { driver_unbind: "a" });
    devGroup(b)!.ownerCnt = 5;
    const scope = scopeOfTouched(touched);
    expect(scope.devices).toContain(a);
    expect(scope.devices).not.toContain(b);
    // b's group was not touched: the scoped check does not see it, the whole check does.
    expect(checkInvariants(m, scope).map(formatViolation)).toEqual([]);
    expect(checkInvariants(m).map((v) => v.rule)).toEqual(["I24 owner-count"]);
    // The same break in a's group is found by the scoped check.
    devGroup(a)!.ownerCnt = 7;
    expect(checkInvariants(m, scope).map((v) => v.rule)).toEqual(["I24 owner-count"]);
  });
});
