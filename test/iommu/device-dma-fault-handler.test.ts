/**
 * iommu_set_fault_handler and report_iommu_fault: a device DMA fault
 * reaches the handler of the domain it faulted in, with the domain, the
 * device, the IOVA, the read/write flag and the token; without a handler
 * report_iommu_fault returns -ENOSYS. Only a domain whose cookie slot is
 * empty takes a handler: a DMA-API domain (its IOVA cookie) or a domain
 * that already has one is a WARN and the call is ignored.
 */
import { describe, expect, it } from "vitest";
import type { Device } from "../../src/base/device.ts";
import { devGroup } from "../../src/iommu/dev-iommu.ts";
import { iommuPagingDomainAlloc } from "../../src/iommu/domain-alloc.ts";
import { IOMMU_DOMAIN_BLOCKED, type IommuDomain } from "../../src/iommu/domain.ts";
import {
  IOMMU_FAULT_READ,
  IOMMU_FAULT_WRITE,
  REPORT_FAULT_NO_HANDLER,
  iommuDomainCookieType,
  iommuSetFaultHandler,
  reportIommuFault,
} from "../../src/iommu/fault.ts";
import { iommuDeviceDma } from "../../src/iommu/translate.ts";
import { isErr } from "../../src/lib/errno.ts";
import type { Machine } from "../../src/sim/machine.ts";
import { boot, step } from "../helpers.ts";

const SMMU = `
name: smmu
iommus:
  - {name: s, driver: arm-smmu-v3, fwnode: /s}
devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[s, 1]]}
drivers:
  - {name: da, bus: platform, match: [a]}
`;

/** An UNMANAGED domain named "d" attached to `a` (its driver unbound first, as VFIO would). */
function unmanaged(m: Machine): { d: IommuDomain; dev: Device } {
  expect(step(m, { driver_unbind: "a" })).toBe(0);
  const dev = m.devices.get("a")!.dev;
  const d = iommuPagingDomainAlloc(m.k, dev);
  if (isErr(d)) throw new Error(d.message);
  m.userDomains.set("d", d);
  expect(step(m, { attach_device: { domain: "d", device: "a" } })).toBe(0);
  return { d, dev };
}

interface Call {
  domain: IommuDomain;
  dev: Device;
  iova: number;
  flags: number;
  token: unknown;
}

describe("a device DMA fault reaches the domain's handler", () => {
  it("with the domain, the device, the iova, IOMMU_FAULT_READ or _WRITE and the token; its answer is report_iommu_fault's", () => {
    const m = boot(SMMU);
    const { d, dev } = unmanaged(m);
    expect(iommuDomainCookieType(d)).toBe("NONE");
    const calls: Call[] = [];
    const token = { owner: "remoteproc" };
    expect(iommuSetFaultHandler(m.k, d, (domain, fdev, iova, flags, tok) => (calls.push({ domain, dev: fdev, iova, flags, token: tok }), -5), token)).toBe(0);
    expect(iommuDomainCookieType(d)).toBe("FAULT_HANDLER");

    const rd = iommuDeviceDma(m.k, dev, 0x40_0123, 16, false);
    expect([rd.fault, rd.faultType, rd.faultFlags, rd.faultRet]).toEqual([0x40_0123, "translation", IOMMU_FAULT_READ, -5]);
    // Through the scenario event: the DMA fails (EFAULT) whatever the handler answered.
    const wr = step(m, { device_dma: { device: "a", iova: 0x50_0000, size: 8, dir: "write" } });
    expect(wr !== 0 && wr.errno).toBe("EFAULT");
    expect(calls).toEqual([
      { domain: d, dev, iova: 0x40_0123, flags: IOMMU_FAULT_READ, token },
      { domain: d, dev, iova: 0x50_0000, flags: IOMMU_FAULT_WRITE, token },
    ]);
    expect(calls[0]!.domain).toBe(d);
    expect(calls[0]!.token).toBe(token);
    const notes = m.ctx.trace.records.filter((t) => t.fn === "report_iommu_fault").map((t) => t.detail);
    expect(notes).toEqual([expect.stringMatching(/^iova 0x400123 read in .*: handler returned -5$/), expect.stringMatching(/^iova 0x500000 write in .*: handler returned -5$/)]);
  });

  it("a blocking domain's fault is reported too (a static domain's cookie slot is empty)", () => {
    const m = boot("name: mock\niommus:\n  - {name: mock-iommu, driver: mock}\ndevices:\n  - {name: md, bus: iommufd_mock}\n");
    const dev = m.devices.get("md")!.dev;
    const blocked = devGroup(dev)!.domain!;
    expect(blocked.type).toBe(IOMMU_DOMAIN_BLOCKED);
    const seen: [number, number][] = [];
    expect(iommuSetFaultHandler(m.k, blocked, (_d, _dev, iova, flags) => (seen.push([iova, flags]), 0), null)).toBe(0);
    const r = iommuDeviceDma(m.k, dev, 0x100_0000, 4, true);
    expect([r.faultType, r.faultRet]).toEqual(["blocked", 0]);
    expect(seen).toEqual([[0x100_0000, IOMMU_FAULT_WRITE]]);
  });
});

describe("without a handler report_iommu_fault returns -ENOSYS", () => {
  it("device DMA faults as before and the trace says no handler took it", () => {
    const m = boot(SMMU);
    const { d, dev } = unmanaged(m);
    const r = iommuDeviceDma(m.k, dev, 0x40_0000, 4, true);
    expect([r.faultType, r.faultFlags, r.faultRet]).toEqual(["translation", IOMMU_FAULT_WRITE, -38]);
    expect(REPORT_FAULT_NO_HANDLER).toBe(-38);
    expect(reportIommuFault(m.k, d, dev, 0x1000, IOMMU_FAULT_READ)).toBe(-38);
    const notes = m.ctx.trace.records.filter((t) => t.fn === "report_iommu_fault").map((t) => t.detail);
    expect(notes).toEqual([expect.stringMatching(/write .*: no handler \(-ENOSYS\)$/), expect.stringMatching(/^iova 0x1000 read .*: no handler \(-ENOSYS\)$/)]);
  });
});

describe("iommu_set_fault_handler takes only a domain whose cookie slot is empty", () => {
  it("a DMA-API default domain holds its IOVA cookie: WARN, nothing installed, faults still -ENOSYS", () => {
    const m = boot(SMMU);
    const dev = m.devices.get("a")!.dev;
    const dma = devGroup(dev)!.domain!;
    expect(iommuDomainCookieType(dma)).toBe("DMA_IOVA");
    const r = iommuSetFaultHandler(m.k, dma, () => 0, null);
    expect(r !== 0 && r.errno).toBe("EBUSY");
    expect(dma.faultHandler).toBeNull();
    expect(m.ctx.diag.warnings).toContainEqual(expect.objectContaining({ fn: "iommu_set_fault_handler", message: expect.stringMatching(/^WARN_ON: .*cookie_type DMA_IOVA, not NONE/) }));
    expect(iommuDeviceDma(m.k, dev, 0x1000, 4, false).faultRet).toBe(-38);
  });

  it("a second handler is refused and the first stays", () => {
    const m = boot(SMMU);
    const { d, dev } = unmanaged(m);
    const first: number[] = [];
    expect(iommuSetFaultHandler(m.k, d, (_d, _v, iova) => (first.push(iova), 0), "first")).toBe(0);
    const again = iommuSetFaultHandler(m.k, d, () => 1, "second");
    expect(again !== 0 && again.errno).toBe("EBUSY");
    expect(d.faultHandlerToken).toBe("first");
    iommuDeviceDma(m.k, dev, 0x2000, 4, false);
    expect(first).toEqual([0x2000]);
  });
});
