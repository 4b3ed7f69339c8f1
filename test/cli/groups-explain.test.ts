/**
 * `iommu-sim groups` and `iommu-sim explain` (with --what-if and --json)
 * on the lspci fixtures and on small scenarios: the listing, viability by
 * the kernel's ownership rules, the rule behind each member of a group,
 * and what a change would do to the groups.
 */
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";

const Z270 = "test/fixtures/lspci/intel-z270-gtx1070.vvnn.txt";
const X570 = "test/fixtures/lspci/amd-x570-rx5700.vvnn.txt";

async function cli(argv: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s), tty: false, ...(stdin === undefined ? {} : { readStdin: async () => stdin }) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("groups", () => {
  it("lists every function by group with the VFIO column, from an lspci dump", async () => {
    const r = await cli(["groups", Z270]);
    expect(r.code).toBe(0);
    const lines = r.out.split("\n");
    expect(lines).toContain("viable  IOMMU Group 1: 01:00.0 VGA compatible controller: NVIDIA Corporation GP104 [GeForce GTX 1070] [10de:1b81]  (vfio-pci)");
    expect(lines).toContain("in use  IOMMU Group 10: 00:1f.3 Audio device: Intel Corporation 200 Series PCH HD Audio [8086:a2f0]  (snd_hda_intel)");
    expect(lines.at(-1)).toMatch(/^15 groups: 5 viable for VFIO/);
  });

  it("reads a dump from stdin, and gives the same listing", async () => {
    const { readFileSync } = await import("node:fs");
    const fromFile = await cli(["groups", Z270]);
    const fromStdin = await cli(["groups", "-"], readFileSync(Z270, "utf8"));
    expect(fromStdin.out.split("\n").slice(1)).toEqual(fromFile.out.split("\n").slice(1));
  });

  it("--json: every group with its viability and the drivers holding it", async () => {
    const r = await cli(["groups", X570, "--json"]);
    const doc = JSON.parse(r.out) as { schema_version: number; groups: { id: number; viability: string; holders: { device: string; driver: string }[]; devices: { name: string }[] }[]; ungrouped: { name: string }[] };
    expect(doc.schema_version).toBe(1);
    const gpu = doc.groups.find((g) => g.devices.some((d) => d.name === "0000:07:00.0"))!;
    expect(gpu).toMatchObject({ id: 22, viability: "in-use", holders: [{ device: "0000:07:00.1", driver: "snd_hda_intel" }] });
    expect(doc.ungrouped.map((d) => d.name)).toEqual(["0000:00:00.0", "0000:00:00.2"]);
  });

  it("a scenario file works as well; a user-owned group shows as such", async () => {
    const yaml = `
name: owned
iommus: [{name: dmar0, driver: intel-iommu, scope: all}]
devices:
  - {name: "0000:00:1c.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0"}
events:
  - claim_dma_owner: {device: "0000:01:00.0", owner: qemu}
`;
    const r = await cli(["groups", "-"], yaml);
    expect(r.err).toBe("");
    expect(r.out.split("\n")).toContain("user    IOMMU Group 1: 01:00.0 (no description)");
    const e = await cli(["explain", "-", "01:00.0"], yaml);
    expect(e.out).toContain("User space owns the group (a VFIO claim): binding a kernel DMA driver to a member now fails with EBUSY (iommu_device_use_default_domain).");
  });
});

describe("explain", () => {
  it("names the port without ACS that joins a GPU to its root port's group, and what VFIO needs", async () => {
    const r = await cli(["explain", Z270, "01:00.0"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("0000:01:00.0: pci_acs_path_enabled: 0000:00:01.0 above it does not isolate the devices below it (no ACS capability)");
    expect(r.out).toContain("For VFIO: bind 0000:01:00.0, 0000:01:00.1 to vfio-pci together (0000:00:01.0, a bridge, on pcieport: it does not use the DMA API and may stay so).");
    expect(r.out).toContain("Nothing stops a VFIO claim of the group now.");
  });

  it("names the multifunction rule and the bound drivers that stop a claim", async () => {
    const r = await cli(["explain", X570, "0000:07:00.0"]);
    expect(r.out).toContain("get_pci_function_alias_group: it is a function of a multifunction device and does not isolate (no ACS capability)");
    expect(r.out).toContain("A VFIO claim now fails with EPERM (iommu_group_claim_dma_owner: owner_cnt 1): 0000:07:00.1 is bound to snd_hda_intel.");
  });

  it("names the quirk entry that isolated a port", async () => {
    const r = await cli(["explain", Z270, "03:00.0"]);
    expect(r.out).toContain("is in IOMMU group 13, alone.");
    expect(r.out).toContain("Isolation: 0000:00:1c.0 is isolated by pci_quirk_intel_spt_pch_acs (pci_dev_acs_enabled[])");
  });

  it("names a bridge's requester-ID alias and its quirk; bridges are not for vfio-pci", async () => {
    const r = await cli(["explain", "test/fixtures/lspci/intel-x99-rtx2080.vvnn.txt", "05:02.0"]);
    expect(r.out).toContain("0000:05:02.0: pci_for_each_dma_alias: 0000:04:00.0 is a PCIe-to-PCI bridge without a PCI Express capability (quirk_use_pcie_bridge_dma_alias): 0000:05:02.0's DMA reaches the IOMMU with requester ID 05:00.0");
    expect(r.out).toContain("Isolation: 0000:00:1c.0 is isolated by pci_quirk_intel_pch_acs (pci_dev_acs_enabled[])");
    expect(r.out).toContain("For VFIO: bind 0000:05:01.0, 0000:05:02.0 to vfio-pci together (0000:04:00.0, a bridge, unbound: it does not use the DMA API and may stay so).");
  });

  it("names a DMA alias and its quirk", async () => {
    const yaml = `
name: alias
iommus: [{name: dmar0, driver: intel-iommu, scope: all}]
devices:
  - {name: "0000:00:1c.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0", id: "1b4b:9230", multifunction: true, acs: [SV, RR, CR, UF]}
  - {name: "0000:01:00.1", bus: pci, parent: "0000:00:1c.0", id: "1b4b:9230", multifunction: true, acs: [SV, RR, CR, UF]}
`;
    const r = await cli(["explain", "-", "01:00.1"], yaml);
    expect(r.out).toContain("get_pci_alias_group: 0000:01:00.0 and 0000:01:00.1 are DMA aliases of each other (quirk_dma_func1_alias)");
  });

  it("an unknown device is exit 2", async () => {
    const r = await cli(["explain", Z270, "09:00.0"]);
    expect([r.code, r.err]).toEqual([2, `explain: no device '09:00.0' in ${Z270} (give BB:DD.F, SSSS:BB:DD.F or a scenario device name)`]);
  });
});

describe("--what-if", () => {
  it("acs-override=downstream,multifunction is labelled as the out-of-tree patch and splits what it claims to isolate", async () => {
    const r = await cli(["groups", Z270, "--what-if", "acs-override=downstream,multifunction"]);
    expect(r.out.split("\n")).toEqual([
      "what if pcie_acs_override=downstream,multifunction (the out-of-tree ACS override patch; mainline Linux has no such option):",
      "  group 1 [00:01.0 01:00.0 01:00.1] -> [00:01.0] [01:00.0] [01:00.1]",
      "  15 groups -> 17",
    ]);
  });

  it("id:BB:DD.F treats one function as isolated", async () => {
    const r = await cli(["groups", Z270, "--what-if", "id:00:01.0", "--json"]);
    const doc = JSON.parse(r.out) as { changed: { before: { id: number }; after: { devices: string[] }[] }[]; after_count: number };
    expect(doc.changed).toEqual([{ before: { id: 1, devices: ["0000:00:01.0", "0000:01:00.0", "0000:01:00.1"] }, after: [{ id: 1, devices: ["0000:00:01.0"] }, { id: 12, devices: ["0000:01:00.0", "0000:01:00.1"] }] }]);
  });

  it("move:DEV=PORT puts a device under another port", async () => {
    const yaml = `
name: move
iommus: [{name: dmar0, driver: intel-iommu, scope: all}]
devices:
  - {name: "0000:00:1c.0", bus: pci, type: root-port}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0"}
  - {name: "0000:00:1d.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
`;
    const r = await cli(["explain", "-", "01:00.0", "--what-if", "move:01:00.0=00:1d.0"], yaml);
    expect(r.out).toContain("what if the device at 01:00.0 moved under 00:1d.0:");
    expect(r.out).toContain("  group 0 [00:1c.0 01:00.0] -> [00:1c.0] [01:00.0]");
    expect(r.out).toContain("0000:01:00.0 would be in group 2 with 0 other device(s)");
    const bad = await cli(["groups", "-", "--what-if", "move:01:00.0=00:1c.1"], yaml);
    expect([bad.code, bad.err]).toEqual([2, "--what-if move: no PCI function 0000:00:1c.1 in the machine"]);
  });

  it("an unknown change is exit 2", async () => {
    const r = await cli(["groups", Z270, "--what-if", "acs-override=everything"]);
    expect([r.code, r.err]).toEqual([2, "--what-if acs-override=everything: 'everything' is not downstream, multifunction or id:vvvv:dddd"]);
  });
});
