import { readFileSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import { AXES, AXIS_NAMES } from "../src/designs/registry.ts";
import { boot, ScenarioError, type BootOptions } from "../src/index.ts";

const WRONG_OPS = readFileSync("scenarios/x86-mock-wrong-ops.yaml", "utf8");
const mockOps = (opts: BootOptions) => boot(WRONG_OPS, opts).snapshot.devices.find((d) => d.name === "iommufd_mock0")!.ops;

describe("boot() honours every option it takes", () => {
  it("strategy overrides the scenario's boot.strategy, axis by axis", () => {
    expect(mockOps({})).toBeNull();
    expect(mockOps({ strategy: { ops_resolution: "ask-each" } })).toBe("mock");
    const r = boot(WRONG_OPS, { strategy: { domain_alloc: "bus-null-device" } });
    // Every other axis keeps its default.
    const defaults = Object.fromEntries(AXIS_NAMES.map((a) => [a, AXES[a].default]));
    expect(r.snapshot.strategy).toEqual({ ...defaults, ops_resolution: "upstream", domain_alloc: "bus-null-device" });
    expect(Object.keys(r.snapshot.strategy)).toEqual(AXIS_NAMES);
  });

  it("kernel takes a release's design, as --kernel does; strategy then overrides single axes", () => {
    // v6.7: the mock's private bus carries the mock's ops; v6.8 retired bus ops.
    expect(mockOps({ kernel: "v6.7" })).toBe("mock");
    expect(mockOps({ kernel: "v6.8" })).toBeNull();
    expect(mockOps({ kernel: "v6.8", strategy: { ops_resolution: "ask-each" } })).toBe("mock");
    const r = boot(WRONG_OPS, { kernel: "v5.15" });
    expect(r.snapshot.kernel).toBe("v5.15");
    expect(r.snapshot.strategy).toMatchObject({ ops_resolution: "bus-set-iommu", dma_ownership: "notifier" });
    expect(() => boot(WRONG_OPS, { kernel: "v9.9" } as unknown as BootOptions)).toThrow(/^boot\(\): bad options: kernel: expected one of v5\.15, /);
  });

  it("trace, invariants, probeWalk and deferredProbe reach the run", () => {
    expect(boot(WRONG_OPS, { trace: false }).machine.ctx.trace.records).toEqual([]);
    expect(boot(WRONG_OPS, { trace: true }).machine.ctx.trace.records.length).toBeGreaterThan(0);
    expect(boot(WRONG_OPS, { probeWalk: "literal" }).machine.k.probeWalk).toBe("literal");
    expect(boot(WRONG_OPS, { deferredProbe: "literal" }).machine.dc.deferred.mode).toBe("literal");
    expect(boot(WRONG_OPS).machine.dc.deferred.mode).toBe("indexed");
  });

  it("invariants: false runs no invariant check", async () => {
    // An invariant checker that always objects: only a run that checks reports it.
    vi.resetModules();
    vi.doMock("../src/sim/invariants.ts", async (orig) => ({
      ...(await orig<typeof import("../src/sim/invariants.ts")>()),
      checkInvariants: () => [{ rule: "I0 test", message: "always" }],
    }));
    const lib = await import("../src/index.ts");
    expect(lib.boot(WRONG_OPS).violations).toEqual(["I0 test: always"]);
    expect(lib.boot(WRONG_OPS, { invariants: true }).violations).toEqual(["I0 test: always"]);
    expect(lib.boot(WRONG_OPS, { invariants: false }).violations).toEqual([]);
    vi.doUnmock("../src/sim/invariants.ts");
    vi.resetModules();
  });

  it("refuses an option it does not know, or a value of the wrong kind, with a TypeError naming it", () => {
    expect(() => boot(WRONG_OPS, { opsResolution: "ask-each" } as BootOptions)).toThrow(
      new TypeError("boot(): bad options: opsResolution: unknown option 'opsResolution'; did you mean strategy: { ops_resolution }?"),
    );
    expect(() => boot(WRONG_OPS, { trase: true } as BootOptions)).toThrow(new TypeError("boot(): bad options: trase: unknown key 'trase'; did you mean 'trace'?"));
    expect(() => boot(WRONG_OPS, { strategy: { ops_resolution: "magic" } } as unknown as BootOptions)).toThrow(
      new TypeError("boot(): bad options: strategy.ops_resolution: expected one of bus-set-iommu, bus-ops, upstream, ask-each, found 'magic'"),
    );
    expect(() => boot(WRONG_OPS, { trace: "yes" } as unknown as BootOptions)).toThrow(new TypeError("boot(): bad options: trace: expected true or false, found 'yes'"));
  });

  it("validates a scenario object as it validates a file", () => {
    expect(() => boot({ name: "o", iommus: [], devices: [{ name: "a", bus: "platfrom" }], drivers: [], events: [] } as never)).toThrow(ScenarioError);
    try {
      boot({ name: "o", devices: [{ name: "a", bus: "platfrom" }] } as never);
    } catch (e) {
      expect((e as Error).message).toBe("(scenario object): devices[0].bus: expected one of platform, pci, amba, iommufd_mock, found 'platfrom'; did you mean 'platform'?");
    }
  });
});
