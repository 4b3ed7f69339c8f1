/**
 * `iommu-sim explore` and `check`'s `explore:` key on the command line:
 * exit codes, the text and JSON outputs, the replay command, bad flags.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";

const tmp = mkdtempSync(join(tmpdir(), "iommu-sim-explore-"));
let n = 0;

/** device_add of a while smmu0 registers: without the probe lock the two probes of a can interleave (I35 half-initialised). */
const RACE = (ser: string, explore = "") => `
name: probe race
boot: {strategy: {probe_serialisation: ${ser}}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0, registered: false}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]], added: false}
drivers:
  - {name: da, bus: platform, match: [a]}
events:
  - concurrently:
      - [{device_add: a}]
      - [{iommu_register: smmu0}]
  - expect: {devices: {a: {iommu: smmu0, probe: bound}}}
${explore}`;

async function cli(args: string[], yaml: string): Promise<{ code: number; out: string; err: string; file: string }> {
  const file = join(tmp, `s${n++}.yaml`);
  writeFileSync(file, yaml);
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args.map((a) => (a === "FILE" ? file : a)), { out: (x) => out.push(x), err: (x) => err.push(x) });
  return { code, out: out.join("\n"), err: err.join("\n"), file };
}

describe("iommu-sim explore", () => {
  it("exit 1 with the schedule, the trace, what broke and the replay command, which reproduces it", async () => {
    const r = await cli(["explore", "FILE", "--workers", "1"], RACE("none"));
    expect(r.err).toBe("");
    expect(r.code).toBe(1);
    const schedule = /^schedule: (\S+)/m.exec(r.out)![1]!;
    expect(r.out).toContain(`${r.file}: found a failing schedule (half-initialised) after `);
    expect(r.out).toMatch(/^broken: events\[0\] step \d+ invariant: I35 half-initialised: a: /m);
    expect(r.out).toContain(`replay: iommu-sim run ${r.file} --schedule ${schedule} --trace`);
    // The trace printed is the replay's.
    const replay = await cli(["run", r.file, "--schedule", schedule, "--trace"], RACE("none"));
    expect(replay.code).toBe(1);
    expect(r.out.startsWith(replay.out.slice(0, replay.out.indexOf("\n\n")))).toBe(true);
    expect(replay.err).toContain("I35 half-initialised: a: ");
  });

  it("--json: the schema's keys; exit 0 when nothing fails", async () => {
    const bad = await cli(["explore", "FILE", "--json", "--workers", "1"], RACE("none"));
    expect(bad.code).toBe(1);
    const doc = JSON.parse(bad.out);
    expect(doc).toMatchObject({ schema_version: 1, command: "explore", mode: "dfs", bound: 2, violation: { kind: "half-initialised" } });
    expect(doc.violation.step).toMatch(/^events\[0\] step \d+$/);
    expect(doc.schedules).toBeGreaterThan(0);
    expect(doc.steps).toBeGreaterThan(0);
    expect(doc.replay).toBe(`iommu-sim run ${bad.file} --schedule ${doc.violation.schedule} --trace`);
    // Under the global probe lock, without the final expectation, no schedule within 2 preemptions fails.
    const ok = await cli(["explore", "FILE", "--json", "--workers", "1"], RACE("global-lock").replace(/ {2}- expect:.*\n/, ""));
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ violation: null, replay: null, bound: 2, exhaustive: false });
  });

  it("--strategy reaches the search and the replay command", async () => {
    const r = await cli(["explore", "FILE", "--workers", "1", "--strategy", "probe_serialisation=none"], RACE("global-lock").replace(/ {2}- expect:.*\n/, ""));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/replay: iommu-sim run \S+ --schedule \S+ --strategy probe_serialisation=none --trace/);
    expect(r.out).toMatch(/^broken: events\[0\] step \d+ invariant: I35 half-initialised: a: /m);
  });

  it.each([
    [["--bound", "0"], "--bound: expected a whole number from 1 to 1000, found '0'"],
    [["--bound", "x"], "--bound: expected a whole number from 1 to 1000, found 'x'"],
    [["--random", "10", "--bound", "2"], "--bound and --random exclude each other: the bound is for the systematic search"],
    [["--seed", "3"], "--seed goes with --random N"],
    [["--random", "0"], "--random: expected a whole number from 1 to 1000000000, found '0'"],
    [["--random", "x"], "--random: expected a whole number from 1 to 1000000000, found 'x'"],
    [["--workers", "0"], "--workers: expected a whole number from 1 to 256, found '0'"],
  ])("bad flags %j: exit 2", async (flags, msg) => {
    const r = await cli(["explore", "FILE", ...flags], RACE("none"));
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err).toBe(msg);
  });

  it.each([
    ["a block of one task", "      - [{device_add: a}]\n", /:\d+:\d+: events\[0\]\.concurrently: expected at least 2 items, found a list of 1 item \(a concurrently block runs two or more tasks/],
    ["an unknown device", "      - [{device_add: nobody}]\n      - [{iommu_register: smmu0}]\n", /:\d+:\d+: events\[0\]\.concurrently\[0\]\[0\]\.device_add: unknown device 'nobody'/],
    ["an unknown instance", "      - [{device_add: a}]\n      - [{iommu_register: smmu9}]\n", /:\d+:\d+: events\[0\]\.concurrently\[1\]\[0\]\.iommu_register: unknown IOMMU instance 'smmu9'/],
  ])("%s in a concurrently block: exit 2 from explore, check and run, located, nothing on stdout", async (_what, tasks, msg) => {
    const yaml = RACE("none").replace("      - [{device_add: a}]\n      - [{iommu_register: smmu0}]\n", tasks);
    for (const cmd of ["explore", "check", "run"]) {
      const r = await cli([cmd, "FILE"], yaml);
      expect(r.code, cmd).toBe(2);
      expect(r.out, cmd).toBe("");
      expect(r.err.startsWith(r.file), cmd).toBe(true);
      expect(r.err, cmd).toMatch(msg);
    }
  });

  it("a scenario without a concurrently block: exit 2, located", async () => {
    const r = await cli(["explore", "FILE"], "name: x\nevents:\n  - expect: {group_count: 0}\n");
    expect(r.code).toBe(2);
    expect(r.err).toBe(`${r.file}:2:1: events: nothing to explore: the scenario has no concurrently event`);
  });
});

describe("check with explore:", () => {
  it("asserts what the search must find, and replays it", async () => {
    const r = await cli(["check", "FILE"], RACE("none", "explore: {expect: violation, kind: half-initialised}\n"));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/explore: PASS: found a half-initialised violation as expected \(schedule \S+, after \d+ schedules?\), and its replay reproduces it: I35 half-initialised/);
    const json = JSON.parse((await cli(["check", "FILE", "--json"], RACE("none", "explore: {expect: violation, kind: half-initialised}\n"))).out);
    expect(json.explore).toMatchObject({ expect: "violation", result: "pass", replayed: true, violation: { kind: "half-initialised" } });
  });

  it("fails when the search finds what the scenario says it must not", async () => {
    const r = await cli(["check", "FILE"], RACE("none", "explore: {expect: none}\n"));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/explore: FAIL: expected no failing schedule, found half-initialised with schedule \S+: events\[0\] step \d+ I35 half-initialised/);
  });

  it("fails when it expects a kind of violation the search does not find", async () => {
    const r = await cli(["check", "FILE"], RACE("none", "explore: {expect: violation, kind: use-after-free}\n"));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/explore: FAIL: expected a use-after-free violation, the first failing schedule \S+ gives half-initialised/);
  });
});

describe("scenarios/races/", () => {
  const files = readdirSync("scenarios/races").filter((f) => f.endsWith(".yaml"));

  it("holds races found under one design and gone under another", () => {
    expect(files.length).toBeGreaterThanOrEqual(2);
  });

  it.each(files)("%s passes iommu-sim check, its explore: expectation included", async (f) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(["check", `scenarios/races/${f}`, "--workers", "1"], { out: (x) => out.push(x), err: (x) => err.push(x) });
    expect(err).toEqual([]);
    expect(out.join("\n")).toMatch(/explore: PASS: /);
    expect(code).toBe(0);
  });
});

describe("the README's explore examples", () => {
  const readme = readFileSync("README.md", "utf8");
  /** The time a search took is the one figure that changes from run to run. */
  const untimed = (t: string) => t.replace(/, \d+(\.\d+)? s\)/g, ", T s)");
  const shown = (cmd: string) => {
    const at = readme.indexOf(`$ ${cmd}\n`);
    expect(at, cmd).toBeGreaterThan(0);
    const rest = readme.slice(at + cmd.length + 3);
    return rest.slice(0, rest.indexOf("```"));
  };
  const printed = async (args: string[]) => {
    const out: string[] = [];
    const code = await main(args, { out: (x) => out.push(x), err: (x) => out.push(x) });
    return { code, text: out.join("\n") + "\n" };
  };

  it.each(["probe-race-none", "probe-race-global-lock"])("iommu-sim explore scenarios/races/%s.yaml", async (name) => {
    const r = await printed(["explore", `scenarios/races/${name}.yaml`, "--workers", "1"]);
    expect(untimed(r.text)).toBe(untimed(shown(`iommu-sim explore scenarios/races/${name}.yaml --workers 1`)));
    expect(r.code).toBe(name.endsWith("none") ? 1 : 0);
  });

  it("the replay's summary", async () => {
    const r = await printed(["run", "scenarios/races/probe-race-none.yaml", "--schedule", "a10b5a"]);
    const tail = shown("iommu-sim run scenarios/races/probe-race-none.yaml --schedule a10b5a").replace(/^…\n/, "");
    expect(r.text.endsWith(tail)).toBe(true);
    expect(r.code).toBe(1);
  });
});

describe("the command as a process", () => {
  it("explores with two worker threads from the sources (tsx) and prints what one thread prints", () => {
    const file = join(tmp, "proc.yaml");
    writeFileSync(file, RACE("none"));
    const entry = ["--import", "tsx", "--input-type=module", "-e", "import { main } from './src/cli/main.ts'; process.exitCode = await main(process.argv.slice(1));", "--"];
    const run = (w: string) => spawnSync(process.execPath, [...entry, "explore", file, "--json", "--workers", w], { encoding: "utf8" });
    const two = run("2");
    const one = run("1");
    expect(two.stderr).toBe("");
    expect(two.status).toBe(1);
    expect(JSON.parse(two.stdout)).toEqual(JSON.parse(one.stdout));
  }, 60_000);
});
