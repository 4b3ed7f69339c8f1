/**
 * The fwspec_ops axis on small inline machines: a fwspec carrying ops (up
 * to v6.10) gives the iommufd mock device its ops on x86 even with a NULL
 * fwnode, stays behind "otherwise empty" while its IOMMU is not registered
 * (of_iommu_configure frees it and parses again next time), and refuses a
 * second init for other ops; from-fwnode (v6.11+) makes no fwspec until
 * the IOMMU is there and takes ops from the fwnode.
 */
import { describe, expect, it } from "vitest";
import { runPath } from "../../src/base/path.ts";
import { devIommuFwspecGet } from "../../src/iommu/dev-iommu.ts";
import { iommuFwspecInitOps } from "../../src/iommu/fwspec.ts";
import type { Machine } from "../../src/sim/machine.ts";
import { loadScenarioFile } from "../../src/sim/scenario/load.ts";
import type { Scenario } from "../../src/sim/scenario/schema.ts";
import { boot, dev, outcome, run, snapshot, step } from "../helpers.ts";

type FwspecName = "fwspec-carries-ops" | "from-fwnode";

const device = (m: Machine, name: string) => m.devices.get(name)!.dev;

describe("fwspec_ops: the x86 mock device added with iommu_mock_device_add, mock instance without a fwnode", () => {
  const FILE = new URL("../../scenarios/x86-mock-wrong-ops.yaml", import.meta.url).pathname;
  /** The x86-mock-wrong-ops machine, its mock device added by bus code with a fwspec (the v1 patch's pre-allocation). */
  const machine = (fw: FwspecName): Scenario => {
    const s = loadScenarioFile(FILE);
    const devices = s.devices.map((d) => (d.bus === "iommufd_mock" ? { ...d, add_with: "iommu_mock_device_add" as const } : d));
    return { ...s, devices, events: [], boot: { ...s.boot, strategy: { fwspec_ops: fw } } };
  };

  it("fwspec-carries-ops: the fwspec carries the mock's ops, so upstream probes it with them: right ops", () => {
    const m = boot(machine("fwspec-carries-ops"));
    const s = snapshot(m);
    expect(dev(s, "iommufd_mock0")).toMatchObject({ iommu: "mock-iommu", ops: "mock", fwspec: { iommu: null, ids: [] } });
    expect(devIommuFwspecGet(device(m, "iommufd_mock0"))?.ops?.name).toBe("mock");
    expect(dev(s, "0000:00:02.0")).toMatchObject({ iommu: "dmar0", ops: "intel-iommu", fwspec: null });
    expect(s.violations).toEqual([]);
  });

  it("from-fwnode: a NULL fwnode names the first instance without one, VT-d, which refuses it: wrong ops", () => {
    const s = snapshot(boot(machine("from-fwnode")));
    expect(dev(s, "iommufd_mock0")).toMatchObject({ iommu: null, ops: null, group: null });
  });

  it("under bus-ops either way the mock bus's ops decide: right ops", () => {
    for (const fw of ["fwspec-carries-ops", "from-fwnode"] as const) {
      const sc = machine(fw);
      const s = snapshot(boot({ ...sc, boot: { ...sc.boot, strategy: { fwspec_ops: fw, ops_resolution: "bus-ops" } } }));
      expect(dev(s, "iommufd_mock0")).toMatchObject({ iommu: "mock-iommu", ops: "mock" });
    }
  });
});

/** An SMMUv3 that registers late, and a platform device whose driver binds before it. */
const LATE = (fw: FwspecName, ops = "upstream") => `
name: an SMMUv3 that registers after its client's driver
boot: {strategy: {fwspec_ops: ${fw}, ops_resolution: ${ops}}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/iommu@40000000, registered: false}
devices:
  - {name: ufs, bus: platform, fwnode: /soc/ufs, iommus: [[smmu0, 0x100]]}
  - {name: eth, bus: platform, fwnode: /soc/eth}
drivers:
  - {name: ufshcd, bus: platform, match: [ufs]}
  - {name: stmmac, bus: platform, match: [eth], registered: false}
`;

describe("fwspec_ops: deferral while the IOMMU is not registered", () => {
  it("fwspec-carries-ops: the deferred bind leaves an otherwise-empty fwspec naming the IOMMU it waits for", () => {
    const m = boot(LATE("fwspec-carries-ops"));
    const s = snapshot(m);
    expect(dev(s, "ufs")).toMatchObject({ probe: "deferred", iommu: null, dev_iommu: "fw_only", fwspec: { iommu: "smmu0", ids: [] } });
    expect(devIommuFwspecGet(device(m, "ufs"))?.ops).toBeNull();
    expect(s.deferred).toEqual(["ufs"]);
    expect(s.violations).toEqual([]);
  });

  it("from-fwnode: no fwspec is left behind", () => {
    const s = snapshot(boot(LATE("from-fwnode")));
    expect(dev(s, "ufs")).toMatchObject({ probe: "deferred", dev_iommu: "none", fwspec: null });
  });

  it("fwspec-carries-ops: the next of_iommu_configure frees the empty fwspec and parses again (a new one, still empty)", () => {
    const m = boot(LATE("fwspec-carries-ops"));
    const first = devIommuFwspecGet(device(m, "ufs"));
    // Binding by hand runs of_iommu_configure again and defers again (a sysfs bind reports EAGAIN).
    expect(outcome(step(m, { driver_bind: { device: "ufs", driver: "ufshcd" } }))).toBe("EAGAIN");
    const again = devIommuFwspecGet(device(m, "ufs"));
    expect(again).not.toBeNull();
    expect(again).not.toBe(first);
    expect(again!.ops).toBeNull();
    expect(dev(snapshot(m), "ufs")).toMatchObject({ probe: "deferred", fwspec: { iommu: "smmu0", ids: [] } });
  });

  it("fwspec-carries-ops: once the IOMMU registers, the bind parses again and the device is probed with its ids", () => {
    for (const ops of ["upstream", "bus-ops", "bus-set-iommu"]) {
      const r = run(`${LATE("fwspec-carries-ops", ops)}
events:
  - iommu_register: smmu0
  - expect:
      devices:
        ufs: {iommu: smmu0, ops: arm-smmu-v3, fwspec: {iommu: smmu0, ids: [0x100]}, probe: bound}
      violations: []
`);
      expect(r.failures, ops).toEqual([]);
      expect(devIommuFwspecGet(device(r.machine, "ufs"))?.ops?.name).toBe("arm-smmu-v3");
    }
  });

  it("bus-set-iommu with fwspec-carries-ops: the claim's replay meets the empty fwspec and arm-smmu-v3 refuses it as not its own", () => {
    const r = run(`${LATE("fwspec-carries-ops", "bus-set-iommu")}
events:
  - iommu_register: smmu0
`);
    const refusals = r.machine.ctx.trace.records.filter((t) => t.kind === "note" && t.fn === "probe_device" && t.subject === "ufs");
    expect(refusals.map((t) => t.detail)).toContain("arm-smmu-v3 refused: ENODEV: ufs's fwspec is not for arm-smmu-v3");
    expect(dev(r.snapshot, "ufs")).toMatchObject({ iommu: "smmu0", probe: "bound" });
  });
});

describe("fwspec_ops: a second iommu_fwspec_init for other ops", () => {
  const TWO = (fw: FwspecName) => `
name: a device naming IOMMUs of two drivers
boot: {strategy: {fwspec_ops: ${fw}}}
iommus:
  - {name: smmu3, driver: arm-smmu-v3, fwnode: /soc/iommu@40000000}
  - {name: smmu2, driver: arm-smmu, fwnode: /soc/iommu@50000000}
devices:
  - {name: dsp, bus: platform, fwnode: /soc/dsp, iommus: [[smmu3, 0x100], [smmu2, 0x10]]}
`;

  it("is EINVAL under both strategies, by hand on the device's fwspec", () => {
    for (const fw of ["fwspec-carries-ops", "from-fwnode"] as const) {
      const m = boot(TWO(fw).replace("iommus: [[smmu3, 0x100], [smmu2, 0x10]]", "iommus: [[smmu3, 0x100]]"));
      const d = device(m, "dsp");
      const smmu2 = m.instances.get("smmu2")!.iommu;
      const smmu3 = m.instances.get("smmu3")!.iommu;
      expect(dev(snapshot(m), "dsp"), fw).toMatchObject({ iommu: "smmu3", fwspec: { iommu: "smmu3", ids: [0x100] } });
      // The same ops again is 0, other ops EINVAL; the fwspec is unchanged either way.
      const before = snapshot(m);
      expect(runPath(iommuFwspecInitOps(m.k, d, smmu3.fwnode, smmu3.ops)), fw).toBe(0);
      expect(outcome(runPath(iommuFwspecInitOps(m.k, d, smmu2.fwnode, smmu2.ops))), fw).toBe("EINVAL");
      expect(snapshot(m).devices).toEqual(before.devices);
    }
  });

  it("fwspec-carries-ops keeps what the failed parse made, and the probe then uses that half fwspec; from-fwnode frees it", () => {
    // of_iommu_xlate for [smmu2, 0x10] is EINVAL: the fwspec already carries arm-smmu-v3's ops.
    const carries = snapshot(boot(TWO("fwspec-carries-ops")));
    expect(dev(carries, "dsp")).toMatchObject({ iommu: "smmu3", ops: "arm-smmu-v3", fwspec: { iommu: "smmu3", ids: [0x100] } });
    expect(dev(snapshot(boot(TWO("from-fwnode"))), "dsp")).toMatchObject({ iommu: null, group: null, dev_iommu: "none", fwspec: null });
  });
});
