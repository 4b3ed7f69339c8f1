/**
 * The deferred-probe index (src/base/deferred-index.ts) against the
 * kernel's two lists run literally: on random machines and event sequences
 * both must reach the same snapshot (the deferred list in the same order
 * included) and bind devices in the same order, while the index retries far
 * fewer devices.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { TraceRecord } from "../../src/lib/trace.ts";
import { runScenario, type RunResult } from "../../src/sim/runner.ts";
import type { Scenario } from "../../src/sim/scenario/schema.ts";
import { scenario } from "../helpers.ts";

/** Successful binds, in order: every really_probe that returned 0. */
function bindOrder(r: RunResult): string[] {
  return r.machine.ctx.trace.records.filter((t: TraceRecord) => t.kind === "call" && t.fn === "really_probe" && t.result === "0").map((t) => `${t.subject} ${t.detail}`);
}

function retries(r: RunResult): number {
  return r.machine.ctx.trace.records.filter((t) => t.kind === "call" && t.fn === "really_probe").length;
}

const EVENT_KINDS = ["iommu_register", "iommu_unregister", "device_add", "device_del", "driver_register", "driver_unregister", "driver_bind", "driver_unbind"] as const;

const arbMachine = fc.record({
  iommus: fc.array(fc.record({ registered: fc.boolean(), narrow: fc.boolean() }), { minLength: 1, maxLength: 4 }),
  platform: fc.array(fc.record({ iommus: fc.array(fc.nat(4), { maxLength: 2 }), added: fc.boolean() }), { maxLength: 7 }),
  hosts: fc.array(fc.record({ map: fc.array(fc.nat(4), { minLength: 1, maxLength: 2 }) }), { minLength: 1, maxLength: 2 }),
  pci: fc.array(fc.record({ host: fc.nat(1), slot: fc.nat(7), fn: fc.nat(2), added: fc.boolean(), multifunction: fc.boolean() }), { maxLength: 7 }),
  drivers: fc.array(
    fc.record({
      bus: fc.constantFrom("platform", "pci"),
      all: fc.boolean(),
      picks: fc.array(fc.nat(20), { maxLength: 4 }),
      selfDefer: fc.array(fc.nat(20), { maxLength: 2 }),
      managed: fc.boolean(),
      registered: fc.boolean(),
    }),
    { maxLength: 4 },
  ),
  devicesFirst: fc.boolean(),
  events: fc.array(fc.record({ kind: fc.constantFrom(...EVENT_KINDS), a: fc.nat(30), b: fc.nat(30) }), { maxLength: 14 }),
});

type MachineSpec = typeof arbMachine extends fc.Arbitrary<infer T> ? T : never;

function build(spec: MachineSpec): Scenario {
  const inst = (i: number) => `s${i % spec.iommus.length}`;
  const iommus = spec.iommus.map((m, i) => ({
    name: `s${i}`,
    driver: "arm-smmu-v3" as const,
    fwnode: `/soc/s${i}`,
    registered: m.registered,
    // A narrow StreamID width makes a registration fail on a large id (ERANGE) and roll back.
    ...(m.narrow ? { "sid-bits": 3 } : {}),
  }));
  const devices: Scenario["devices"] = [];
  spec.platform.forEach((d, i) => {
    devices.push({
      name: `d${i}`,
      bus: "platform",
      fwnode: `/soc/d${i}`,
      added: d.added,
      ...(d.iommus.length > 0 ? { iommus: d.iommus.map((t, j) => [inst(t), (i * 2 + j) % 12]) } : {}),
    });
  });
  spec.hosts.forEach((h, i) => {
    devices.push({
      name: `host${i}`,
      bus: "platform",
      fwnode: `/soc/host${i}`,
      "pci-host": { segment: i, "iommu-map": h.map.map((t, j) => [j * 0x80, inst(t), 0x10 * (j + 1) + i * 0x100, 0x80] as [number, string, number, number]) },
    });
  });
  const seen = new Set<string>();
  for (const p of spec.pci) {
    const host = p.host % spec.hosts.length;
    const name = `000${host}:00:0${p.slot}.${p.fn}`;
    if (seen.has(name)) continue;
    seen.add(name);
    devices.push({ name, bus: "pci", parent: `host${host}`, added: p.added, multifunction: p.multifunction });
  }
  const onBus = (bus: string) => devices.filter((d) => d.bus === bus).map((d) => d.name);
  const drivers: Scenario["drivers"] = spec.drivers.map((d, i) => {
    const names = onBus(d.bus);
    const match = d.all || names.length === 0 ? ("*" as const) : [...new Set(d.picks.map((k) => names[k % names.length]!))];
    const deferring = names.length === 0 ? [] : d.selfDefer.map((k) => names[k % names.length]!);
    return {
      name: `drv${i}`,
      bus: d.bus,
      match,
      registered: d.registered,
      driver_managed_dma: d.managed,
      ...(deferring.length > 0 ? { probe_result: Object.fromEntries(deferring.map((n) => [n, "EPROBE_DEFER"])) } : {}),
    };
  });
  const all = devices.filter((d) => d["pci-host"] === undefined).map((d) => d.name);
  const events: Scenario["events"] = [];
  for (const e of spec.events) {
    switch (e.kind) {
      case "iommu_register":
      case "iommu_unregister":
        events.push({ [e.kind]: inst(e.a) });
        break;
      case "device_add":
      case "device_del":
      case "driver_unbind":
        if (all.length > 0) events.push({ [e.kind]: all[e.a % all.length]! });
        break;
      case "driver_register":
      case "driver_unregister":
        if (drivers.length > 0) events.push({ [e.kind]: drivers[e.a % drivers.length]!.name });
        break;
      case "driver_bind":
        if (drivers.length > 0 && all.length > 0) {
          const drv = drivers[e.b % drivers.length]!;
          const dev = devices.find((d) => d.name === all[e.a % all.length]!)!;
          if (dev.bus === drv.bus) events.push({ driver_bind: { device: dev.name, driver: drv.name } });
        }
        break;
    }
  }
  return { name: "random deferred probe", boot: spec.devicesFirst ? { order: "devices-first" } : {}, iommus, devices, drivers, events };
}

function both(s: Scenario): { indexed: RunResult; literal: RunResult } {
  return {
    indexed: runScenario(s, { deferredProbe: "indexed", trace: true }),
    literal: runScenario(s, { deferredProbe: "literal", trace: true }),
  };
}

describe("the deferred-probe index", () => {
  it("reaches the kernel's states and bind order on random machines (late instances, drivers, add/del, unregister, self-deferring drivers)", () => {
    fc.assert(
      fc.property(arbMachine, (spec) => {
        const { indexed, literal } = both(build(spec));
        expect(indexed.snapshot).toEqual(literal.snapshot);
        expect(bindOrder(indexed)).toEqual(bindOrder(literal));
        expect(retries(indexed)).toBeLessThanOrEqual(retries(literal));
      }),
      { numRuns: 400 },
    );
  });

  const LATE = `
name: two late SMMUs
iommus:
  - {name: s0, driver: arm-smmu-v3, fwnode: /soc/s0, registered: false}
  - {name: s1, driver: arm-smmu-v3, fwnode: /soc/s1, registered: false}
devices:
${Array.from({ length: 6 }, (_, i) => `  - {name: d${i}, bus: platform, fwnode: /soc/d${i}, iommus: [[s${i % 2}, ${i}]]}`).join("\n")}
drivers:
  - {name: drv, bus: platform, match: "*"}
events:
  - iommu_register: s1
  - expect: {deferred: [d0, d2, d4]}
  - iommu_register: s0
`;

  it("binds in the kernel's order, rotating the queue past devices whose wait has not ended", () => {
    const { indexed, literal } = both(scenario(LATE));
    // d1, d3, d5 wait for s1; each bind retriggers and the kernel retries d0, d2, d4 after each of them.
    expect(bindOrder(literal)).toEqual(["d1 drv", "d3 drv", "d5 drv", "d0 drv", "d2 drv", "d4 drv"]);
    expect(bindOrder(indexed)).toEqual(bindOrder(literal));
    expect(indexed.snapshot).toEqual(literal.snapshot);
    expect(indexed.failures).toEqual([]);
    // Literal: 6 at driver_register, 6 at late_initcall; s1's run retries d0 d1 | d2 d3 | d4 d5 | d0 d2 d4 (each
    // bind sends the devices already retried round again); s0's run retries d0 d2 d4. The index retries only
    // the devices whose IOMMU arrived, in the same places of the queue.
    expect(retries(literal)).toBe(6 + 6 + 9 + 3);
    expect(retries(indexed)).toBe(6 + 3 + 3);
  });

  it("says in the trace what it skipped, once per run of the work item", () => {
    const r = runScenario(scenario(LATE), { trace: true });
    const notes = r.machine.ctx.trace.records.filter((t) => t.kind === "note" && t.fn === "deferred_probe_work_func").map((t) => t.detail);
    expect(notes).toEqual([
      "skipped the retries of 6 deferred device(s) whose wait has not ended (the kernel retries each; each would defer again unchanged): 3 for /soc/s0, 3 for /soc/s1",
      "skipped the retries of 3 deferred device(s) whose wait has not ended (the kernel retries each; each would defer again unchanged): 3 for /soc/s0",
    ]);
  });
});
