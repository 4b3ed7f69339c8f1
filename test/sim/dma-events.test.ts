/** DMA scenario events: bad input, scatterlist handles, and what the snapshot and trace show of invalidations. */
import { describe, expect, it } from "vitest";
import { dmaCookie } from "../../src/dma/dma-iommu.ts";
import { IOVA_DEFAULT_FQ_SIZE } from "../../src/dma/flush-queue.ts";
import { checkIovaDomain } from "../../src/dma/iova/check.ts";
import { devGroup } from "../../src/iommu/dev-iommu.ts";
import { takeSnapshot, type DomainSnap, type Snapshot } from "../../src/sim/snapshot.ts";
import { boot, run, scenario, state, step } from "../helpers.ts";

const NIC = "0000:00:01.0";

function machineYaml(cmdline: string): string {
  return `
name: dma events
boot: {arch: x86, cmdline: "${cmdline}"}
iommus:
  - {name: dmar, driver: intel-iommu, scope: all}
devices:
  - {name: "${NIC}", bus: pci}
`;
}

/** The NIC's default (DMA) domain in a snapshot. */
function nicDomain(snap: Pick<Snapshot, "groups" | "domains">): DomainSnap {
  const id = snap.groups.find((g) => g.devices.includes(NIC))!.default_domain;
  return snap.domains.find((d) => d.id === id)!;
}

/** Runs `setup` events, then `bad`; returns the failing event's result and the state before and after it. */
function attempt(cmdline: string, setup: string[], bad: string) {
  const s = scenario(machineYaml(cmdline) + `events:\n${[...setup, bad].map((e) => `  - ${e}\n`).join("")}`);
  const m = boot(s);
  for (const e of s.events.slice(0, -1)) expect(step(m, e)).toBe(0);
  const before = state(takeSnapshot(m, [], []));
  const r = step(m, s.events.at(-1)!);
  const after = state(takeSnapshot(m, [], []));
  return { r: r === 0 ? "ok" : r.errno, before, after };
}

describe("dma_map of zero bytes", () => {
  const setup = [`dma_map: {device: "${NIC}", name: a, paddr: 0x100000, size: 0x1000}`];

  it("dma_map_page: the event records EINVAL and nothing changes", () => {
    for (const cmdline of ["iommu.strict=1", ""]) {
      for (const paddr of ["0x200000", "0x200123"]) {
        const { r, before, after } = attempt(cmdline, setup, `dma_map: {device: "${NIC}", name: z, paddr: ${paddr}, size: 0}`);
        expect(r).toBe("EINVAL");
        expect(after).toEqual(before);
      }
    }
  });

  it("dma_map_sg with a zero-length entry: EINVAL, nothing changes", () => {
    const { r, before, after } = attempt("iommu.strict=1", setup, `dma_map: {device: "${NIC}", name: z, sg: [[0x200000, 0x1000], [0x300000, 0]]}`);
    expect(r).toBe("EINVAL");
    expect(after).toEqual(before);
  });

  it("a scenario asserting it runs to the end (the model used to stop with an internal error)", () => {
    const r = run(`${machineYaml("iommu.strict=1")}events:
  - dma_map: {device: "${NIC}", name: z, paddr: 0x200000, size: 0}
    expect_error: EINVAL
  - dma_map: {device: "${NIC}", name: z, paddr: 0x200000, size: 0x1000}
    expect_value: 0xfffff000
  - expect: {violations: []}
`);
    expect(r.failures).toEqual([]);
    expect(r.snapshot.events.map((e) => [e.event, e.result])).toEqual([
      ["dma_map", "EINVAL"],
      ["dma_map", "ok"],
    ]);
  });
});

describe("dma_unmap of a dma_map_sg handle", () => {
  it("unmaps the list's IOVA range from its first entry's offset: no page too many, the range freed as allocated", () => {
    const r = run(`${machineYaml("iommu.strict=1")}events:
  - dma_map: {device: "${NIC}", name: a, paddr: 0x300000, size: 0x1000}
    expect_value: 0xfffff000
  - dma_map: {device: "${NIC}", name: b, paddr: 0x400000, size: 0x1000}
    expect_value: 0xffffe000
  # Two granules right below b; the first entry starts 0x200 into its page.
  - dma_map: {device: "${NIC}", name: s, sg: [[0x100200, 0x800], [0x200000, 0x800]]}
    expect_value: 0xffffc200
  - dma_unmap: {device: "${NIC}", name: s}
    expect_value: 0x2000
  - device_dma: {device: "${NIC}", iova: 0xffffc000, size: 0x2000}
    expect_error: EFAULT
  # b, the page right above the list, is still mapped.
  - device_dma: {device: "${NIC}", handle: b}
    expect_value: 0x400000
  - dma_unmap: {device: "${NIC}", name: a}
  - dma_unmap: {device: "${NIC}", name: b}
  - expect: {violations: []}
`);
    expect(r.failures).toEqual([]);
    // The handle keeps what iommu_dma_unmap_sg works from: the first entry's DMA address and the span to the last entry's end.
    expect(r.snapshot.dma_handles.s).toEqual({ device: NIC, dma: 0xffff_c200, size: 0x1600, live: false, sg: true });
    const d = nicDomain(r.snapshot);
    expect(d.mapped_bytes).toBe(0);
    // The list's unmap invalidated exactly its two granules.
    expect(d.tlb!.invalidations!.filter((i) => i.iova === 0xffff_c000)).toEqual([{ kind: "sync", iova: 0xffff_c000, size: 0x2000 }]);
    const cookie = dmaCookie(devGroup(r.machine.devices.get(NIC)!.dev)!.defaultDomain!)!;
    expect(checkIovaDomain(cookie.iovad)).toEqual([]);
  });
});

describe("flush-queue flushes in the trace and the snapshot", () => {
  // 256 map/unmap pairs: the 256th unmap finds 255 entries waiting (a full ring); then the timer fires.
  const pairs = Array.from(
    { length: IOVA_DEFAULT_FQ_SIZE },
    (_, i) => `  - dma_map: {device: "${NIC}", name: b, paddr: ${0x100000 + i * 0x1000}, size: 0x1000}\n  - dma_unmap: {device: "${NIC}", name: b}\n`,
  ).join("");
  const yaml = `${machineYaml("")}events:\n${pairs}  - advance_time: 10\n`;

  it("each flush is a trace note naming its cause; the dma block counts them, the tlb block shows flush-alls", () => {
    const r = run(yaml);
    expect(r.failures).toEqual([]);
    const notes = r.machine.ctx.trace.records.filter((t) => t.fn === "fq_flush_iotlb");
    expect(notes.map((n) => n.detail)).toEqual([
      `flush queue flush #1: the whole IOTLB, because its ring was full (${IOVA_DEFAULT_FQ_SIZE - 1} entries waiting)`,
      "flush queue flush #2: the whole IOTLB, because its 10 ms timer fired at t=10 ms (1 entry waiting)",
    ]);
    const d = nicDomain(r.snapshot);
    expect(d.type).toBe("DMA-FQ");
    expect(d.dma).toMatchObject({ fq: 0, fq_flushes: 2, fq_full_flushes: 1, fq_timer_flushes: 1 });
    expect(d.tlb).toMatchObject({ flushAll: 2, sync: 0, addPage: 0 });
    expect(d.tlb!.invalidations).toEqual([
      { kind: "flush_all", iova: null, size: null },
      { kind: "flush_all", iova: null, size: null },
    ]);
  });

  it("without the trace the counts are the same and no note is made", () => {
    const r = run(yaml, { trace: false });
    expect(r.machine.ctx.trace.records.filter((t) => t.fn === "fq_flush_iotlb")).toEqual([]);
    expect(nicDomain(r.snapshot).dma).toMatchObject({ fq: 0, fq_flushes: 2, fq_full_flushes: 1, fq_timer_flushes: 1 });
  });
});

describe("a DMA handle outlives the domain it was mapped in", () => {
  const map = (name: string) => `dma_map: {device: "${NIC}", name: ${name}, paddr: 0x100000, size: 0x1000}`;

  it("after device_del and device_add (a new default domain at the same IOVA), dma_unmap of the old handle is EINVAL and frees nothing", () => {
    const { r, before, after } = attempt("iommu.strict=1", [map("a"), `device_del: "${NIC}"`, `device_add: "${NIC}"`, map("b")], `dma_unmap: {device: "${NIC}", name: a}`);
    expect(r).toBe("EINVAL");
    expect(after).toEqual(before);
    // b's mapping is intact: the same IOVA the stale handle named still translates.
    expect(nicDomain(after).mapped_bytes).toBe(0x1000);
  });

  it("after the group's default domain changes type through sysfs, the old handle is refused", () => {
    const { r, before, after } = attempt(
      "iommu.strict=1",
      [map("a"), `group_type: {device: "${NIC}", type: identity}`, `group_type: {device: "${NIC}", type: DMA}`],
      `dma_unmap: {device: "${NIC}", name: a}`,
    );
    expect(r).toBe("EINVAL");
    expect(after).toEqual(before);
  });

  it("device_dma with a handle of another device is EINVAL", () => {
    const s = scenario(
      machineYaml("iommu.strict=1") + `  - {name: "0000:00:02.0", bus: pci}\nevents:\n  - ${map("a")}\n  - device_dma: {device: "0000:00:02.0", handle: a}\n`,
    );
    const m = boot(s);
    expect(step(m, s.events[0]!)).toBe(0);
    const r = step(m, s.events[1]!);
    expect(r !== 0 && r.errno).toBe("EINVAL");
  });
});

describe("a failed dma_map says why", () => {
  it("ENOMEM, with the page-table error in the sentence, and nothing changes", () => {
    // A first mapping sets the domain's DMA cookie up (iommu_dma_init_domain), so the bad one finds it ready.
    const s = scenario(
      machineYaml("iommu.strict=1") +
        `events:\n  - dma_map: {device: "${NIC}", name: a, paddr: 0x100000, size: 0x1000}\n  - dma_map: {device: "${NIC}", name: big, paddr: 0x10000000000000, size: 0x1000}\n`,
    );
    const m = boot(s);
    expect(step(m, s.events[0]!)).toBe(0);
    const before = state(takeSnapshot(m, [], []));
    const r = step(m, s.events[1]!);
    expect(r !== 0 && r.errno).toBe("ENOMEM");
    // PA 2^52 is beyond the VT-d table's 52-bit output size: the format refuses it with ERANGE.
    expect(r !== 0 && r.message).toMatch(/iommu_map failed: ERANGE/);
    // The IOVA it took goes back through free_iova_fast: parked in the per-CPU cache, so the allocator
    // holds one range more, as the kernel's would, and the findings say so (failure effect
    // dma-map-iova-cached); the tables and everything else are as before.
    const after = state(takeSnapshot(m, [], []));
    expect(nicDomain(after).dma!.iovas).toBe(nicDomain(before).dma!.iovas + 1);
    expect(after.findings).toEqual([...before.findings, expect.stringMatching(/^failure effect dma-map-iova-cached \(iommu_dma_free_iova\): domain \d+ \(DMA\): the map failed with ERANGE/)]);
    const withoutIovas = (x: typeof before) => ({ ...x, findings: [], domains: x.domains.map((d) => ({ ...d, dma: d.dma === null ? null : { ...d.dma, iovas: 0 } })) });
    expect(withoutIovas(after)).toEqual(withoutIovas(before));
  });
});

describe("the sysfs switch of a DMA domain to DMA-FQ", () => {
  it("brings the flush queue up first (iommu_dma_init_fq): the next dma_unmap is lazy", () => {
    const r = run(
      machineYaml("iommu.strict=1") +
        `events:\n  - dma_map: {device: "${NIC}", name: a, paddr: 0x100000, size: 0x1000}\n  - group_type: {device: "${NIC}", type: DMA-FQ}\n  - dma_unmap: {device: "${NIC}", name: a}\n`,
    );
    expect(r.violations).toEqual([]);
    const d = nicDomain(r.snapshot);
    expect(d.type).toBe("DMA-FQ");
    // The IOVA waits in the flush queue instead of going back at once.
    expect(d.dma).toMatchObject({ fq: 1, fq_flushes: 0 });
  });
});
