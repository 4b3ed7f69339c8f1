/** The vfio_bind and iommufd scenario events: bad input (exit 2 at its key path, nothing run), stale names, and the snapshot's iommufd keys. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { ScenarioError } from "../../src/sim/scenario/load.ts";
import { takeSnapshot } from "../../src/sim/snapshot.ts";
import { boot, run, scenario, state, step } from "../helpers.ts";

const GPU = "0000:01:00.0";
const AUDIO = "0000:01:00.1";
const MACHINE = `
name: iommufd events
iommus:
  - {name: dmar0, driver: intel-iommu, scope: all}
devices:
  - {name: "0000:00:01.0", bus: pci, type: root-port, acs: [SV, RR, CR, UF]}
  - {name: "${GPU}", bus: pci, parent: "0000:00:01.0", multifunction: true}
  - {name: "${AUDIO}", bus: pci, parent: "0000:00:01.0", multifunction: true}
drivers:
  - {name: nouveau, bus: pci, match: ["${GPU}"]}
  - {name: vfio-pci, bus: pci, match: ["${GPU}", "${AUDIO}"], driver_managed_dma: true}
`;

const SETUP = [
  `vfio_bind: "${GPU}"`,
  `vfio_bind: "${AUDIO}"`,
  `iommufd: {ctx: vm0, calls: [{ioas_alloc: {as: ioas}}, {device_bind: {device: "${GPU}", as: gpu}}, {attach: {dev: gpu, pt: ioas}}, {ioas_map: {ioas: ioas, iova: 0x100000, length: 64K}}]}`,
];

const yamlOf = (events: string[]) => MACHINE + `events:\n${events.map((e) => `  - ${e}\n`).join("")}`;

/** The command line's problems for the file: exit 2 for validate, check and run, nothing on stdout. */
async function cliProblems(yaml: string): Promise<string[]> {
  const path = join(mkdtempSync(join(tmpdir(), "iommu-sim-iommufd-")), "bad.yaml");
  writeFileSync(path, yaml);
  const texts: string[] = [];
  for (const cmd of ["validate", "check", "run"]) {
    const out: string[] = [];
    const err: string[] = [];
    expect(await main([cmd, path], { out: (x) => out.push(x), err: (x) => err.push(x) }), cmd).toBe(2);
    expect(out).toEqual([]);
    texts.push(err.join("\n").replaceAll(`${path}:`, "bad.yaml:"));
  }
  expect(texts[1]).toBe(texts[0]);
  expect(texts[2]).toBe(texts[0]);
  return texts[0]!.split("\n");
}

function problems(yaml: string): string[] {
  try {
    scenario(yaml);
  } catch (e) {
    if (e instanceof ScenarioError) return e.message.split("\n").map((l) => l.replace(/^[^:]*:\d+:\d+: /, ""));
    throw e;
  }
  throw new Error("the scenario was accepted");
}

describe("bad input to iommufd and vfio_bind events is exit 2 at its key path", () => {
  it("an object name no call of the context binds", async () => {
    const y = yamlOf([...SETUP, `iommufd: {ctx: vm0, calls: [{attach: {dev: gpu, pt: iaos}}]}`]);
    expect(problems(y)).toEqual(["events[3].iommufd.calls[0].attach.pt: no call of iommufd context 'vm0' names an object 'iaos'; did you mean 'ioas'?"]);
    expect((await cliProblems(y)).join("\n")).toContain("events[3].iommufd.calls[0].attach.pt: no call of iommufd context 'vm0'");
  });

  it("the names the access, copy, HWPT and dirty-tracking calls take are checked, and hwpt_alloc and access_create bind theirs", () => {
    const y = yamlOf([
      ...SETUP,
      `iommufd: {ctx: vm0, calls: [{hwpt_alloc: {dev: gpu, pt: ioas, as: hw}}, {access_create: {ioas: ioas, as: acc}}, {access_pin: {access: acc, iova: 0x100000, length: 4K}}, {get_dirty_bitmap: {hwpt: hw, iova: 0x100000, length: 64K}}]}`,
      `iommufd: {ctx: vm0, calls: [{access_rw: {access: acs, iova: 0x100000, length: 4}}, {ioas_copy: {src: ioas, src_iova: 0x100000, dst: ioas2, length: 4K}}, {set_dirty_tracking: {hwpt: hwp, enable: true}}]}`,
    ]);
    expect(problems(y)).toEqual([
      "events[4].iommufd.calls[0].access_rw.access: no call of iommufd context 'vm0' names an object 'acs'; did you mean 'acc'?",
      "events[4].iommufd.calls[1].ioas_copy.dst: no call of iommufd context 'vm0' names an object 'ioas2'; did you mean 'ioas'?",
      "events[4].iommufd.calls[2].set_dirty_tracking.hwpt: no call of iommufd context 'vm0' names an object 'hwp'; did you mean 'hw'?",
    ]);
  });

  it("a name bound in another context", () => {
    const y = yamlOf([...SETUP, `iommufd: {ctx: vm1, calls: [{destroy: ioas}]}`]);
    expect(problems(y)).toEqual(["events[3].iommufd.calls[0].destroy: no call of iommufd context 'vm1' names an object 'ioas'"]);
  });

  it("an unknown device, for device_bind and vfio_bind", async () => {
    const y = yamlOf([`vfio_bind: "0000:01:00.2"`, `iommufd: {ctx: vm0, calls: [{device_bind: {device: "0000:09:00.0", as: d}}]}`]);
    const p = problems(y);
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(/^events\[0\]\.vfio_bind: unknown device '0000:01:00\.2'/);
    expect(p[1]).toMatch(/^events\[1\]\.iommufd\.calls\[0\]\.device_bind\.device: unknown device '0000:09:00\.0'/);
    expect(await cliProblems(y)).toHaveLength(2);
  });

  it("a context used after the event that closed it", () => {
    const y = yamlOf([...SETUP, `iommufd: {ctx: vm0, calls: [{close: true}]}`, `iommufd: {ctx: vm0, calls: [{ioas_alloc: {as: ioas}}]}`]);
    expect(problems(y)).toEqual(["events[4].iommufd.ctx: iommufd context 'vm0' was closed at events[3]: no event can use it after"]);
  });

  it("a call after close, a call with two keys or none, an unknown call key", () => {
    const y = yamlOf([`iommufd: {ctx: vm0, calls: [{ioas_alloc: {as: a}, destroy: a}, {expect_error: EBUSY}, {close: true}, {destroy: a}]}`]);
    const p = problems(y);
    expect(p).toHaveLength(3);
    expect(p).toContain("events[0].iommufd.calls[0]: a call has exactly one of ioas_alloc, device_bind, attach, replace, detach, unbind, ioas_map, ioas_unmap, ioas_copy, hwpt_alloc, access_create, access_pin, access_unpin, access_rw, access_destroy, set_dirty_tracking, test_dirty, get_dirty_bitmap, destroy, close; found ioas_alloc and destroy");
    expect(p).toContain("events[0].iommufd.calls[1]: a call has exactly one of ioas_alloc, device_bind, attach, replace, detach, unbind, ioas_map, ioas_unmap, ioas_copy, hwpt_alloc, access_create, access_pin, access_unpin, access_rw, access_destroy, set_dirty_tracking, test_dirty, get_dirty_bitmap, destroy, close; found none");
    expect(p).toContain("events[0].iommufd.calls[3]: no call can follow close");
    const u = problems(yamlOf([`iommufd: {ctx: vm2, calls: [{ioas_aloc: {as: a}}]}`]));
    expect(u).toHaveLength(1);
    expect(u[0]).toMatch(/^events\[0\]\.iommufd\.calls\[0\].*'ioas_aloc'.*did you mean 'ioas_alloc'/);
  });

  it("vfio_bind in a scenario with no vfio-pci driver", () => {
    const y = MACHINE.replace(/ {2}- \{name: vfio-pci.*\n/, "") + `events:\n  - vfio_bind: "${GPU}"\n`;
    expect(problems(y)).toEqual(["events[0].vfio_bind: unknown driver 'vfio-pci': expected one of nouveau"]);
  });
});

describe("at run time", () => {
  it("a name whose object was destroyed is ENOENT, and nothing changes", () => {
    const s = scenario(yamlOf([`iommufd: {ctx: vm0, calls: [{ioas_alloc: {as: a}}, {destroy: a}]}`, `iommufd: {ctx: vm0, calls: [{ioas_map: {ioas: a, length: 4K}}]}`]));
    const m = boot(s);
    expect(step(m, s.events[0]!)).toBe(0);
    const before = state(takeSnapshot(m, [], []));
    const r = step(m, s.events[1]!);
    expect(r === 0 ? "ok" : r.errno).toBe("ENOENT");
    expect(state(takeSnapshot(m, [], []))).toEqual(before);
  });

  it("device_bind of a device on a kernel driver is EINVAL, and nothing changes", () => {
    const s = scenario(yamlOf([`iommufd: {ctx: vm0, calls: [{ioas_alloc: {as: a}}]}`, `iommufd: {ctx: vm0, calls: [{device_bind: {device: "${GPU}", as: g}}]}`]));
    const m = boot(s);
    expect(step(m, s.events[0]!)).toBe(0);
    const before = state(takeSnapshot(m, [], []));
    const r = step(m, s.events[1]!);
    expect(r === 0 ? "ok" : r.errno).toBe("EINVAL");
    expect(state(takeSnapshot(m, [], []))).toEqual(before);
  });

  it("a call that succeeds against its expect_error fails the event with EBADE", () => {
    const s = scenario(yamlOf([`iommufd: {ctx: vm0, calls: [{ioas_alloc: {as: a}, expect_error: ENOMEM}]}`]));
    const r = step(boot(s), s.events[0]!);
    expect(r === 0 ? "ok" : `${r.errno} ${r.message}`).toBe("EBADE calls[0] ioas_alloc succeeded, but its expect_error says ENOMEM");
  });

  it("a result that differs from the one the call states fails the event with EBADE, the calls before it done", () => {
    const s = scenario(
      yamlOf([
        ...SETUP,
        `iommufd: {ctx: vm0, calls: [{access_create: {ioas: ioas, as: acc}}, {access_rw: {access: acc, iova: 0x100000, length: 8, write: true, byte: 7}}, {access_rw: {access: acc, iova: 0x100000, length: 8, expect_bytes: 9}}]}`,
        `iommufd: {ctx: vm0, calls: [{ioas_map: {ioas: ioas, length: 4K, expect_iova: 0x2000}}]}`,
        `iommufd: {ctx: vm0, calls: [{ioas_unmap: {ioas: ioas, iova: 0x100000, length: 64K, expect_unmapped: 4K}}]}`,
      ]),
    );
    const m = boot(s);
    const msgs = s.events.map((e) => {
      const r = step(m, e);
      return r === 0 ? "ok" : `${r.errno} ${r.message}`;
    });
    expect(msgs.slice(3)).toEqual([
      "EBADE calls[2] access_rw: byte 0 read 0x7, not 0x9",
      "EBADE calls[0] ioas_map: the map landed at 0x1000, not 0x2000",
      "EBADE calls[0] ioas_unmap: the unmap reported 0x10000 bytes, not 0x1000",
    ]);
    // The access the failed event created stays: the calls before the mismatch are done.
    expect(takeSnapshot(m, [], []).iommufd.vm0!.objects.some((o) => o.name === "acc")).toBe(true);
  });
});

describe("the snapshot's iommufd keys", () => {
  it("objects with their names, IOAS areas, pins, and close", () => {
    const r = run(yamlOf([...SETUP, "expect: {iommufd: {vm0: {objects: 3, pinned_pages: 16, areas: {ioas: [{iova: 0x100000, length: 64K}]}}}}"]));
    expect(r.failures).toEqual([]);
    const c = r.snapshot.iommufd.vm0!;
    expect(c.closed).toBe(false);
    expect(c.objects.map((o) => [o.type, o.name])).toEqual([
      ["IOAS", "ioas"],
      ["DEVICE", "gpu"],
      ["HWPT_PAGING", null],
    ]);
    expect(c.areas).toEqual({ ioas: [{ iova: 0x100000, length: 0x10000 }] });
    expect(c.pinned_pages).toBe(16);
    const closed = run(yamlOf([...SETUP, `iommufd: {ctx: vm0, calls: [{close: true}]}`]));
    expect(closed.snapshot.iommufd.vm0).toEqual({ closed: true, objects: [], areas: {}, pinned_pages: 0 });
    expect(closed.snapshot.groups.find((g) => g.devices.includes(GPU))!.owner).toBe("none");
  });

  it("expect reports a wrong object count, areas and an unknown context", () => {
    const r = run(yamlOf([...SETUP, "expect: {iommufd: {vm0: {objects: 2, areas: {ioas: []}}, vm9: {closed: false}}}"]));
    expect(r.failures.map((f) => f.message)).toEqual([
      'iommufd.vm0.objects: expected 2, got 3 ["ioas","gpu","HWPT_PAGING 3"]',
      'iommufd.vm0.areas.ioas: expected [], got [{"iova":1048576,"length":65536}]',
      "iommufd.vm9: no iommufd event opened a context \"vm9\"",
    ]);
  });
});
