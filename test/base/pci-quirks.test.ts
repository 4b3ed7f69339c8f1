/**
 * The kernel's PCI tables that decide grouping (src/base/pci/quirks/) and
 * pci_acs_flags_enabled's masking: each case boots a small VT-d or AMD-Vi
 * machine and checks the groups the kernel would make.
 */
import { describe, expect, it } from "vitest";
import { PCI_DEV_ACS_ENABLED } from "../../src/base/pci/quirks/acs-dev-specific.ts";
import { run } from "../helpers.ts";

const machine = (devices: string, driver = "intel-iommu") => `
name: quirks
iommus:
  - {name: iommu0, driver: ${driver}, scope: all}
devices:
${devices}`;

/** The groups' members, sorted, after boot (and the trace notes when asked). */
function groups(devices: string, driver?: string): { groups: string[][]; notes: string[]; ids: Map<string, number> } {
  const r = run(machine(devices, driver), { trace: true });
  const ids = new Map<string, number>();
  for (const g of r.snapshot.groups) for (const d of g.devices) ids.set(d, g.id);
  const notes = r.machine.ctx.trace.records.filter((x) => x.kind === "note" && x.fn === "pci_dev_specific_acs_enabled").map((x) => `${x.subject}: ${x.detail}`);
  return { groups: r.snapshot.groups.map((g) => [...g.devices].sort()).sort(), notes, ids };
}

const PORT_AND_CARD = (port: string) => `
  - {name: "0000:00:1c.0", bus: pci, type: root-port, ${port}}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0"}
  - {name: "0000:00:1d.0", bus: pci, type: root-port, ${port}}
  - {name: "0000:02:00.0", bus: pci, parent: "0000:00:1d.0"}`;

describe("pci_acs_flags_enabled: a control the hardware does not implement counts as enabled", () => {
  it("a port implementing SV, RR and CR, all enabled, isolates (UF is not implemented)", () => {
    const g = groups(PORT_AND_CARD("acs_cap: [SV, RR, CR], acs_ctl: [SV, RR, CR]"));
    expect(g.groups).toEqual([["0000:00:1c.0"], ["0000:00:1d.0"], ["0000:01:00.0"], ["0000:02:00.0"]]);
  });
  it("the same port implementing UF but with UF disabled does not (the root ports share nothing, the cards join their ports)", () => {
    const g = groups(PORT_AND_CARD("acs_cap: [SV, RR, CR, UF], acs_ctl: [SV, RR, CR]"));
    expect(g.groups).toEqual([["0000:00:1c.0", "0000:01:00.0"], ["0000:00:1d.0", "0000:02:00.0"]]);
  });
  it("the older acs key keeps its meaning: every control implemented, those listed enabled", () => {
    const g = groups(PORT_AND_CARD("acs: [SV, RR, CR]"));
    expect(g.groups).toEqual([["0000:00:1c.0", "0000:01:00.0"], ["0000:00:1d.0", "0000:02:00.0"]]);
  });
  it("acs_cap without acs_ctl: the kernel's pci_std_enable_acs turns on SV, RR, CR, UF of those implemented", () => {
    const g = groups(PORT_AND_CARD("acs_cap: [SV, RR, CR, UF, TB]"));
    expect(g.groups).toEqual([["0000:00:1c.0"], ["0000:00:1d.0"], ["0000:01:00.0"], ["0000:02:00.0"]]);
  });
});

describe("pci_dev_acs_enabled[] (pci_dev_specific_acs_enabled)", () => {
  it("Intel PCH root ports without an ACS capability are isolated once pci_quirk_enable_intel_pch_acs ran; the trace names the quirk", () => {
    const g = groups(PORT_AND_CARD('id: "8086:8c10"'));
    expect(g.groups).toEqual([["0000:00:1c.0"], ["0000:00:1d.0"], ["0000:01:00.0"], ["0000:02:00.0"]]);
    expect(g.notes).toContain("0000:00:1c.0: pci_quirk_intel_pch_acs: isolated");
  });
  it("without the IDs the same ports are not", () => {
    expect(groups(PORT_AND_CARD("multifunction: false")).groups).toEqual([["0000:00:1c.0", "0000:01:00.0"], ["0000:00:1d.0", "0000:02:00.0"]]);
  });
  it("Union Point root ports: lspci shows ACSCtl all off (the standard word), the quirk reads the dword the enable quirk set", () => {
    const g = groups(PORT_AND_CARD('id: "8086:a290", acs_cap: [SV, RR, CR, UF, TB], acs_ctl: []'));
    expect(g.groups).toEqual([["0000:00:1c.0"], ["0000:00:1d.0"], ["0000:01:00.0"], ["0000:02:00.0"]]);
    expect(g.notes).toContain("0000:00:1c.0: pci_quirk_intel_spt_pch_acs: isolated");
  });
  it("a multifunction I350 without ACS: every function its own group (pci_quirk_mf_endpoint_acs); an unlisted NIC: one group", () => {
    const nic = (id: string) => `
  - {name: "0000:00:1c.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0", multifunction: true, id: "${id}"}
  - {name: "0000:01:00.1", bus: pci, parent: "0000:00:1c.0", multifunction: true, id: "${id}"}`;
    expect(groups(nic("8086:1521")).groups).toEqual([["0000:00:1c.0"], ["0000:01:00.0"], ["0000:01:00.1"]]);
    expect(groups(nic("8086:10d3")).groups).toEqual([["0000:00:1c.0"], ["0000:01:00.0", "0000:01:00.1"]]);
  });
  it("AMD southbridge functions answer only with an IVRS table (an AMD IOMMU)", () => {
    const sb = `
  - {name: "0000:00:14.0", bus: pci, type: pci-endpoint, multifunction: true, id: "1002:4385"}
  - {name: "0000:00:14.2", bus: pci, type: pci-endpoint, multifunction: true, id: "1002:4383"}`;
    expect(groups(sb, "amd-iommu").groups).toEqual([["0000:00:14.0"], ["0000:00:14.2"]]);
    expect(groups(sb, "intel-iommu").groups).toEqual([["0000:00:14.0", "0000:00:14.2"]]);
  });
  it("a Zhaoxin port the quirk does not list is not isolated, whatever its ACS capability says", () => {
    expect(groups(PORT_AND_CARD('id: "1d17:0700", acs: [SV, RR, CR, UF]')).groups).toEqual([["0000:00:1c.0", "0000:01:00.0"], ["0000:00:1d.0", "0000:02:00.0"]]);
    expect(groups(PORT_AND_CARD('id: "1d17:0710"')).groups).toHaveLength(4);
  });
  it("the table has every entry of the kernel's, each with its quirk function", () => {
    expect(PCI_DEV_ACS_ENABLED).toHaveLength(130);
    expect(new Set(PCI_DEV_ACS_ENABLED.map((e) => e.quirk)).size).toBe(14);
  });
});

describe("DMA-alias fixups", () => {
  it("the trace names the fixups enumeration applied", () => {
    const r = run(machine(`
  - {name: "0000:00:1c.0", bus: pci, type: root-port, id: "8086:a290", acs_cap: [SV, RR, CR, UF]}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0", id: "1b4b:9230", multifunction: true}`), { trace: true });
    const notes = r.machine.ctx.trace.records.filter((x) => x.kind === "note" && x.fn.startsWith("pci_")).map((x) => `${x.fn}: ${x.subject}: ${x.detail}`);
    expect(notes.slice(0, 2)).toEqual(["pci_enable_acs: 0000:00:1c.0: pci_quirk_enable_intel_spt_pch_acs", "pci_fixup_device: 0000:01:00.0: quirk_dma_func1_alias"]);
  });

  it("a Marvell 88SE9230 function 0 DMAs as function 1 (quirk_dma_func1_alias): both in one group", () => {
    const g = groups(`
  - {name: "0000:00:1c.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0", id: "1b4b:9230", multifunction: true, acs: [SV, RR, CR, UF]}
  - {name: "0000:01:00.1", bus: pci, parent: "0000:00:1c.0", id: "1b4b:9230", multifunction: true, acs: [SV, RR, CR, UF]}`);
    expect(g.groups).toEqual([["0000:00:1c.0"], ["0000:01:00.0", "0000:01:00.1"]]);
  });
});

describe("group numbers", () => {
  it("with boot.order devices-first, functions are probed in the kernel's enumeration order (pci_bus_add_devices), not the file's", () => {
    const file = (order: string) => `
name: order
boot: {order: ${order}}
iommus: [{name: dmar0, driver: intel-iommu, scope: all}]
devices:
  - {name: "0000:00:1d.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:02:00.0", bus: pci, parent: "0000:00:1d.0"}
  - {name: "0000:00:1c.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0"}
`;
    const ids = (order: string) => Object.fromEntries(run(file(order)).snapshot.groups.map((g) => [g.devices[0], g.id]));
    expect(ids("devices-first")).toEqual({ "0000:00:1c.0": 0, "0000:00:1d.0": 1, "0000:01:00.0": 2, "0000:02:00.0": 3 });
    expect(ids("iommus-first")).toEqual({ "0000:00:1d.0": 0, "0000:02:00.0": 1, "0000:00:1c.0": 2, "0000:01:00.0": 3 });
  });

  it("follow probe order (ida_alloc in iommu_group_alloc), and expect can assert them", () => {
    const r = run(`${machine(PORT_AND_CARD("acs: [SV, RR, CR, UF]"))}
events:
  - expect:
      groups:
        - {devices: ["0000:00:1c.0"], id: 0}
        - {devices: ["0000:01:00.0"], id: 1}
        - {devices: ["0000:02:00.0"], id: 3}
`);
    expect(r.failures).toEqual([]);
    const bad = run(`${machine(PORT_AND_CARD("acs: [SV, RR, CR, UF]"))}
events:
  - expect: {groups: [{devices: ["0000:02:00.0"], id: 2}]}
`);
    expect(bad.failures.map((f) => f.message)).toEqual(["groups[0] (group 3).id: expected 2, got 3"]);
  });
});
