/**
 * Expected violations: an invariant violation an `expect.violations` entry
 * names, at or after the step that broke the rule, is kept in the run's
 * violations but is not a failure; any other violation still is, and
 * `violations: []` still asserts none. The violations come from the one
 * state the model reaches on purpose: I23 after the kernel BUG of
 * dma_ownership=notifier.
 */
import { describe, expect, it } from "vitest";
import { run } from "../helpers.ts";

/** Two groups of two functions each (no ACS between them), each claimed by user space through its vfio-pci function. */
const MACHINE = `
name: expected-violations
boot: {strategy: {dma_ownership: notifier}}
iommus:
  - {name: dmar, driver: intel-iommu, scope: all}
devices:
  - {name: "0000:00:1c.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0", multifunction: true}
  - {name: "0000:01:00.1", bus: pci, parent: "0000:00:1c.0", multifunction: true}
  - {name: "0000:00:1d.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:02:00.0", bus: pci, parent: "0000:00:1d.0", multifunction: true}
  - {name: "0000:02:00.1", bus: pci, parent: "0000:00:1d.0", multifunction: true}
drivers:
  - {name: vfio-pci, bus: pci, match: ["0000:01:00.0", "0000:02:00.0"], driver_managed_dma: true}
  - {name: e1000e, bus: pci, match: ["0000:01:00.1"], registered: false}
  - {name: igb, bus: pci, match: ["0000:02:00.1"], registered: false}
events:
  - claim_dma_owner: {device: "0000:01:00.0", owner: vfio, group: true}
  - claim_dma_owner: {device: "0000:02:00.0", owner: vfio2, group: true}
`;
/** A kernel driver registering binds into an owned group: a BUG, and an I23 violation naming the function. */
const E1000E = `  - driver_register: e1000e\n`;
const IGB = `  - driver_register: igb\n`;
const expectV = (...v: string[]) => `  - expect: {violations: [${v.map((x) => JSON.stringify(x)).join(", ")}]}\n`;
const BOTH = MACHINE + E1000E + IGB;

describe("expected violations", () => {
  it("without expectations: two I23 violations, both failures", () => {
    const r = run(BOTH);
    expect(r.violations.map((v) => v.slice(0, v.indexOf(":")))).toEqual(["I23 user-vs-kernel", "I23 user-vs-kernel"]);
    expect(r.failures.map((f) => f.kind)).toEqual(["invariant", "invariant"]);
    expect(r.expectedViolations).toEqual([]);
  });

  it("a later expect.violations entry that matches a violation makes it expected, not a failure", () => {
    const r = run(BOTH + expectV("I23 user-vs-kernel"));
    expect(r.failures).toEqual([]);
    expect(r.violations).toHaveLength(2);
    expect(r.expectedViolations).toEqual(r.violations);
    expect(r.expectations).toEqual({ passed: 1, failed: 0 });
  });

  it("an entry matches only the violations it names: the other stays a failure", () => {
    const r = run(BOTH + expectV("0000:01:00.1 is bound"));
    expect(r.expectedViolations).toHaveLength(1);
    expect(r.expectedViolations[0]).toContain("0000:01:00.1 is bound");
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]).toMatchObject({ kind: "invariant" });
    expect(r.failures[0]!.message).toContain("0000:02:00.1 is bound");
  });

  it("a violation that appears after the last matching expectation is a failure", () => {
    const r = run(MACHINE + E1000E + expectV("I23") + IGB);
    expect(r.expectedViolations).toHaveLength(1);
    expect(r.expectedViolations[0]).toContain("0000:01:00.1 is bound");
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]!.message).toContain("0000:02:00.1 is bound");
  });

  it("an expectation before the violation does not excuse it (and fails itself)", () => {
    const r = run(MACHINE + expectV("I23") + E1000E);
    expect(r.expectedViolations).toEqual([]);
    expect(r.failures.map((f) => f.kind).sort()).toEqual(["expectation", "invariant"]);
  });

  it("violations: [] still asserts none: the violations stay failures and the expectation fails", () => {
    const r = run(BOTH + expectV());
    expect(r.expectedViolations).toEqual([]);
    expect(r.failures.map((f) => f.kind).sort()).toEqual(["expectation", "invariant", "invariant"]);
  });

  it("an entry that matches no violation fails as an expectation and excuses nothing", () => {
    const r = run(BOTH + expectV("I24 owner-count"));
    expect(r.expectedViolations).toEqual([]);
    expect(r.failures.map((f) => f.kind).sort()).toEqual(["expectation", "invariant", "invariant"]);
  });

  it("with no violation, a run is as before", () => {
    const r = run(MACHINE + expectV());
    expect(r.failures).toEqual([]);
    expect(r.violations).toEqual([]);
    expect(r.expectedViolations).toEqual([]);
  });
});
