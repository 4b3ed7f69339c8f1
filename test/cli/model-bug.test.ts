import { describe, expect, it, vi } from "vitest";

describe("exit code 3", () => {
  it("an exception from the model is a model bug: exit 3, a message saying so, no stack unless asked", async () => {
    vi.doMock("../../src/sim/runner.ts", async (orig) => ({
      ...(await orig<typeof import("../../src/sim/runner.ts")>()),
      runScenario: () => {
        throw new TypeError("Cannot read properties of undefined (reading 'group')");
      },
    }));
    const { main } = await import("../../src/cli/main.ts");
    for (const cmd of ["run", "check"]) {
      const err: string[] = [];
      const out: string[] = [];
      const code = await main([cmd, "scenarios/default.yaml"], { out: (s) => out.push(s), err: (s) => err.push(s) });
      expect(code, cmd).toBe(3);
      expect(out, cmd).toEqual([]);
      expect(err, cmd).toEqual([
        "iommu-sim: internal error (a bug in the model, please report it): Cannot read properties of undefined (reading 'group')",
        "iommu-sim: set IOMMU_SIM_DEBUG=1 for the stack",
      ]);
    }
    vi.doUnmock("../../src/sim/runner.ts");
  });
});
