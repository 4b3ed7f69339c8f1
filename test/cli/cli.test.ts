import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { main } from "../../src/cli/main.ts";

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const tmp = mkdtempSync(join(tmpdir(), "iommu-sim-cli-"));
function file(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

describe("iommu-sim CLI", () => {
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

  it("--ops-resolution overrides the strategy, and rejects an unknown one", async () => {
    const r = await cli("run", "scenarios/x86-mock-wrong-ops.yaml", "--json", "--ops-resolution", "ask-each");
    const snap = JSON.parse(r.out) as { devices: { name: string; ops: string | null }[] };
    expect(snap.devices.find((d) => d.name === "iommufd_mock0")?.ops).toBe("mock");
    const bad = await cli("run", "scenarios/default.yaml", "--ops-resolution", "magic");
    expect(bad.code).toBe(2);
    // The flag (the key it overrides), the bad value and the allowed ones; nothing ran, no stack trace.
    expect(bad.err).toBe("--ops-resolution: unknown strategy 'magic' (one of upstream, ask-each)");
    expect(bad.out).toBe("");
  });

  it("check takes the strategy flags too: the upstream expectations fail under ask-each", async () => {
    const r = await cli("check", "scenarios/x86-mock-wrong-ops.yaml", "--ops-resolution", "ask-each");
    expect(r.code).toBe(1);
    expect(r.out).toContain('devices.iommufd_mock0.ops: expected null, got "mock"');
    const bad = await cli("check", "scenarios/x86-mock-wrong-ops.yaml", "--domain-alloc", "nope");
    expect(bad.code).toBe(2);
    expect(bad.err).toBe("--domain-alloc: unknown strategy 'nope' (one of device-ops, bus-null-device)");
    expect(bad.out).toBe("");
  });

  it("an unknown command exits 2", async () => {
    const r = await cli("frobnicate");
    expect(r.code).toBe(2);
    expect(r.err).toBe("error: unknown command 'frobnicate'");
    expect(r.out).toBe("");
  });
});
