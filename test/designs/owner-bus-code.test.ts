/**
 * fwspec_owner bus-code (DT platform devices up to v4.11; the iommufd mock
 * today): the bus code builds the fwspec before device_add, once; neither
 * the bind's dma_configure nor the probe path parses firmware again.
 */
import { describe, expect, it } from "vitest";
import { boot, dev, outcome, snapshot, state, step } from "../helpers.ts";
import { callers, findCall, soc } from "./owner-helpers.ts";

describe("fwspec_owner bus-code", () => {
  it("device_add parses the firmware first, then adds the device, whose notifier probe finds the fwspec", () => {
    const m = boot(soc("bus-code"));
    const recs = m.ctx.trace.records;
    const cfg = findCall(recs, "of_iommu_configure", "x", "0");
    expect(callers(recs, cfg)).toEqual(["of_dma_configure"]);
    const add = findCall(recs, "device_add", "x", "0");
    expect(add).toBeGreaterThan(cfg);
    const probe = findCall(recs, "__iommu_probe_device", "x", "0");
    expect(callers(recs, probe)).toEqual(["iommu_probe_device", "device_add"]);
    // The probe path parsed nothing: no dma_configure under iommu_init_device.
    expect(recs.some((r) => r.fn === "platform_dma_configure" && r.subject === "x")).toBe(false);
    for (const d of ["a", "b", "x"]) expect(dev(snapshot(m), d)).toMatchObject({ iommu: "smmu0", fwspec: { iommu: "smmu0" }, driver: null });
  });

  it("the bind's dma_configure parses nothing and a device added before its instance never gets one", () => {
    const yaml = soc("bus-code", "  - {name: y, bus: platform, fwnode: /soc/y, iommus: [[smmu1, 7]]}").replace(
      "drivers:\n",
      "drivers:\n  - {name: dy, bus: platform, match: [y]}\n",
    );
    const m = boot(yaml);
    // smmu1 was not registered at y's device_add: the parse deferred, y was added without a fwspec, and its bind went ahead.
    expect(dev(snapshot(m), "y")).toMatchObject({ iommu: null, fwspec: null, driver: "dy", probe: "bound" });
    const recs = m.ctx.trace.records;
    expect(callers(recs, findCall(recs, "of_iommu_configure", "y", "EPROBE_DEFER"))).toEqual(["of_dma_configure"]);
    const from = recs.length;
    expect(outcome(step(m, { iommu_register: "smmu1" }))).toBe("ok");
    expect(outcome(step(m, { driver_unbind: "y" }))).toBe("ok");
    expect(outcome(step(m, { driver_bind: { device: "y", driver: "dy" } }))).toBe("ok");
    expect(dev(snapshot(m), "y")).toMatchObject({ iommu: null, fwspec: null, probe: "bound" });
    expect(recs.slice(from).some((r) => r.fn === "of_iommu_configure")).toBe(false);
  });

  it("a failed device_add leaves the device as it was (of_dma_deconfigure); an added device is refused before any parse", () => {
    const yaml = soc("bus-code", "  - {name: p, bus: platform, fwnode: /soc/p, added: false}\n  - {name: c, bus: platform, fwnode: /soc/c, parent: p, iommus: [[smmu0, 9]], added: false}");
    const m = boot(yaml);
    const before = state(snapshot(m));
    const c = m.devices.get("c")!.dev;
    const r = step(m, { device_add: "c" });
    expect(outcome(r)).toBe("ENODEV");
    // The firmware was parsed (a fwspec built) before device_add refused, and undone.
    expect(findCall(m.ctx.trace.records, "of_iommu_configure", "c", "0")).toBeGreaterThan(0);
    expect(c.iommu).toBeNull();
    expect(state(snapshot(m))).toEqual(before);
    // Already added: EEXIST from device_add, with no of_dma_configure first.
    const recs = m.ctx.trace.records;
    const from = recs.length;
    expect(outcome(step(m, { device_add: "x" }))).toBe("EEXIST");
    expect(recs.slice(from).some((r) => r.fn === "of_dma_configure")).toBe(false);
    expect(state(snapshot(m))).toEqual(before);
  });

  it("x86 scope drivers use no fwspec: bus-code changes nothing for them", () => {
    const x86 = (owner: string) => `
name: x86
boot: {strategy: {fwspec_owner: ${owner}}}
iommus: [{name: dmar0, driver: intel-iommu, scope: all}]
devices:
  - {name: "0000:00:02.0", bus: pci}
  - {name: "0000:00:03.0", bus: pci}
drivers: [{name: nic, bus: pci, match: ["0000:00:03.0"]}]
`;
    const { events: _a, strategy: _sa, ...bc } = snapshot(boot(x86("bus-code")));
    const { events: _b, strategy: _sb, ...pp } = snapshot(boot(x86("probe-path")));
    expect(bc).toEqual(pp);
    expect(bc.devices.every((d) => d.iommu === "dmar0")).toBe(true);
  });
});
