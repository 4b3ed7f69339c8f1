/**
 * `concurrently:` blocks: the default schedule (each task runs until it
 * blocks or ends), schedules as strings and their exact replay, and the bad
 * input around them (exit 2 with the file, line and key path).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { formatSchedule, parseSchedule, ScheduleError, ScriptPolicy, type Schedule } from "../../src/sim/explore/schedule.ts";
import { runScenario } from "../../src/sim/runner.ts";
import { parseScenario, ScenarioError } from "../../src/sim/scenario/load.ts";
import { renderTrace } from "../../src/sim/trace-view.ts";
import { dev, scenario } from "../helpers.ts";

/** device_add of a races the registration of its SMMU; a's driver is registered. */
export const ADD_VS_REGISTER = `
name: device_add racing iommu_register
boot: {strategy: {probe_serialisation: global-lock}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0, registered: false}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]], added: false}
  - {name: b, bus: platform, fwnode: /soc/b, iommus: [[smmu0, 2]]}
drivers:
  - {name: da, bus: platform, match: [a]}
events:
  - concurrently:
      - [{device_add: a}]
      - [{iommu_register: smmu0}]
`;

const play = (yaml: string, schedule?: string) => {
  const s = scenario(yaml);
  return runScenario(s, schedule === undefined ? {} : { policy: new ScriptPolicy(parseSchedule(schedule) as Schedule) });
};

describe("the default schedule", () => {
  it("runs the first task until it blocks or ends, then the next: no preemption", () => {
    const r = play(ADD_VS_REGISTER);
    expect(r.failures).toEqual([]);
    expect(r.schedule).toBe("-");
    const t = renderTrace(r.machine.ctx.trace.records);
    expect(t).toContain("== events[0]: concurrently: a = T1, b = T2");
    // a runs first, to its end, then b.
    expect(t.indexOf("-- a: device_add a")).toBeLessThan(t.indexOf("-- b: iommu_register smmu0"));
    expect(t).toMatch(/-- step \d+: b runs \(a ended\)/);
    expect(dev(r.snapshot, "a")).toMatchObject({ iommu: "smmu0", probe: "bound" });
    expect(r.steps).toBeGreaterThan(2);
    expect(r.snapshot.events.map((e) => `${e.event} ${e.arg} ${e.result}`)).toEqual(["device_add a ok", "iommu_register smmu0 ok"]);
  });

  it("is the schedule '-' and the empty choice list alike", () => {
    const a = play(ADD_VS_REGISTER);
    const b = play(ADD_VS_REGISTER, "-");
    expect(renderTrace(b.machine.ctx.trace.records)).toBe(renderTrace(a.machine.ctx.trace.records));
  });

  it("a task's events run in order and each is settled: expect_error holds per event", () => {
    const r = play(`
name: two events in one task
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]], added: false}
events:
  - concurrently:
      - [{device_add: a}, {iommu_unregister: smmu0}]
      - [{iommu_register: smmu0, expect_error: EEXIST}]
`);
    expect(r.failures.filter((f) => f.kind !== "expect_error")).toEqual([]);
    expect(r.snapshot.events.map((e) => e.event)).toEqual(["device_add", "iommu_unregister", "iommu_register"]);
  });
});

describe("schedules", () => {
  it("parse and print back", () => {
    expect(parseSchedule("a3b/-/ba2")).toEqual([[{ task: 0, count: 3 }, { task: 1, count: 1 }], [], [{ task: 1, count: 1 }, { task: 0, count: 2 }]]);
    expect(formatSchedule([{ chosen: [0, 0, 0, 1, 1], next: [0, 0, 0, 0, 1], length: 5 }])).toBe("a3b");
    expect(formatSchedule([{ chosen: [0, 1], next: [0, 1], length: 2 }, { chosen: [1], next: [0], length: 1 }])).toBe("-/b");
    expect(formatSchedule([{ chosen: [1], next: [0], length: 1 }, { chosen: [0], next: [0], length: 1 }])).toBe("b");
    expect(formatSchedule([])).toBe("-");
  });

  it.each([
    ["", /empty/],
    ["a0", /step count '0' after a is not a positive whole number/],
    ["A", /unexpected "A" at position 1/],
    ["a//b", /empty block 2/],
    ["a 3", /unexpected " " at position 2/],
  ])("%j is malformed", (text, msg) => {
    expect(parseSchedule(text)).toMatch(msg);
  });

  it("a preemption: b runs after a's third step, and the run records the shortest string for its choices", () => {
    const r = play(ADD_VS_REGISTER, "a3b");
    expect(r.schedule).toBe("a3b");
    const t = renderTrace(r.machine.ctx.trace.records);
    expect(t).toMatch(/-- step 4: b runs \(a (at|waits at) /);
    // Choices the continuation rule would make are dropped from the string.
    expect(play(ADD_VS_REGISTER, "a3b1").schedule).toBe("a3b");
  });

  it("replay is exact: the same schedule gives the same trace and snapshot", () => {
    for (const sch of ["a3b", "b2a", "ab2a3b"]) {
      const x = play(ADD_VS_REGISTER, sch);
      const y = play(ADD_VS_REGISTER, x.schedule);
      expect(renderTrace(y.machine.ctx.trace.records)).toBe(renderTrace(x.machine.ctx.trace.records));
      expect(y.snapshot).toEqual(x.snapshot);
      expect(y.schedule).toBe(x.schedule);
    }
  });

  it("a schedule that runs a task past its end, or names a task the block lacks, does not fit", () => {
    expect(() => play(ADD_VS_REGISTER, "a999")).toThrow(ScheduleError);
    expect(() => play(ADD_VS_REGISTER, "a999")).toThrow(/block 1, step \d+: the schedule runs task a, which ended after \d+ steps/);
    expect(() => play(ADD_VS_REGISTER, "c")).toThrow(/the schedule names task c, but the block has 2 tasks \(a to b\)/);
  });
});

const tmp = mkdtempSync(join(tmpdir(), "iommu-sim-concurrently-"));
let n = 0;

async function cli(args: string[], yaml?: string): Promise<{ code: number; out: string; err: string; file: string }> {
  const file = join(tmp, `s${n++}.yaml`);
  if (yaml !== undefined) writeFileSync(file, yaml);
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args.map((a) => (a === "FILE" ? file : a)), { out: (x) => out.push(x), err: (x) => err.push(x) });
  return { code, out: out.join("\n"), err: err.join("\n"), file };
}

describe("bad input (exit 2, with the file, line and key path)", () => {
  const problems = (yaml: string): string[] => {
    try {
      parseScenario(yaml, "inline.yaml");
    } catch (e) {
      if (e instanceof ScenarioError) return e.message.split("\n");
      throw e;
    }
    return [];
  };

  it("a block with a single task", () => {
    expect(problems(ADD_VS_REGISTER.replace("      - [{iommu_register: smmu0}]\n", ""))).toEqual(["inline.yaml:12:5: events[0].concurrently: expected at least 2 items, found a list of 1 item (a concurrently block runs two or more tasks; one task is a plain sequence of events)"]);
  });

  it("a task naming an unknown device or instance", () => {
    const p = problems(ADD_VS_REGISTER.replace("[{device_add: a}]", "[{device_add: x}]").replace("iommu_register: smmu0}", "iommu_register: smmu9}"));
    expect(p).toEqual([
      expect.stringMatching(/^inline\.yaml:13:11: events\[0\]\.concurrently\[0\]\[0\]\.device_add: unknown device 'x'/),
      expect.stringMatching(/^inline\.yaml:14:11: events\[0\]\.concurrently\[1\]\[0\]\.iommu_register: unknown IOMMU instance 'smmu9'.*smmu0/),
    ]);
  });

  it("an empty task, an expect inside a task, and expect_error on the block", () => {
    expect(problems(ADD_VS_REGISTER.replace("[{device_add: a}]", "[]"))[0]).toMatch(/^inline\.yaml:13:9: events\[0\]\.concurrently\[0\]: expected at least 1 item/);
    expect(problems(ADD_VS_REGISTER.replace("[{device_add: a}]", "[{expect: {group_count: 1}}]"))[0]).toMatch(/^inline\.yaml:13:11: events\[0\]\.concurrently\[0\]\[0\]\.expect: unknown key 'expect'/);
    expect(problems(ADD_VS_REGISTER + "    expect_error: EBUSY\n")[0]).toMatch(/events\[0\]\.expect_error: expect_error belongs on an event, not on concurrently/);
  });

  it("explore.bound that is not a positive integer, and explore without a concurrently block", () => {
    expect(problems(ADD_VS_REGISTER + "explore: {expect: none, bound: 0}\n")[0]).toMatch(/^inline\.yaml:15:\d+: explore\.bound: expected a positive integer, found 0/);
    expect(problems(ADD_VS_REGISTER + "explore: {expect: none, bound: 1.5}\n")[0]).toMatch(/explore\.bound: /);
    expect(problems("name: x\nexplore: {expect: none}\n")).toEqual(["inline.yaml:2:1: explore: explore needs a concurrently event to interleave: without one there is a single schedule"]);
  });

  it("run --schedule: malformed, or not fitting the scenario", async () => {
    const bad = await cli(["run", "FILE", "--schedule", "a0"], ADD_VS_REGISTER);
    expect(bad.code).toBe(2);
    expect(bad.out).toBe("");
    expect(bad.err).toBe(`${bad.file}:12:5: events[0].concurrently: --schedule: step count '0' after a is not a positive whole number`);
    const past = await cli(["run", "FILE", "--schedule", "a999"], ADD_VS_REGISTER);
    expect(past.code).toBe(2);
    expect(past.err).toMatch(new RegExp(`^${past.file}:12:5: events\\[0\\]\\.concurrently: --schedule 'a999' does not fit: block 1, step \\d+: the schedule runs task a, which ended after \\d+ steps$`));
    const blocks = await cli(["run", "FILE", "--schedule", "a/b"], ADD_VS_REGISTER);
    expect(blocks.code).toBe(2);
    expect(blocks.err).toMatch(/events: --schedule 'a\/b' does not fit: the schedule has 2 blocks, the scenario 1 concurrently block$/);
  });

  it("run --schedule replays: the trace shows the switches", async () => {
    const r = await cli(["run", "FILE", "--schedule", "a3b", "--trace"], ADD_VS_REGISTER);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/-- step 4: b runs/);
  });
});
