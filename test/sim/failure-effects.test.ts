/**
 * Every failure effect of the registry (src/lib/failure-effects.ts), made
 * to happen: the failing event changes the snapshot, records the effect,
 * and the effects it recorded cover every change (the fuzzer's check,
 * scripts/fuzz/engine.ts). And failures that must change nothing do not.
 */
import { describe, expect, it } from "vitest";
import { newCounts, play, type Problem } from "../../scripts/fuzz/engine.ts";
import { FAILURE_EFFECT_IDS, type FailureEffectId } from "../../src/lib/failure-effects.ts";
import { takeSnapshot } from "../../src/sim/snapshot.ts";
import { boot, scenario, state, step } from "../helpers.ts";

/** Plays the scenario; the last event must fail with `errno`, change the snapshot, and record `id`, nothing undocumented. */
function expectEffect(yaml: string, id: FailureEffectId, errno: string, pgtableMemoryLimit?: number): Problem {
  const s = scenario(yaml);
  const problems: Problem[] = [];
  const counts = newCounts();
  const last = s.events.length - 1;
  play(
    { ...s, events: [] },
    (m, i) => {
          return i <= last ? s.events[i]! : null;
    },
    counts,
    (p) => problems.push(p),
    { reportEffects: true, invariants: false, pgtableMemoryLimit },
  );
  expect(problems.filter((p) => p.kind === "exception" || p.kind === "undocumented")).toEqual([]);
  const kind = Object.keys(s.events[last]!).find((k) => k !== "expect_error" && k !== "note")!;
  expect(counts.outcomes.get(`${kind} ${errno}`) ?? 0, `${kind} fails with ${errno}: ${[...counts.outcomes.keys()].join(", ")}`).toBeGreaterThan(0);
  const hit = problems.find((p) => p.kind === "effect" && p.key === `effect ${id}` && p.index === last);
  expect(hit, `event ${last} records ${id}: ${problems.map((p) => `${p.key}@${p.index} ${p.details.join(" | ")}`).join(", ")}`).toBeDefined();
  return hit!;
}

const SMMU = `iommus: [{name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}]`;

const cases: Record<FailureEffectId, () => void> = {
  "failure-logged": () => {
    // Under the NULL-device allocation of kernels up to v6.12, two drivers on one bus: EBUSY after a WARN_ONCE.
    const p = expectEffect(
      `
name: two drivers on the platform bus
boot: {strategy: {domain_alloc: bus-null-device}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}
  - {name: smmu1, driver: arm-smmu, fwnode: /soc/smmu1}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]]}
  - {name: b, bus: platform, fwnode: /soc/b, iommus: [[smmu1, 2]]}
events:
  - domain_alloc: {name: d, device: a}
`,
      "failure-logged",
      "EBUSY",
    );
    expect(p.details.join("\n")).toContain('warnings gained "__iommu_domain_alloc_dev: platform: Multiple IOMMU drivers present');
    // WARN_ONCE: a second refusal changes nothing at all.
    const s = scenario(`
name: twice
boot: {strategy: {domain_alloc: bus-null-device}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}
  - {name: smmu1, driver: arm-smmu, fwnode: /soc/smmu1}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]]}
  - {name: b, bus: platform, fwnode: /soc/b, iommus: [[smmu1, 2]]}
events:
  - domain_alloc: {name: d, device: a}
  - domain_alloc: {name: d, device: a}
`);
    const m = boot(s, { trace: false });
    step(m, s.events[0]!);
    const before = state(takeSnapshot(m, [], []));
    const r = step(m, s.events[1]!);
    expect(r !== 0 && r.errno).toBe("EBUSY");
    expect(state(takeSnapshot(m, [], []))).toEqual(before);
  },
  "claim-keeps-blocking-domain": () => {
    const p = expectEffect(
      `
name: a device that needs its direct mapping refuses to be blocked
${SMMU}
devices:
  - {name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 1]], reserved-regions: [{start: 0x80000000, length: 0x100000, type: direct}]}
events:
  - claim_dma_owner: {device: dev0, owner: vfio}
`,
      "claim-keeps-blocking-domain",
      "EINVAL",
    );
    expect(p.details.join("\n")).toMatch(/domains\[id=\d+\] added: \{"id":\d+,"name":null,"type":"blocked"/);
  },
  "register-walk-keeps-other-probes": () => {
    // The registering AMD-Vi unit's group takes a device of the other unit; its first attach fails.
    const p = expectEffect(
      `
name: a group across two AMD-Vi units
iommus:
  - {name: dmar3, driver: amd-iommu, scope: ["0001:03:00.0"], segment: 1}
  - {name: dmar4, driver: amd-iommu, scope: all, segment: 1}
devices:
  - {name: "0001:00:09.0", bus: pci, type: root-port}
  - {name: "0001:02:00.0", bus: pci, parent: "0001:00:09.0", type: switch-up}
  - {name: "0001:03:00.0", bus: pci, parent: "0001:02:00.0"}
events:
  - iommu_unregister: dmar4
  - iommu_register: dmar4
`,
      "register-walk-keeps-other-probes",
      "EINVAL",
    );
    expect(p.details.join("\n")).toContain('iommus[name=dmar3].devices gained "0001:03:00.0"');
  },
  "unuse-keeps-owner-count": () => {
    expectEffect(
      `
name: a bind fails in the driver's probe on a group with a PASID attached
${SMMU}
devices:
  - name: pcie0
    bus: platform
    fwnode: /soc/pcie0
    pci-host: {segment: 0, iommu-map: [[0, smmu0, 0, 0x10000]]}
  - {name: "0000:00:17.0", bus: pci, parent: pcie0, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "0000:02:17.0", bus: pci, parent: "0000:00:17.0", pasid-bits: 4}
drivers:
  # Its probe fails at boot already, before any PASID: owner_cnt went up and down.
  - {name: drv, bus: pci, match: ["0000:02:17.0"], probe_result: {"0000:02:17.0": ENODEV}}
events:
  - domain_alloc: {name: d, device: "0000:02:17.0"}
  - attach_pasid: {domain: d, device: "0000:02:17.0", pasid: 2}
  - driver_bind: {device: "0000:02:17.0", driver: drv}
`,
      "unuse-keeps-owner-count",
      "ENODEV",
    );
  },
  "default-domain-restore-moves-group": () => {
    // 16 KiB of table memory: the new DMA domain's direct mapping cannot be made.
    expectEffect(
      `
name: a type write fails after the switch
iommus: [{name: iommu1, driver: arm-smmu-v3, fwnode: /soc/iommu1}]
devices:
  - {name: dev1, bus: platform, fwnode: /soc/dev1, iommus: [[iommu1, 15]], reserved-regions: [{start: 0x10000000, length: 0x100000, type: direct-relaxable}]}
events:
  - group_type: {device: dev1, type: identity}
  - domain_alloc: {name: d2, device: dev1}
  - group_type: {device: dev1, type: auto}
  - attach_group: {domain: 1, device: dev1}
  - group_type: {device: dev1, type: auto}
`,
      "default-domain-restore-moves-group",
      "ENOMEM",
      16384,
    );
  },
  "attach-revert-refused": () => {
    // dmar2 unregistered and registered again leaves group 0 spanning dmar0 and dmar1 (the first attach of
    // its default domain failed, with a WARN); attaching dmar0's domain then fails on the dmar1 member, and
    // dmar0's member refuses the revert to the group's domain.
    expectEffect(
      `
name: a revert the driver refuses
iommus:
  - {name: dmar0, driver: amd-iommu, scope: ["0000:01:06.0", "0000:02:1b.1"]}
  - {name: dmar1, driver: amd-iommu, scope: ["0000:01:00.0"]}
  - {name: dmar2, driver: amd-iommu, scope: all}
devices:
  - {name: "0000:00:1c.0", bus: pci, type: root-port}
  - {name: "0000:01:06.0", bus: pci, parent: "0000:00:1c.0"}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0"}
  - {name: "0000:00:14.0", bus: pci, type: root-port}
  - {name: "0000:02:1b.1", bus: pci, parent: "0000:00:14.0"}
events:
  - iommu_unregister: dmar2
  - iommu_register: dmar2
  - domain_alloc: {name: d0, device: "0000:02:1b.1"}
  - attach_group: {domain: d0, device: "0000:01:00.0"}
`,
      "attach-revert-refused",
      "EINVAL",
    );
  },
  "must-succeed-attach-refused": () => {
    // dmar1 unregistered and registered again leaves group 0 on dmar1's domain while its members sit behind
    // dmar0. A sysfs type write then switches them to a new domain whose direct mapping fails for want of
    // page-table memory even after the attach; the restore to the old default (MUST_SUCCEED) is refused by
    // dmar0's members, which stay on the new domain the core frees (fuzz seed 1, machine 2012). An IVHD names
    // each requester ID it serves (rlookup_amd_iommu), so dmar0's scope lists the functions below the port too.
    const p = expectEffect(
      `
name: a restore the driver refuses
iommus:
  - {name: dmar0, driver: amd-iommu, scope: ["0000:02:00.0", "0000:03:03.0", "0000:03:03.1"]}
  - {name: dmar1, driver: amd-iommu, scope: all}
devices:
  - {name: "0000:00:0f.0", bus: pci, type: root-port}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:0f.0", type: switch-up}
  - {name: "0000:02:00.0", bus: pci, parent: "0000:01:00.0", type: switch-down}
  - {name: "0000:03:03.0", bus: pci, parent: "0000:02:00.0"}
  - {name: "0000:03:03.1", bus: pci, parent: "0000:02:00.0", reserved-regions: [{start: 0xfee00000, length: 4096, type: direct}]}
events:
  - iommu_unregister: dmar1
  - iommu_register: dmar1
  - group_type: {device: "0000:03:03.0", type: auto}
`,
      "must-succeed-attach-refused",
      "ENOMEM",
      16384,
    );
    expect(p.details.join("\n")).toContain("0000:03:03.0");
  },
  "probe-keeps-direct-mappings": () => {
    // With dmar1 re-registered last, the walk probes 09.0 into the group 09.1 already holds, whose default
    // domain is dmar0's: 09.0's direct region is mapped into it, then its attach fails (it is behind dmar1).
    const p = expectEffect(
      `
name: a probe that fails after its direct mappings
iommus:
  - {name: dmar0, driver: amd-iommu, scope: ["0000:00:09.1"]}
  - {name: dmar1, driver: amd-iommu, scope: all}
  - {name: dmar3, driver: amd-iommu, scope: [], segment: 1}
devices:
  - {name: "0000:00:09.0", bus: pci, multifunction: true, reserved-regions: [{start: 0x100000, length: 0x200000, type: direct-relaxable}]}
  - {name: "0000:00:09.1", bus: pci, multifunction: true}
events:
  - iommu_unregister: dmar1
  - iommu_unregister: dmar3
  - iommu_register: dmar3
  - iommu_register: dmar1
`,
      "probe-keeps-direct-mappings",
      "EINVAL",
    );
    expect(p.details.join("\n")).toMatch(/mapped_bytes: 0 -> 2097152/);
  },
  "attach-finalises-domain": () => {
    expectEffect(
      `
name: a domain allocated without a device, attached to a group whose second member fails
boot: {strategy: {domain_alloc: bus-null-device}}
iommus: [{name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}]
devices:
  - name: pcie0
    bus: platform
    fwnode: /soc/pcie0
    pci-host: {segment: 0, iommu-map: [[0, smmu0, 0, 0x10000]]}
  - {name: "0000:00:06.0", bus: pci, parent: pcie0, type: root-port}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:06.0"}
  - {name: "0000:01:01.0", bus: pci, parent: "0000:00:06.0", fail_attach: ENODEV}
events:
  - domain_alloc: {name: d, device: "0000:01:00.0"}
  - attach_group: {domain: d, device: "0000:01:00.0"}
`,
      "attach-finalises-domain",
      "ENODEV",
    );
  },
  "bus-set-iommu-releases-bus": () => {
    // Up to v6.0: smmu1's remove gave the buses NULL; registering it again, its platform replay fails
    // (a StreamID beyond its 4 bits) and releases every platform device, smmu0's included.
    const p = expectEffect(
      `
name: a failed bus_set_iommu replay releases the whole bus
boot: {strategy: {ops_resolution: bus-set-iommu}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}
  - {name: smmu1, driver: arm-smmu-v3, fwnode: /soc/smmu1, sid-bits: 4}
devices:
  - {name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu1, 21]]}
  - {name: dev1, bus: platform, fwnode: /soc/dev1, iommus: [[smmu0, 21]]}
events:
  - iommu_unregister: smmu1
  - iommu_register: smmu1
`,
      "bus-set-iommu-releases-bus",
      "ERANGE",
    );
    expect(p.details.join("\n")).toContain("dev1");
  },
  "failed-register-changes-bus-ops": () => {
    // v6.1 to v6.7: smmu0 registers late; its platform walk fails (a StreamID beyond its 4 bits), and the
    // platform bus keeps the ops iommu_device_register gave it before the walk.
    const p = expectEffect(
      `
name: a failed registration keeps the bus ops
boot: {strategy: {ops_resolution: bus-ops}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0, sid-bits: 4, registered: false}
devices:
  - {name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 21]]}
events:
  - iommu_register: smmu0
`,
      "failed-register-changes-bus-ops",
      "ERANGE",
    );
    expect(p.details.join("\n")).toContain("bus_ops.platform");
  },
  "fwspec-left-after-failed-parse": () => {
    // Up to v6.10: a bind that defers for an IOMMU gone away leaves the otherwise-empty fwspec naming it.
    const p = expectEffect(
      `
name: a deferral leaves an empty fwspec
boot: {strategy: {fwspec_ops: fwspec-carries-ops}}
${SMMU}
devices: [{name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 12]]}]
drivers:
  - {name: drv0, bus: platform, match: [dev0]}
events:
  - driver_unbind: dev0
  - iommu_unregister: smmu0
  - driver_bind: {device: dev0, driver: drv0}
`,
      "fwspec-left-after-failed-parse",
      "EAGAIN",
    );
    expect(p.details.join("\n")).toContain("dev_iommu");
  },
  "bind-keeps-iommu-probe": () => {
    // Unregistered under a bound driver, the device lost its fwspec; the next bind probes it late.
    expectEffect(
      `
name: a late IOMMU probe at a bind that fails
${SMMU}
devices: [{name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 12]]}]
drivers:
  - {name: drv0, bus: platform, match: [dev0]}
  - {name: drv2, bus: platform, match: [dev0], probe_result: {dev0: EPROBE_DEFER}}
events:
  - iommu_unregister: smmu0
  - iommu_register: smmu0
  - driver_unbind: dev0
  - driver_bind: {device: dev0, driver: drv2}
`,
      "bind-keeps-iommu-probe",
      "EAGAIN",
    );
  },
  "map-unwind-keeps-tables": () => {
    // Four pages from the last one below 2^48: the first maps, the second is beyond ias (ERANGE).
    const p = expectEffect(
      `
name: a map that runs past the top of the table
${SMMU}
devices: [{name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 1]]}]
events:
  - domain_alloc: {name: d, device: dev0}
  - map: {domain: d, iova: 0xfffffffff000, paddr: 0x100000, size: 16K}
`,
      "map-unwind-keeps-tables",
      "ERANGE",
    );
    expect(p.details.join("\n")).toMatch(/user_domains\[d\]\.pgtable_pages: 1 -> 4/);
  },
  "map-tears-down-tables": () => {
    // A 4K page at 2M+4K, a 2M block at 4M; then 4M from 2M: the first block tears the table (and
    // its page) down, the second meets the block: EEXIST, and the page stays lost.
    const p = expectEffect(
      `
name: a block over a table, then a leaf in the way
${SMMU}
devices: [{name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 1]]}]
events:
  - domain_alloc: {name: d, device: dev0}
  - map: {domain: d, iova: 0x201000, paddr: 0x1000, size: 4K}
  - map: {domain: d, iova: 0x400000, paddr: 0x400000, size: 2M}
  - map: {domain: d, iova: 0x200000, paddr: 0x800000, size: 4M}
`,
      "map-tears-down-tables",
      "EEXIST",
    );
    expect(p.details.join("\n")).toContain("user_domains[d].mapped_bytes: 2101248 -> 2097152");
  },
  "pgtable-warns-on-refusal": () => {
    expectEffect(
      `
name: a map over a mapped page
${SMMU}
devices: [{name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 1]]}]
events:
  - domain_alloc: {name: d, device: dev0}
  - map: {domain: d, iova: 0x1000, paddr: 0x1000, size: 4K}
  - map: {domain: d, iova: 0x1000, paddr: 0x2000, size: 4K}
`,
      "pgtable-warns-on-refusal",
      "EEXIST",
    );
  },
  "pgtable-enomem-keeps-tables": () => {
    // Two pages of table memory: the pgd and one table, where a 4K page needs three below the pgd.
    const p = expectEffect(
      `
name: out of table memory
${SMMU}
devices: [{name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 1]]}]
events:
  - domain_alloc: {name: d, device: dev0}
  - map: {domain: d, iova: 0x1000, paddr: 0x1000, size: 4K}
`,
      "pgtable-enomem-keeps-tables",
      "ENOMEM",
      2 * 4096,
    );
    expect(p.details.join("\n")).toContain("user_domains[d].pgtable_pages: 1 -> 2");
  },
  "dma-map-iova-cached": () => {
    // The first dma_map sets the DMA domain up; the second takes an IOVA, then its page is beyond oas.
    const p = expectEffect(
      `
name: a dma_map of a page beyond the table
${SMMU}
devices: [{name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 1]]}]
events:
  - dma_map: {device: dev0, name: a, paddr: 0x100000, size: 4K}
  - dma_map: {device: dev0, name: b, paddr: 0x1000000000000, size: 4K}
`,
      "dma-map-iova-cached",
      "ENOMEM",
    );
    expect(p.details.join("\n")).toMatch(/domains\[id=1\]\.dma\.iovas: 1 -> 2/);
  },
  "iova-alloc-flushes-caches": () => {
    // 24-bit DMA mask: 4,095 granules of IOVA. A mapped-and-unmapped page waits in the per-CPU cache;
    // 16 MiB can never fit, so the allocator flushes the cache before it gives up.
    const p = expectEffect(
      `
name: an IOVA allocation that cannot fit
${SMMU}
devices: [{name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 1]], dma-mask: 24}]
events:
  - dma_map: {device: dev0, name: a, paddr: 0x100000, size: 4K}
  - dma_unmap: {device: dev0, name: a}
  - dma_map: {device: dev0, name: b, paddr: 0x100000, size: 16M}
`,
      "iova-alloc-flushes-caches",
      "ENOMEM",
    );
    expect(p.details.join("\n")).toMatch(/domains\[id=1\]\.dma\.iovas: 1 -> 0/);
  },
  "fault-keeps-iotlb-entries": () => {
    // A read-write page, then a read-only one: a write of both caches the first and faults on the second.
    const p = expectEffect(
      `
name: a write that faults on its second page
${SMMU}
devices: [{name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 1]]}]
events:
  - domain_alloc: {name: d, device: dev0}
  - attach_device: {domain: d, device: dev0}
  - map: {domain: d, iova: 0x10000, paddr: 0x100000, size: 4K}
  - map: {domain: d, iova: 0x11000, paddr: 0x200000, size: 4K, prot: r}
  - device_dma: {device: dev0, iova: 0x10000, size: 8K, dir: write}
`,
      "fault-keeps-iotlb-entries",
      "EFAULT",
    );
    expect(p.details.join("\n")).toContain("user_domains[d].iotlb_entries: 0 -> 2");
  },
  "ioas-unmap-keeps-earlier-unmaps": () => {
    // Two areas, then an unmap from the first into the middle of the second: the first goes, ENOENT at the second.
    const p = expectEffect(
      `
name: an IOAS_UNMAP that fails at its second area
iommus: [{name: dmar0, driver: intel-iommu, scope: all}]
devices: [{name: "0000:00:02.0", bus: pci}]
drivers: [{name: vfio-pci, bus: pci, match: ["0000:00:02.0"], driver_managed_dma: true}]
events:
  - iommufd:
      ctx: vm
      calls:
        - ioas_alloc: {as: ioas}
        - device_bind: {device: "0000:00:02.0", as: dev}
        - attach: {dev: dev, pt: ioas}
        - ioas_map: {ioas: ioas, iova: 0x100000, length: 64K}
        - ioas_map: {ioas: ioas, iova: 0x110000, length: 64K}
  - iommufd: {ctx: vm, calls: [{ioas_unmap: {ioas: ioas, iova: 0x100000, length: 0x18000}}]}
`,
      "ioas-unmap-keeps-earlier-unmaps",
      "ENOENT",
    );
    const d = p.details.join("\n");
    expect(d).toContain("iommufd[vm].areas.ioas");
    expect(d).toContain("iommufd[vm].pinned_pages: 32 -> 16");
  },
};

describe("every failure effect happens, is recorded, and covers what it changes", () => {
  it("one case per registry id", () => {
    expect(Object.keys(cases).sort()).toEqual([...FAILURE_EFFECT_IDS].sort());
  });
  for (const id of FAILURE_EFFECT_IDS) it(id, cases[id]);
});

describe("failures that change nothing", () => {
  it("a failed sysfs bind keeps the device's earlier probe_error (bind_store), refused or failing in the probe", () => {
    const s = scenario(`
name: failed probes at boot, then failed sysfs binds
${SMMU}
devices: [{name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 1]]}]
drivers:
  - {name: bad, bus: platform, match: [dev0], probe_result: {dev0: EIO}}
  - {name: bad2, bus: platform, match: [dev0], probe_result: {dev0: ENOMEM}}
events:
  - claim_dma_owner: {device: dev0, owner: vfio}
  - driver_bind: {device: dev0, driver: bad}
  - release_dma_owner: {device: dev0}
  - driver_bind: {device: dev0, driver: bad}
`);
    const m = boot(s, { trace: false });
    const playEvent = (i: number) => step(m, s.events[i]!);
    // At boot both drivers' probes failed; the last one tried is what the device shows.
    expect(takeSnapshot(m, [], []).devices[0]).toMatchObject({ probe: "failed", probe_error: "ENOMEM" });
    expect(playEvent(0)).toBe(0);
    let before = state(takeSnapshot(m, [], []));
    const refused = playEvent(1);
    expect(refused !== 0 && refused.errno).toBe("EBUSY");
    expect(state(takeSnapshot(m, [], []))).toEqual(before);
    expect(playEvent(2)).toBe(0);
    before = state(takeSnapshot(m, [], []));
    const failed = playEvent(3);
    expect(failed !== 0 && failed.errno).toBe("EIO");
    expect(state(takeSnapshot(m, [], []))).toEqual(before);
    expect(before.devices[0]).toMatchObject({ probe: "failed", probe_error: "ENOMEM" });
  });

  it("a map refused before it mapped anything issues no invalidation and changes nothing; a refusal after pages were mapped is the unwind's", () => {
    for (const [iommu, errno] of [
      ["{name: dmar0, driver: intel-iommu, scope: all}", "EADDRINUSE"],
      ["{name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}", "EEXIST"],
    ] as const) {
      const dev = iommu.includes("intel") ? `{name: "0000:00:01.0", bus: pci}` : `{name: dev0, bus: platform, fwnode: /soc/dev0, iommus: [[smmu0, 1]]}`;
      const name = iommu.includes("intel") ? "0000:00:01.0" : "dev0";
      const s = scenario(`
name: refused maps
iommus: [${iommu}]
devices: [${dev}]
events:
  - domain_alloc: {name: d, device: "${name}"}
  - map: {domain: d, iova: 0x3000, paddr: 0x3000, size: 4K}
  - map: {domain: d, iova: 0x3000, paddr: 0x9000, size: 4K}
  - map: {domain: d, iova: 0x3000, paddr: 0x9000, size: 16K}
  - map: {domain: d, iova: 0x1000, paddr: 0x9000, size: 16K}
`);
      const m = boot(s, { trace: false });
      const playEvent = (i: number) => step(m, s.events[i]!);
      expect(playEvent(0)).toBe(0);
      expect(playEvent(1)).toBe(0);
      const before = state(takeSnapshot(m, [], []));
      for (const i of [2, 3]) {
        const r = playEvent(i);
        expect(r !== 0 && r.errno).toBe(errno);
      }
      // The WARN of io-pgtable-arm aside (pgtable-warns-on-refusal), nothing changed: no sync either.
      const after = state(takeSnapshot(m, [], []));
      expect({ ...after, findings: [] }).toEqual({ ...before, findings: [] });
      expect(after.findings.every((f) => / map-exists at /.test(f))).toBe(true);
      // 16K from 0x1000 meets the mapped page third. VT-d's map_pages maps 0x1000 and 0x2000 first and
      // the core's unwind unmaps them (a sync); io-pgtable-arm checks the whole batch before it writes any.
      const r = playEvent(4);
      expect(r !== 0 && r.errno).toBe(errno);
      const d = takeSnapshot(m, [], []).user_domains.d!;
      expect(d.mapped_bytes).toBe(0x1000);
      if (errno === "EADDRINUSE") expect(d.tlb!.invalidations.at(-1)).toEqual({ kind: "sync", iova: 0x1000, size: 0x2000 });
      else expect(d.tlb).toEqual(before.user_domains.d!.tlb);
    }
  });
});
