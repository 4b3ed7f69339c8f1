import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { SCHEMA_VERSION } from "../../src/cli/commands.ts";
import { cli } from "../cli-run.ts";
import { main } from "../../src/cli/main.ts";
import { packageVersionFrom } from "../../src/cli/version.ts";


const tmp = mkdtempSync(join(tmpdir(), "iommu-sim-cli-"));
function file(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

describe("iommu-sim CLI", () => {
  it("JSON is indented on a terminal and one compact line to a pipe or a file, the same document either way", async () => {
    const run = async (tty: boolean) => {
      const out: string[] = [];
      const code = await main(["run", "scenarios/default.yaml", "--json"], { out: (s) => out.push(s), err: () => {}, tty });
      return { code, text: out.join("\n") };
    };
    const term = await run(true);
    const pipe = await run(false);
    expect([term.code, pipe.code]).toEqual([0, 0]);
    expect(term.text.split("\n").length).toBeGreaterThan(100);
    expect(term.text).toMatch(/^{\n {2}"schema_version": 1,/);
    expect(pipe.text.split("\n")).toHaveLength(1);
    expect(JSON.parse(pipe.text)).toEqual(JSON.parse(term.text));
  });

  it("run prints the sysfs-like view and exits 0 when everything holds", async () => {
    const r = await cli("run", "scenarios/default.yaml");
    expect(r.code).toBe(0);
    expect(r.out).toContain("/sys/kernel/iommu_groups");
    expect(r.out).toMatch(/│ {3}├── devices\/ {2}0000:04:00\.0 {2}0000:04:00\.1/);
    // The devices and instances sections: who serves each device, and each instance's devices.
    expect(r.out).toMatch(/^ {2}0000:03:00\.0 +pci +iommu=dmar1 \(intel-iommu\) +group \d+ +domain \d+ +driver=nvme +bound$/m);
    expect(r.out).toMatch(/^ {2}iommufd_mock0 +iommufd_mock +iommu=mock-iommu \(mock\) /m);
    expect(r.out).toMatch(/^ {2}mock-iommu +mock +registered +fwnode=swnode:mock-iommu +devices: iommufd_mock0$/m);
    expect(r.out).toMatch(/^ {2}dmar0 +intel-iommu +registered +fwnode=none +devices: 0000:00:02\.0$/m);
    expect(r.out).toContain("PASS:");
  });

  it("run prints each group's type and reserved_regions as sysfs shows them, agreeing with --json", async () => {
    const r = await cli("run", "scenarios/passthrough-cmdline.yaml");
    expect(r.code).toBe(0);
    const lines = r.out.split("\n");
    // The group of 03:00.0: DMA (its driver's def_domain_type), its RMRR 0x7c000000+2M as a direct
    // region before the x86 MSI window, both "0x%016llx 0x%016llx %s" and sorted by start.
    const at = lines.findIndex((l, i) => /^├── \d+$/.test(l) && lines[i + 1] === "│   ├── devices/  0000:03:00.0");
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 1, at + 6)).toEqual([
      "│   ├── devices/  0000:03:00.0",
      "│   ├── type      DMA",
      "│   └── reserved_regions",
      "│         0x000000007c000000 0x000000007c1fffff direct",
      "│         0x00000000fee00000 0x00000000feefffff msi",
    ]);
    // A group under iommu.passthrough=1 with no preference is identity.
    expect(r.out).toMatch(/├── devices\/ {2}0000:00:01\.0\n│ {3}├── type {6}identity\n│ {3}└── reserved_regions\n│ {9}0x00000000fee00000 0x00000000feefffff msi\n/);

    // Every group's block in the tree says what the JSON snapshot says.
    const snap = JSON.parse((await cli("run", "scenarios/passthrough-cmdline.yaml", "--json")).out) as {
      groups: { id: number; devices: string[]; type: string; reserved_regions: string[] }[];
    };
    expect(snap.groups.length).toBeGreaterThan(5);
    for (const g of snap.groups) {
      const last = g === snap.groups.at(-1);
      const pad = last ? "    " : "│   ";
      const i = lines.indexOf(`${last ? "└── " : "├── "}${g.id}`);
      expect(i).toBeGreaterThan(0);
      expect(lines.slice(i + 1, i + 4 + g.reserved_regions.length)).toEqual([
        `${pad}├── devices/  ${g.devices.join("  ")}`,
        `${pad}├── type      ${g.type}`,
        `${pad}└── reserved_regions${g.reserved_regions.length === 0 ? "  (empty)" : ""}`,
        ...g.reserved_regions.map((x) => `${pad}      ${x}`),
      ]);
    }
  });

  it("a group without reserved regions shows an empty reserved_regions, and the mock's static blocked default domain as type blocked", async () => {
    const r = await cli("run", "scenarios/default.yaml");
    expect(r.out).toMatch(/└── \d+\n {4}├── devices\/ {2}iommufd_mock0\n {4}├── type {6}blocked\n {4}└── reserved_regions {2}\(empty\)\n/);
  });

  it("run --json prints the snapshot with the contract's keys", async () => {
    const r = await cli("run", "scenarios/arm64-late-smmu.yaml", "--json");
    expect(r.code).toBe(0);
    const snap = JSON.parse(r.out) as Record<string, unknown>;
    for (const k of ["iommus", "devices", "groups", "domains", "events", "violations"]) expect(snap).toHaveProperty(k);
    expect(snap.events).toEqual([
      { event: "iommu_register", arg: "smmu0", result: "ok" },
      { event: "iommu_register", arg: "smmu0", result: "EEXIST" },
      { event: "iommu_unregister", arg: "smmu0", result: "ok" },
    ]);
  });

  it("run --trace prints the core calls by their kernel names", async () => {
    const r = await cli("run", "scenarios/arm64-late-smmu.yaml", "--trace");
    expect(r.out).toMatch(/iommu_device_register\(smmu0\) = 0\n\s+bus_iommu_probe\(platform\) = 0\n\s+__iommu_probe_device\(ufs@1d84000\) = 0/);
  });

  it("run --json --trace prints one JSON document whose trace is the list of call records", async () => {
    const r = await cli("run", "scenarios/arm64-late-smmu.yaml", "--json", "--trace");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as { devices: unknown[]; trace: { fn: string; subject: string; result: string | null; kind: string }[] };
    expect(doc.devices.length).toBeGreaterThan(0);
    const reg = doc.trace.findIndex((t) => t.kind === "call" && t.fn === "iommu_device_register" && t.subject === "smmu0");
    expect(reg).toBeGreaterThanOrEqual(0);
    expect(doc.trace[reg]!.result).toBe("0");
    expect(doc.trace.slice(reg).some((t) => t.fn === "__iommu_probe_device" && t.subject === "ufs@1d84000")).toBe(true);
  });

  it("refuses a file that is neither .yaml, .yml nor .json, with exit 2 and a message naming it", async () => {
    const p = file("scenario.txt", readFileSync("scenarios/mixed-drivers.yaml", "utf8"));
    for (const cmd of ["validate", "check", "run"]) {
      const r = await cli(cmd, p);
      expect(r.code).toBe(2);
      expect(r.err).toContain(p);
      expect(r.err).toMatch(/\.yaml.*\.json/);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
  });

  it("accepts a .json scenario", async () => {
    const json = JSON.stringify(parse(readFileSync("scenarios/mixed-drivers.yaml", "utf8")));
    const r = await cli("check", file("mixed.json", json));
    expect(r.code).toBe(0);
  });

  it("check exits 1 and names the step when an expectation fails", async () => {
    const p = file("fail.yaml", "name: f\ndevices:\n  - {name: a, bus: platform}\nevents:\n  - expect: {devices: {a: {probe: bound}}}\n");
    const r = await cli("check", p);
    expect(r.code).toBe(1);
    expect(r.out).toContain('events[0] expectation: devices.a.probe: expected "bound", got "none"');
  });

  it("a malformed file exits 2 with the file, key path and problem, and no stack trace", async () => {
    const p = file("bad.yaml", "name: b\ndevices:\n  - {name: a, bus: platform, iommus: [[nope, 1]], fwnode: /a}\n");
    for (const cmd of ["run", "check", "validate"]) {
      const r = await cli(cmd, p);
      expect(r.code).toBe(2);
      expect(r.err).toBe(`${p}:3:40: devices[0].iommus[0][0]: unknown IOMMU instance 'nope': the scenario has no IOMMU instance at all`);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
  });

  it("a missing file exits 2", async () => {
    const r = await cli("validate", join(tmp, "nope.yaml"));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/nope\.yaml: \(top level\): cannot read the file/);
    expect(r.err.startsWith(`${join(tmp, "nope.yaml")}: (top level): cannot read the file`)).toBe(true);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.out).toBe("");
  });

  it("validate reports a valid file", async () => {
    const r = await cli("validate", "scenarios/two-smmus-unregister.yaml");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/valid scenario "two SMMUv3 instances, one unregistered" \(2 IOMMU instances, 10 devices, 5 drivers, 9 events\)/);
  });

  it("--strategy AXIS=NAME overrides the strategy, and rejects an unknown axis or name, listing the valid ones", async () => {
    const r = await cli("run", "scenarios/x86-mock-wrong-ops.yaml", "--json", "--strategy", "ops_resolution=ask-each");
    const snap = JSON.parse(r.out) as { devices: { name: string; ops: string | null }[]; strategy: Record<string, string> };
    expect(snap.devices.find((d) => d.name === "iommufd_mock0")?.ops).toBe("mock");
    expect(snap.strategy.ops_resolution).toBe("ask-each");
    const bad = await cli("run", "scenarios/default.yaml", "--strategy", "ops_resolution=magic");
    expect(bad.code).toBe(2);
    // The flag, the axis, the bad value and the allowed ones; nothing ran, no stack trace.
    expect(bad.err).toMatch(/^--strategy: ops_resolution: unknown strategy 'magic' \(one of bus-set-iommu, bus-ops, upstream, ask-each\)$/);
    expect(bad.out).toBe("");
    const axis = await cli("run", "scenarios/default.yaml", "--strategy", "ops_resolutoin=upstream");
    expect(axis.code).toBe(2);
    expect(axis.err).toMatch(/^--strategy: unknown axis 'ops_resolutoin' \(one of ops_resolution, [^)]*\); did you mean 'ops_resolution'\?$/);
    const form = await cli("run", "scenarios/default.yaml", "--strategy", "upstream");
    expect(form).toMatchObject({ code: 2, out: "" });
    expect(form.err).toMatch(/^--strategy: 'upstream' is not AXIS=NAME \(axes: ops_resolution, /);
    const twice = await cli("run", "scenarios/default.yaml", "--strategy", "ops_resolution=upstream", "--strategy", "ops_resolution=ask-each");
    expect(twice).toMatchObject({ code: 2, err: "--strategy: ops_resolution is named twice (upstream and ask-each)" });
  });

  it("--kernel runs the scenario as a release had it, and rejects an unknown release, listing the presets", async () => {
    const r = await cli("run", "scenarios/default.yaml", "--json", "--kernel", "v6.12");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ kernel: "v6.12", strategy: { domain_alloc: "device-ops" } });
    const bad = await cli("run", "scenarios/default.yaml", "--kernel", "v6.9");
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^--kernel: unknown kernel preset 'v6\.9' \(one of v5\.15, v6\.1, v6\.6, v6\.7, v6\.8, v6\.12, v6\.15, v6\.16, current\)/);
  });

  it("check takes the strategy flags too: the upstream expectations fail under ask-each", async () => {
    const r = await cli("check", "scenarios/x86-mock-wrong-ops.yaml", "--strategy", "ops_resolution=ask-each");
    expect(r.code).toBe(1);
    expect(r.out).toContain('devices.iommufd_mock0.ops: expected null, got "mock"');
    const bad = await cli("check", "scenarios/x86-mock-wrong-ops.yaml", "--strategy", "domain_alloc=nope");
    expect(bad.code).toBe(2);
    expect(bad.err).toBe("--strategy: domain_alloc: unknown strategy 'nope' (one of device-ops, bus-null-device)");
    expect(bad.out).toBe("");
  });

  it("a usage error exits 64: unknown command or option, missing or extra argument, no command", async () => {
    const cases: [string[], string][] = [
      [["frobnicate"], "error: unknown command 'frobnicate'"],
      [["run", "--bogus", "scenarios/default.yaml"], "error: unknown option '--bogus'"],
      [["check"], "error: missing required argument 'file'"],
      [["validate", "a.yaml", "b.yaml"], "error: too many arguments for 'validate'. Expected 1 argument but got 2."],
      [["run", "scenarios/default.yaml", "--kernel"], "error: option '--kernel <version>' argument missing"],
    ];
    for (const [argv, msg] of cases) {
      const r = await cli(...argv);
      expect(r.code, argv.join(" ")).toBe(64);
      expect(r.err, argv.join(" ")).toBe(msg);
      expect(r.out, argv.join(" ")).toBe("");
    }
    const none = await cli();
    expect(none.code).toBe(64);
    expect(none.err).toContain("Usage: iommu-sim [options] [command]");
    expect(none.err).toContain("64 a usage error");
  });

  it("--version prints the version in package.json, and --help exits 0", async () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    for (const flag of ["--version", "-V"]) expect(await cli(flag)).toEqual({ code: 0, out: pkg.version, err: "" });
    const help = await cli("--help");
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: iommu-sim/);
    const runHelp = await cli("run", "--help");
    const words = runHelp.out.replace(/\s+/g, " ");
    // Every axis with its strategies, and every kernel preset.
    expect(words).toMatch(/--strategy <axis=name> .*\(ops_resolution: bus-set-iommu\|bus-ops\|upstream\|ask-each; fwspec_ops: fwspec-carries-ops\|from-fwnode; .*domain_alloc: device-ops\|bus-null-device/);
    expect(words).toContain("(v5.15, v6.1, v6.6, v6.7, v6.8, v6.12, v6.15, v6.16, current)");
    const diffHelp = (await cli("diff", "--help")).out.replace(/\s+/g, " ");
    expect(diffHelp).toContain("--a <set> the first design: a kernel preset, or AXIS=NAME[,AXIS=NAME]");
    expect(words).toContain("or - to read it from stdin");
  });
});

describe("--version reads package.json relative to the module", () => {
  it("two levels up (src/cli/ or dist/cli/), else the nearest iommu-sim package.json above, else unknown", () => {
    const root = mkdtempSync(join(tmpdir(), "iommu-sim-version-"));
    const at = (rel: string, text: string) => {
      mkdirSync(dirname(join(root, rel)), { recursive: true });
      writeFileSync(join(root, rel), text);
    };
    at("pkg/package.json", JSON.stringify({ name: "iommu-sim", version: "9.8.7" }));
    at("pkg/dist/cli/version.js", "");
    at("pkg/lib/deep/er/x/version.js", "");
    at("pkg/lib/deep/package.json", JSON.stringify({ name: "something-else", version: "1.0.0" }));
    at("lone/a/b/version.js", "");
    expect(packageVersionFrom(pathToFileURL(join(root, "pkg/dist/cli/version.js")))).toBe("9.8.7");
    expect(packageVersionFrom(pathToFileURL(join(root, "pkg/lib/deep/er/x/version.js")))).toBe("9.8.7");
    expect(packageVersionFrom(pathToFileURL(join(root, "lone/a/b/version.js")))).toBe("unknown");
  });
});

describe("JSON documents carry schema_version", () => {
  it("run --json: the snapshot with schema_version first", async () => {
    const r = await cli("run", "scenarios/default.yaml", "--json");
    const doc = JSON.parse(r.out) as Record<string, unknown>;
    expect(Object.keys(doc)[0]).toBe("schema_version");
    expect(doc.schema_version).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(1);
  });

  it("check --json: the verdict, counts, violations and failures", async () => {
    const pass = await cli("check", "scenarios/arm64-late-smmu.yaml", "--json");
    expect(pass.code).toBe(0);
    expect(JSON.parse(pass.out)).toEqual({
      schema_version: 1,
      command: "check",
      file: "scenarios/arm64-late-smmu.yaml",
      result: "pass",
      expectations: { passed: 4, failed: 0 },
      violations: [],
      expected_violations: [],
      failures: [],
      cmdline: [{ option: "iommu.strict=1", status: "modelled", message: expect.any(String) }],
      problems: [],
    });
    const fail = await cli("check", file("fail-json.yaml", "name: f\ndevices:\n  - {name: a, bus: platform}\nevents:\n  - expect: {devices: {a: {probe: bound}}}\n"), "--json");
    expect(fail.code).toBe(1);
    expect(JSON.parse(fail.out)).toMatchObject({
      schema_version: 1,
      result: "fail",
      expectations: { passed: 0, failed: 1 },
      failures: [{ step: "events[0]", kind: "expectation", message: 'devices.a.probe: expected "bound", got "none"' }],
    });
    const bad = await cli("check", file("bad-json.yaml", "name: b\ndevices:\n  - {name: a, bus: platfrom}\n"), "--json");
    expect(bad.code).toBe(2);
    expect(bad.err).toBe("");
    expect(JSON.parse(bad.out)).toEqual({
      schema_version: 1,
      command: "check",
      file: join(tmp, "bad-json.yaml"),
      result: "invalid",
      problems: [{ file: join(tmp, "bad-json.yaml"), line: 3, col: 15, path: "devices[0].bus", message: "expected one of platform, pci, amba, iommufd_mock, found 'platfrom'; did you mean 'platform'?" }],
    });
  });

  it("validate --json: valid with the counts, or the problems", async () => {
    const ok = await cli("validate", "scenarios/two-smmus-unregister.yaml", "--json");
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toEqual({
      schema_version: 1,
      command: "validate",
      file: "scenarios/two-smmus-unregister.yaml",
      valid: true,
      scenario: { name: "two SMMUv3 instances, one unregistered", iommus: 2, devices: 10, drivers: 5, events: 9 },
      cmdline: [],
      problems: [],
    });
    const bad = await cli("validate", join(tmp, "missing.json"), "--json");
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.out)).toMatchObject({ schema_version: 1, valid: false, problems: [{ path: "(top level)", message: expect.stringMatching(/^cannot read the file/) }] });
  });
});

describe("- reads the scenario from stdin", () => {
  async function viaStdin(text: string, ...argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main([...argv, "-"], { out: (s) => out.push(s), err: (s) => err.push(s), readStdin: async () => text });
    return { code, out: out.join("\n"), err: err.join("\n") };
  }

  it("as JSON when it starts with { or [, else as YAML", async () => {
    const yaml = readFileSync("scenarios/mixed-drivers.yaml", "utf8");
    const json = JSON.stringify(parse(yaml));
    for (const text of [yaml, json, ` \n${json}`, `# a comment first\n${json}`]) {
      const r = await viaStdin(text, "check");
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^<stdin>: PASS/);
    }
  });

  it("names it <stdin> in messages, JSON errors too", async () => {
    expect(await viaStdin('{"name": "x", "devices": [{"name": "a", "bus": "pcie"}]}', "validate")).toEqual({
      code: 2,
      out: "",
      err: "<stdin>:1:41: devices[0].bus: expected one of platform, pci, amba, iommufd_mock, found 'pcie'; did you mean 'pci'?",
    });
    expect(await viaStdin('{"name": "x",}', "validate")).toEqual({
      code: 2,
      out: "",
      err: "<stdin>:1:14: (top level): not valid JSON: expected a double-quoted key (JSON allows no trailing comma), found '}' (text that starts with { or [ is read as JSON)",
    });
    expect((await viaStdin("{name: flow}", "validate")).err).toBe(
      "<stdin>:1:2: (top level): not valid JSON: expected a double-quoted key or '}', found 'name' (text that starts with { or [ is read as JSON)",
    );
  });
});

describe("exit codes", () => {
  it("1 for an event that fails without expect_error, naming its index, kind, argument, errno and message", async () => {
    const p = file(
      "unexpected.yaml",
      "name: u\niommus:\n  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu}\nevents:\n  - iommu_register: smmu0\n  - {iommu_register: smmu0, expect_error: EEXIST}\n",
    );
    const line = "  events[0] unexpected_error: iommu_register smmu0: failed with EEXIST: ";
    const check = await cli("check", p);
    expect(check.code).toBe(1);
    expect(check.out.split("\n")[0]).toBe(`${p}: FAIL: 1 expectation(s) passed, 1 failed; invariants hold; 1 event(s) failed without expect_error`);
    expect(check.out.split("\n")[1]).toMatch(new RegExp(`^${line.replace(/[[\]().]/g, "\\$&")}.+ \\(add expect_error: EEXIST if the failure is intended\\)$`));
    const run = await cli("run", p);
    expect(run.code).toBe(1);
    expect(run.err.split("\n")[0]).toMatch(/^ {2}events\[0\] unexpected_error: iommu_register smmu0: failed with EEXIST: /);
    const json = await cli("check", p, "--json");
    expect(JSON.parse(json.out)).toMatchObject({ result: "fail", failures: [{ step: "events[0]", kind: "unexpected_error" }] });
  });

  it("2 for a flag value no strategy has, with the closest name", async () => {
    const r = await cli("check", "scenarios/default.yaml", "--strategy", "ops_resolution=ask_each");
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/^--strategy: ops_resolution: unknown strategy 'ask_each' \(one of [^)]*\); did you mean 'ask-each'\?$/);
  });
});
