/**
 * `iommu-sim import dtb`: the fixtures (test/fixtures/dts/, compiled with
 * dtc) import to scenarios that run; IOMMU nodes get the driver their
 * compatible selects, an unknown one is reported, disabled nodes are kept
 * but never probed, links that do not resolve are reported; damaged blobs
 * are exit 2 with the file and byte offset, never an exception.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFdt } from "../../src/sim/import/fdt-parse.ts";
import { importDtb } from "../../src/sim/import/dt-scenario.ts";
import { FirmwareError } from "../../src/sim/import/fw-bytes.ts";
import { fwScenarioData, fwScenarioYaml } from "../../src/sim/import/fw-scenario.ts";
import { parseScenario, validateScenario } from "../../src/sim/scenario/load.ts";
import { runScenario } from "../../src/sim/runner.ts";
import { cli, dtb, removeCompiled, rng } from "./fw-fixtures.ts";

let soc: string;
beforeAll(() => {
  soc = dtb("arm64-soc");
});
afterAll(removeCompiled);

describe("import dtb: an SoC with every kind of IOMMU link", () => {
  it("instances get the driver their compatible selects; the scenario runs with each client on its IOMMU", async () => {
    const r = await cli(["import", "dtb", soc]);
    expect(r.code).toBe(0);
    const s = parseScenario(r.out, "soc.yaml");
    expect(Object.fromEntries(s.iommus.map((m) => [m.fwnode, m.driver]))).toEqual({
      "/soc/iommu@2b400000": "arm-smmu-v3",
      "/soc/iommu@15000000": "arm-smmu", // qcom,sdm845-smmu-500 falls back to arm,mmu-500
      "/soc/iommu@2c000000": "arm-smmu-v3",
      "/soc/virtio@a000000": "virtio-iommu",
    });
    const run = runScenario(s, { trace: false });
    expect(run.failures).toEqual([]);
    const dev = Object.fromEntries(run.snapshot.devices.map((d) => [d.name, d]));
    expect(dev["ufs@1d84000"]).toMatchObject({ iommu: "iommu@15000000", fwspec: { ids: [0x100] } });
    // Two cells: the SMR mask goes into the fwspec id's upper half (arm_smmu_of_xlate).
    expect(dev["gpu@5000000"]!.fwspec!.ids).toEqual([0x70400, 0x408]);
    expect(dev["dma@7e00000"]).toMatchObject({ bus: "amba", iommu: "iommu@2b400000" });
    // Behind a disabled SMMU: of_iommu_xlate finds the node unavailable.
    expect(dev["crypto@2c100000"]!.iommu).toBeNull();
    expect(run.snapshot.iommus.find((m) => m.name === "iommu@2c000000")!.registered).toBe(false);
  });

  it("an unknown IOMMU compatible is a warning naming it, and its client is imported without an IOMMU", async () => {
    const r = await cli(["import", "dtb", soc]);
    expect(r.err).toContain('compatible "rockchip,iommu", which no driver of the model matches');
    const s = parseScenario(r.out, "soc.yaml");
    expect(s.iommus.some((m) => m.fwnode === "/soc/iommu@ff350800")).toBe(false);
    expect(s.devices.find((d) => d.name === "video-codec@ff350000")!.iommus).toBeUndefined();
  });

  it("disabled nodes, and nodes below a disabled bus, are kept but never probed", async () => {
    const s = parseScenario((await cli(["import", "dtb", soc])).out, "soc.yaml");
    const by = new Map(s.devices.map((d) => [d.name, d]));
    expect(by.get("eth@30000000")!.added).toBe(false);
    expect(by.get("usb@a600000")!.added).toBe(false);
    expect(s.iommus.find((m) => m.name === "iommu@2c000000")).toMatchObject({ status: "disabled", registered: false });
    const run = runScenario(s, { trace: false });
    expect(run.snapshot.devices.find((d) => d.name === "usb@a600000")!.registered).toBe(false);
  });

  it("PCI host bridges with iommu-map become pci-host devices: linux,pci-domain, or the next free segment", async () => {
    const s = parseScenario((await cli(["import", "dtb", soc])).out, "soc.yaml");
    const hosts = s.devices.filter((d) => d["pci-host"] !== undefined).map((d) => [d.name, d["pci-host"]]);
    expect(hosts).toEqual([
      ["pcie@40000000", { segment: 0, "iommu-map": [[0, "iommu@2b400000", 0x10000, 0x10000]] }],
      ["pcie@50000000", { segment: 1, "iommu-map": [[0, "iommu@15000000", 0x1c00, 0x100], [0x100, "virtio@a000000", 0x100, 0xff00]], "iommu-map-mask": 0xff00 }],
    ]);
  });

  it("comments name each node's path and byte offset; the YAML and the data are the same scenario", async () => {
    const t = parseFdt(readFileSync(soc), soc);
    const imp = importDtb(t, soc);
    const yaml = fwScenarioYaml(imp);
    const ufs = t.nodes.find((n) => n.path === "/soc/ufs@1d84000")!;
    expect(yaml).toContain(`# /soc/ufs@1d84000 (byte ${ufs.offset}): qcom,sdm845-ufshc`);
    expect(t.memReserve).toEqual([[0x80000000n, 0x100000n]]);
    expect(validateScenario(fwScenarioData(imp), "x")).toEqual(parseScenario(yaml, "x"));
  });
});

describe("import dtb: links that do not resolve are reported", () => {
  it("a dangling phandle, a target without #iommu-cells, an entry short of cells: each a warning, the client without an IOMMU", async () => {
    const r = await cli(["import", "dtb", dtb("dangling-links")]);
    expect(r.code).toBe(0);
    expect(r.err).toContain("/nowhere@3000 iommus");
    expect(r.err).toContain("phandle 0x4242 does not resolve");
    expect(r.err).toContain("/clock-controller@2000 has no #iommu-cells");
    expect(r.err).toContain("needs 1 cell after the phandle, 0 remain");
    const s = parseScenario(r.out, "d.yaml");
    expect(s.devices.map((d) => [d.name, d.iommus ?? null])).toEqual([
      ["nowhere@3000", null],
      ["not-an-iommu@4000", null],
      ["short@5000", null],
      ["ok@6000", [["iommu@1000", 6]]],
    ]);
  });
});

describe("import dtb: bad input is exit 2 with the file, the byte offset and the problem", () => {
  const bad = async (file: string) => {
    const r = await cli(["import", "dtb", file]);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    return r.err;
  };

  it("a phandle cycle", async () => {
    const f = dtb("phandle-cycle");
    expect(await bad(f)).toMatch(new RegExp(`^${f}: at byte \\d+ \\(0x[0-9a-f]+\\): phandle cycle: /iommu@1000 -> /iommu@2000 -> /iommu@1000`));
  });

  it("an impossible bus range", async () => {
    const f = dtb("bad-bus-range");
    expect(await bad(f)).toMatch(located(f, "impossible bus-range <0x10 0x2>"));
  });

  it("not a DTB, a truncated one, a missing file", async () => {
    expect(await bad("test/fixtures/dts/arm64-soc.dts")).toMatch(/^test\/fixtures\/dts\/arm64-soc\.dts: at byte 0 \(0x0\): not a flattened device tree/);
    const { writeFileSync } = await import("node:fs");
    const cut = soc.replace(/\.dtb$/, "-cut.dtb");
    writeFileSync(cut, readFileSync(soc).subarray(0, 700));
    expect(await bad(cut)).toMatch(located(cut, "(truncated)"));
    expect(await bad("no/such.dtb")).toBe("no/such.dtb: no such file");
    expect(await bad("-")).toBe("import dtb: reads a file, not stdin");
    expect(await bad("test/fixtures/dts")).toBe("test/fixtures/dts: a directory, not a DTB");
  });

  it("fuzz: bytes flipped and blobs cut give exit 2 with a byte offset, or a valid scenario that runs; never an exception", () => {
    const orig = readFileSync(soc);
    const next = rng(12);
    let valid = 0;
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      const b = Uint8Array.from(orig);
      let len = b.length;
      const flips = 1 + Math.floor(next() * 4);
      for (let j = 0; j < flips; j++) b[Math.floor(next() * b.length)] = Math.floor(next() * 256);
      if (next() < 0.25) len = Math.floor(next() * b.length);
      const blob = b.subarray(0, len);
      try {
        const imp = importDtb(parseFdt(blob, "fuzz.dtb"), "fuzz.dtb");
        const s = parseScenario(fwScenarioYaml(imp), "fuzz.yaml");
        runScenario(s, { trace: false });
        valid++;
      } catch (e) {
        if (!(e instanceof FirmwareError)) throw e;
        expect(e.message).toMatch(/^fuzz\.dtb: at byte \d+ \(0x[0-9a-f]+\): /);
        refused++;
      }
    }
    expect(valid).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });
});

/** A problem located as every importer problem is: `FILE: at byte N (0xN): ` and then the sentence. */
function located(file: string, text: string): RegExp {
  const q = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${q(file)}: at byte \\d+ \\(0x[0-9a-f]+\\): .*${q(text)}`);
}
