/**
 * Scenario events for mappings and DMA: iommu_map/iommu_unmap on a domain,
 * the DMA API (dma_map_page, dma_map_sg, dma_unmap), a device performing
 * DMA through its IOMMU, and model time passing (flush-queue timers).
 * None can block. Those that return something (bytes, an address) return
 * it, or an errno.
 */
import type { Device } from "../base/device.ts";
import {
  dmaApiDomain,
  dmaCookie,
  dmaIovaQueued,
  dmaMapPageChecked,
  dmaRunTimers,
  dmaUnmapPage,
  type DmaDataDirection,
  type FqFlushHook,
} from "../dma/dma-iommu.ts";
import { dmaMapSg, dmaUnmapSg } from "../dma/dma-sg.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { __IOMMU_DOMAIN_PAGING } from "../iommu/domain.ts";
import { iommuMap, iommuUnmap } from "../iommu/map.ts";
import { isAligned } from "../lib/bits.ts";
import { iommuDeviceDma } from "../iommu/translate.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../pgtable/types.ts";
import { findDomain } from "./domain-actions.ts";
import type { DmaHandle, Machine } from "./machine.ts";
import { parseSize } from "./scenario/atoms.ts";

type Size = number | string;

/** The trace note for each IOTLB flush a flush queue issues. */
function fqFlushTracer(m: Machine): FqFlushHook {
  return (cookie, reason) => {
    if (!m.k.tracing) return;
    const q = cookie.fq!;
    const n = q.fq.length;
    const waiting = `${n} ${n === 1 ? "entry" : "entries"} waiting`;
    const why = reason === "full" ? `its ring was full (${waiting})` : `its ${q.timeoutMs} ms timer fired at t=${m.dc.now} ms (${waiting})`;
    m.k.note("fq_flush_iotlb", String(cookie.domain), `flush queue flush #${q.flushes}: the whole IOTLB, because ${why}`);
  };
}

/** Hooks the trace onto the flush queue of `dev`'s DMA domain, once its cookie exists (iommu_dma_init_domain runs on first use). */
function traceFlushQueue(m: Machine, dev: Device): void {
  const domain = dmaApiDomain(dev);
  const c = domain === null ? null : dmaCookie(domain);
  if (c !== null && c.fq !== null && c.fqFlushHook === null) c.fqFlushHook = fqFlushTracer(m);
}

/**
 * A live handle whose device no longer maps through the domain it was mapped
 * in (its group's default domain changed, or the device was removed): its
 * DMA address means nothing there, and unmapping it would free whatever
 * now holds that IOVA. The kernel trusts the driver not to do this; the
 * model refuses it.
 */
function staleHandle(dev: Device, name: string, h: DmaHandle): KError | null {
  const now = dmaApiDomain(dev);
  if (now === h.domain) return null;
  const was = h.domain === null ? "dma-direct" : String(h.domain);
  return kerr("EINVAL", `DMA handle '${name}' was mapped through ${was}, but ${h.device} now uses ${now === null ? "dma-direct" : String(now)}: that mapping went with the old domain`);
}

export function map(m: Machine, ref: string | number, iova: Size, paddr: Size, size: Size, prot: "r" | "w" | "rw"): 0 | KError {
  const d = findDomain(m, ref);
  if (isErr(d)) return d;
  const p = (prot.includes("r") ? IOMMU_READ : 0) | (prot.includes("w") ? IOMMU_WRITE : 0);
  return iommuMap(d, parseSize(iova), parseSize(paddr), parseSize(size), p);
}

/** The bytes unmapped, or an errno. */
export function unmap(m: Machine, ref: string | number, iova: Size, size: Size): number | KError {
  const d = findDomain(m, ref);
  if (isErr(d)) return d;
  const at = parseSize(iova);
  const len = parseSize(size);
  // __iommu_unmap returns 0 for these (with a pr_err for the alignment); an event with such arguments is bad input.
  if ((d.type & __IOMMU_DOMAIN_PAGING) === 0) return kerr("EINVAL", `${d} is not a paging domain: nothing to unmap`);
  const min = d.pgsizes[0] ?? 0;
  if (min === 0 || !isAligned(at, min) || !isAligned(len, min) || len === 0) {
    return kerr("EINVAL", `unmap of 0x${len.toString(16)} bytes at IOVA 0x${at.toString(16)}: not a non-zero multiple of ${d}'s smallest page 0x${min.toString(16)}`);
  }
  return iommuUnmap(d, at, len);
}

/** The DMA address, or an errno. */
export function dmaMap(
  m: Machine,
  device: string,
  name: string,
  dir: DmaDataDirection,
  paddr: Size | undefined,
  size: Size | undefined,
  sg: [Size, Size][] | undefined,
): number | KError {
  const dev = m.devices.get(device)!.dev;
  if (m.dmaHandles.get(name)?.live) return kerr("EEXIST", `DMA handle '${name}' is still mapped`);
  if (!dev.registered) return kerr("ENODEV", `${device} is not added`);
  if (sg !== undefined) {
    const r = dmaMapSg(dev, sg.map(([p, l]) => ({ paddr: parseSize(p), length: parseSize(l) })), dir);
    traceFlushQueue(m, dev);
    if (isErr(r)) return r;
    // What iommu_dma_unmap_sg works from: the first entry's DMA address and where the last entry ends.
    m.dmaHandles.set(name, { device, domain: dmaApiDomain(dev), dma: r.dma, size: r.end - r.dma, live: true, sg: true });
    return r.dma;
  }
  if (paddr === undefined || size === undefined) return kerr("EINVAL", "dma_map needs paddr and size, or sg");
  const dma = dmaMapPageChecked(dev, parseSize(paddr), parseSize(size), dir);
  traceFlushQueue(m, dev);
  if (isErr(dma)) return dma;
  m.dmaHandles.set(name, { device, domain: dmaApiDomain(dev), dma, size: parseSize(size), live: true, sg: false });
  return dma;
}

/** The bytes unmapped, or an errno. */
export function dmaUnmap(m: Machine, device: string, name: string): number | KError {
  const h = m.dmaHandles.get(name);
  if (h === undefined || !h.live) return kerr("ENOENT", `no live DMA handle '${name}'`);
  if (h.device !== device) return kerr("EINVAL", `DMA handle '${name}' belongs to ${h.device}, not ${device}`);
  const dev = m.devices.get(device)!.dev;
  const stale = staleHandle(dev, name, h);
  if (stale !== null) return stale;
  traceFlushQueue(m, dev);
  const bytes = h.sg ? dmaUnmapSg(dev, h.dma, h.dma + h.size, m.dc.now) : dmaUnmapPage(dev, h.dma, h.size, m.dc.now);
  h.live = false;
  return bytes;
}

/** The physical address the first byte reached, or an errno. */
export function deviceDma(
  m: Machine,
  device: string,
  iova: Size | undefined,
  handle: string | undefined,
  size: Size | undefined,
  write: boolean,
): number | KError {
  const dev = m.devices.get(device)!.dev;
  let addr: number;
  let len = size === undefined ? 1 : parseSize(size);
  if (handle !== undefined) {
    const h = m.dmaHandles.get(handle);
    if (h === undefined) return kerr("ENOENT", `no DMA handle '${handle}'`);
    if (h.device !== device) return kerr("EINVAL", `DMA handle '${handle}' belongs to ${h.device}, not ${device}`);
    addr = h.dma;
    if (size === undefined) len = h.size;
  } else if (iova !== undefined) {
    addr = parseSize(iova);
  } else {
    return kerr("EINVAL", "device_dma needs iova or handle");
  }
  const r = iommuDeviceDma(m.k, dev, addr, len, write);
  for (const p of r.pages) {
    if (!p.stale) continue;
    const lazy = r.domain !== null && dmaIovaQueued(r.domain, p.iova);
    const what = `${device} ${write ? "wrote" : "read"} IOVA 0x${p.iova.toString(16)} -> PA 0x${p.pa.toString(16)} through a stale IOTLB entry of ${r.domain}`;
    m.ctx.diag.finding(lazy ? `stale IOTLB (lazy invalidation window, the IOVA waits in the flush queue): ${what}` : `stale IOTLB outside any flush queue: ${what}`);
    if (!lazy) m.ctx.diag.isolationBreach(what);
    if (m.k.tracing) m.k.note("device_dma", device, `stale IOTLB entry: ${what}`);
  }
  if (r.fault !== null) return kerr("EFAULT", `IOMMU fault: ${r.faultReason}`);
  return r.pages[0]?.pa ?? addr;
}

export function advanceTime(m: Machine, ms: number): 0 {
  m.dc.now += ms;
  const fired = dmaRunTimers(m.k.domains, m.dc.now);
  if (m.k.tracing) m.k.note("timers", `t=${m.dc.now} ms`, `${fired} flush-queue timer(s) fired`);
  return 0;
}
