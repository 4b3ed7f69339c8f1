/**
 * Every invariant is a state the kernel never reaches: so no sequence of
 * events the model accepts may end in a violation. Random small machines
 * (arm64 with SMMUs, PCI behind two instances and the iommufd mock; x86
 * with VT-d and the mock, old and new wiring) play random event sequences;
 * after every successful event the checker must find nothing.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runPath } from "../../src/base/path.ts";
import { checkInvariants, formatViolation } from "../../src/sim/invariants.ts";
import { eventPath, runScenario } from "../../src/sim/runner.ts";
import { knobs, randomMachine, rawEvent, toEvent } from "./random-events.ts";

describe("no accepted event sequence breaks an invariant", () => {
  it("on small random machines, after every successful event", () => {
    fc.assert(
      fc.property(knobs, fc.array(rawEvent, { maxLength: 30 }), (o, raw) => {
        const r = runScenario(randomMachine(o), { trace: false });
        expect(r.violations).toEqual([]);
        const m = r.machine;
        const done: string[] = [];
        for (const x of raw) {
          const e = toEvent(o.x86, x);
          const { arg, path } = eventPath(m, e);
          const ret = runPath(path);
          done.push(`${Object.keys(e)[0]} ${arg}: ${ret === 0 ? "ok" : ret.errno}`);
          if (ret !== 0) continue;
          const v = checkInvariants(m).map(formatViolation);
          if (v.length > 0) expect({ after: done, violations: v }).toEqual({ after: done, violations: [] });
        }
      }),
      { numRuns: 150 },
    );
  });
});
