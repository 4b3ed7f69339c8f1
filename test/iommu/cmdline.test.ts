import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { cmdlineParams, kstrtobool, parseCmdline, type CmdlineStatus } from "../../src/iommu/cmdline.ts";
import { run } from "../helpers.ts";

const statusOf = (cmdline: string, arch: "x86" | "arm64") => parseCmdline(cmdline, arch).notes.map((n) => [n.option, n.status]);

describe("kstrtobool", () => {
  it("takes the kernel's first letters, and on/off by their second", () => {
    for (const t of ["1", "y", "Y", "yes", "t", "true", "T", "e", "enable", "on", "ON", "oN"]) expect(kstrtobool(t), t).toBe(true);
    for (const f of ["0", "n", "No", "f", "false", "d", "disable", "off", "OFF", "oF"]) expect(kstrtobool(f), f).toBe(false);
    for (const bad of [null, "", "banana", "2", "o", "ox", " 1"]) expect(kstrtobool(bad), String(bad)).toBeNull();
  });
});

describe("the command line is split as the kernel's next_arg splits it", () => {
  it("on white space, keeping quoted spaces, stopping at --", () => {
    expect(cmdlineParams(' iommu.strict=1  foo="a b" bar -- iommu=pt')).toEqual([
      { key: "iommu.strict", value: "1", text: "iommu.strict=1" },
      { key: "foo", value: "a b", text: 'foo="a b"' },
      { key: "bar", value: null, text: "bar" },
    ]);
  });
});

describe("every IOMMU option of the kernel is modelled or named as not modelled", () => {
  // From the early_param/__setup handlers and module parameters of the kernel (cmdline.ts names the files).
  const X86: [string, CmdlineStatus][] = [
    ["iommu.passthrough=1", "modelled"],
    ["iommu.strict=0", "modelled"],
    ["iommu.forcedac=0", "modelled"],
    ["iommu.forcedac=1", "not-modelled"],
    ["iommu=pt", "modelled"],
    ["iommu=nopt", "modelled"],
    ["iommu=off", "not-modelled"],
    ["iommu=soft", "not-modelled"],
    ["iommu=forcesac", "not-modelled"],
    ["iommu=usedac", "not-modelled"],
    ["iommu=noaperture", "not-modelled"],
    ["intel_iommu=on", "modelled"],
    ["intel_iommu=strict", "modelled"],
    ["intel_iommu=off", "not-modelled"],
    ["intel_iommu=igfx_off", "not-modelled"],
    ["intel_iommu=forcedac", "not-modelled"],
    ["intel_iommu=sp_off", "not-modelled"],
    ["intel_iommu=sm_on", "not-modelled"],
    ["intel_iommu=sm_off", "not-modelled"],
    ["intel_iommu=tboot_noforce", "not-modelled"],
    ["amd_iommu=fullflush", "modelled"],
    ["amd_iommu=force_enable", "not-modelled"],
    ["amd_iommu=off", "not-modelled"],
    ["amd_iommu=force_isolation", "not-modelled"],
    ["amd_iommu=pgtbl_v1", "not-modelled"],
    ["amd_iommu=pgtbl_v2", "not-modelled"],
    ["amd_iommu=irtcachedis", "not-modelled"],
    ["amd_iommu=nohugepages", "not-modelled"],
    ["amd_iommu=v2_pgsizes_only", "not-modelled"],
    ["amd_iommu_dump", "not-modelled"],
    ["amd_iommu_intr=vapic", "not-modelled"],
    ["ivrs_ioapic=4@0000:00:14.0", "not-modelled"],
    ["ivrs_ioapic[4]=00:14.0", "not-modelled"],
    ["ivrs_hpet=0@00:14.0", "not-modelled"],
    ["ivrs_acpihid=AMD0020:0@0001:00:14.5", "not-modelled"],
    ["ivrs_acpihid[00:14.5]=AMD0020:0", "not-modelled"],
    ["intremap=off", "not-modelled"],
    ["nointremap", "not-modelled"],
    ["swiotlb=force", "not-modelled"],
    ["pci=noats", "not-modelled"],
    ["pci=config_acs=000000@pci:0:0", "not-modelled"],
  ];
  const ARM64: [string, CmdlineStatus][] = [
    ["iommu.passthrough=0", "modelled"],
    ["iommu.strict=1", "modelled"],
    ["arm-smmu.disable_bypass=0", "not-modelled"],
    ["arm_smmu.disable_bypass", "not-modelled"],
    ["arm-smmu.force_stage=2", "not-modelled"],
    ["arm_smmu_v3.disable_msipolling=1", "not-modelled"],
    ["swiotlb=65536", "not-modelled"],
  ];

  it.each([
    ["x86", X86],
    ["arm64", ARM64],
  ] as const)("on %s", (arch, table) => {
    for (const [opt, status] of table) {
      const p = parseCmdline(opt, arch);
      expect(p.errors, opt).toEqual([]);
      expect(p.notes, opt).toEqual([{ option: opt, status, message: expect.any(String) }]);
      expect(p.notes[0]!.message.length, opt).toBeGreaterThan(10);
    }
  });

  it("unknown options, sub-options and other architectures' options are named unknown", () => {
    expect(statusOf("quiet console=ttyS0 intel_iommu=on,bogus amd_iommu=nope pci=nomsi iommu=banana", "x86")).toEqual([
      ["quiet", "unknown"],
      ["console=ttyS0", "unknown"],
      ["intel_iommu=on", "modelled"],
      ["intel_iommu=bogus", "unknown"],
      ["amd_iommu=nope", "unknown"],
      ["pci=nomsi", "unknown"],
      ["iommu=banana", "unknown"],
    ]);
    expect(statusOf("iommu=pt intel_iommu=on amd_iommu_dump", "arm64")).toEqual([
      ["iommu=pt", "unknown"],
      ["intel_iommu=on", "unknown"],
      ["amd_iommu_dump", "unknown"],
    ]);
    expect(statusOf("arm-smmu.disable_bypass=1", "x86")).toEqual([["arm-smmu.disable_bypass=1", "unknown"]]);
  });

  it("malformed values are errors that name the option, what it takes and what it got", () => {
    expect(parseCmdline("iommu.strict=banana iommu.passthrough iommu.forcedac=2", "arm64").errors).toEqual([
      "iommu.strict=banana: expected a boolean (1/0, y/n, on/off, true/false), found 'banana'",
      "iommu.passthrough: expected a boolean (1/0, y/n, on/off, true/false), found no value",
      "iommu.forcedac=2: expected a boolean (1/0, y/n, on/off, true/false), found '2'",
    ]);
    expect(parseCmdline("iommu= ivrs_hpet=foo arm-smmu.force_stage=x", "x86").errors).toEqual([
      "iommu: expected iommu=WORD[,WORD…] (pt, nopt, off, …), found an empty value",
      "ivrs_hpet: expected ivrs_hpet=ID@[SSSS:]BB:DD.F, found 'ivrs_hpet=foo' (the kernel prints \"Invalid command line\")",
    ]);
    expect(parseCmdline("arm-smmu.force_stage=x arm-smmu.disable_bypass=maybe", "arm64").errors).toEqual([
      "arm-smmu.force_stage: expected an integer (1 or 2 forces that stage), found 'x'",
      "arm-smmu.disable_bypass=maybe: expected a boolean (1/0, y/n, on/off, true/false), found 'maybe'",
    ]);
  });
});

describe("the options the model honours change the boot as the kernel's do", () => {
  const X86 = (cmdline: string) => `
name: x86
boot: {cmdline: "${cmdline}"}
iommus:
  - {name: dmar, driver: intel-iommu, scope: all}
devices:
  - {name: "0000:00:02.0", bus: pci}
`;
  const typeOf = (cmdline: string) => run(X86(cmdline)).snapshot.groups[0]!.type;

  it("intel_iommu=strict and amd_iommu=fullflush make DMA domains strict, after every early option", () => {
    expect(typeOf("")).toBe("DMA-FQ");
    expect(typeOf("intel_iommu=strict")).toBe("DMA");
    expect(typeOf("amd_iommu=fullflush")).toBe("DMA");
    // __setup handlers run after every early_param: iommu.strict=0 cannot undo them.
    expect(typeOf("intel_iommu=strict iommu.strict=0")).toBe("DMA");
    expect(typeOf("iommu.strict=0")).toBe("DMA-FQ");
  });

  it("iommu=pt is x86's: on arm64 it is unknown and changes nothing", () => {
    expect(typeOf("iommu=pt")).toBe("identity");
    const arm = run(`
name: arm
boot: {cmdline: "iommu=pt"}
iommus:
  - {name: s, driver: arm-smmu-v3, fwnode: /s}
devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[s, 1]]}
`).snapshot;
    expect(arm.groups[0]!.type).toBe("DMA");
    expect(arm.cmdline).toEqual([{ option: "iommu=pt", status: "unknown", message: expect.stringContaining("x86 option") }]);
  });

  it("options not modelled change nothing", () => {
    const plain = run(X86("")).snapshot;
    const noted = run(X86("intel_iommu=sm_on,sp_off swiotlb=force quiet")).snapshot;
    expect({ ...noted, cmdline: [] }).toEqual(plain);
  });
});

describe("command-line warnings reach the user", () => {
  async function cli(cmdline: string, ...argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const text = `name: w\nboot: {arch: x86, cmdline: "${cmdline}"}\niommus:\n  - {name: dmar, driver: intel-iommu, scope: all}\ndevices:\n  - {name: "0000:00:02.0", bus: pci}\n`;
    const code = await main([...argv, "-"], { out: (s) => out.push(s), err: (s) => err.push(s), readStdin: async () => text });
    return { code, out: out.join("\n"), err: err.join("\n") };
  }

  it("on stderr in text mode, one line per option the model does not honour", async () => {
    for (const cmd of ["run", "check", "validate"]) {
      const r = await cli("iommu.strict=1 intel_iommu=sm_on quiet", cmd);
      expect(r.code, cmd).toBe(0);
      expect(r.err.split("\n"), cmd).toEqual([
        "iommu-sim: warning: boot.cmdline: intel_iommu=sm_on: not modelled: scalable mode is not modelled (the model's VT-d tables are second-stage legacy mode)",
        "iommu-sim: warning: boot.cmdline: quiet: unknown option: not an IOMMU option the model knows; ignored",
      ]);
    }
  });

  it("in the JSON documents, with the modelled ones too", async () => {
    const notes = [
      { option: "iommu.strict=1", status: "modelled", message: "strict invalidation: DMA domains are DMA, not DMA-FQ" },
      { option: "intel_iommu=sm_on", status: "not-modelled", message: expect.stringContaining("scalable mode") },
    ];
    const run = await cli("iommu.strict=1 intel_iommu=sm_on", "run", "--json");
    expect(run.err).toBe("");
    expect((JSON.parse(run.out) as { cmdline: unknown }).cmdline).toEqual(notes);
    for (const cmd of ["check", "validate"]) {
      const r = await cli("iommu.strict=1 intel_iommu=sm_on", cmd, "--json");
      expect(r.err, cmd).toBe("");
      expect((JSON.parse(r.out) as { cmdline: unknown }).cmdline, cmd).toEqual(notes);
    }
  });

  it("a malformed value exits 2 at boot.cmdline in every command", async () => {
    for (const cmd of ["run", "check", "validate"]) {
      const r = await cli("iommu.strict=banana", cmd);
      expect(r.code, cmd).toBe(2);
      expect(r.err, cmd).toBe("<stdin>:2:19: boot.cmdline: iommu.strict=banana: expected a boolean (1/0, y/n, on/off, true/false), found 'banana'");
    }
  });
});
