/**
 * Scenario events for mappings and DMA: iommu_map/iommu_unmap on a domain,
 * the DMA API (dma_map_page, dma_map_sg, dma_unmap), a device performing
 * DMA through its IOMMU, and model time passing (flush-queue timers).
 * Each sets `m.lastValue` to what the call returns (bytes, an address).
 */
import type { Path } from "../base/path.ts";
import { dmaIovaQueued, dmaMapPage, dmaMapSg, dmaRunTimers, dmaUnmapPage, DMA_MAPPING_ERROR, type DmaDataDirection } from "../dma/dma-iommu.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { iommuMap, iommuUnmap } from "../iommu/map.ts";
import { iommuDeviceDma } from "../iommu/translate.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../pgtable/types.ts";
import { findDomain } from "./domain-actions.ts";
import type { Machine } from "./machine.ts";
import { parseSize } from "./scenario/schema.ts";

type Size = number | string;

export function* map(m: Machine, ref: string | number, iova: Size, paddr: Size, size: Size, prot: "r" | "w" | "rw"): Path<0 | KError> {
  const d = findDomain(m, ref);
  if (isErr(d)) return d;
  const p = (prot.includes("r") ? IOMMU_READ : 0) | (prot.includes("w") ? IOMMU_WRITE : 0);
  return iommuMap(d, parseSize(iova), parseSize(paddr), parseSize(size), p);
}

export function* unmap(m: Machine, ref: string | number, iova: Size, size: Size): Path<0 | KError> {
  const d = findDomain(m, ref);
  if (isErr(d)) return d;
  m.lastValue = iommuUnmap(d, parseSize(iova), parseSize(size));
  return 0;
}

export function* dmaMap(
  m: Machine,
  device: string,
  name: string,
  dir: DmaDataDirection,
  paddr: Size | undefined,
  size: Size | undefined,
  sg: [Size, Size][] | undefined,
): Path<0 | KError> {
  const dev = m.devices.get(device)!.dev;
  if (m.dmaHandles.get(name)?.live) return kerr("EEXIST", `DMA handle '${name}' is still mapped`);
  if (!dev.registered) return kerr("ENODEV", `${device} is not added`);
  if (sg !== undefined) {
    const r = dmaMapSg(dev, sg.map(([p, l]) => ({ paddr: parseSize(p), length: parseSize(l) })), dir);
    if (isErr(r)) return r;
    m.dmaHandles.set(name, { device, dma: r.dma, size: r.len, live: true, sg: true });
    m.lastValue = r.dma;
    return 0;
  }
  if (paddr === undefined || size === undefined) return kerr("EINVAL", "dma_map needs paddr and size, or sg");
  const dma = dmaMapPage(dev, parseSize(paddr), parseSize(size), dir);
  if (dma === DMA_MAPPING_ERROR) return kerr("ENOMEM", `DMA_MAPPING_ERROR: no mapping for ${device} below its DMA mask 0x${dev.dmaMask.toString(16)}`);
  m.dmaHandles.set(name, { device, dma, size: parseSize(size), live: true, sg: false });
  m.lastValue = dma;
  return 0;
}

export function* dmaUnmap(m: Machine, device: string, name: string): Path<0 | KError> {
  const h = m.dmaHandles.get(name);
  if (h === undefined || !h.live) return kerr("ENOENT", `no live DMA handle '${name}'`);
  if (h.device !== device) return kerr("EINVAL", `DMA handle '${name}' belongs to ${h.device}, not ${device}`);
  const dev = m.devices.get(device)!.dev;
  m.lastValue = dmaUnmapPage(dev, h.dma, h.size, m.dc.now);
  h.live = false;
  return 0;
}

export function* deviceDma(
  m: Machine,
  device: string,
  iova: Size | undefined,
  handle: string | undefined,
  size: Size | undefined,
  write: boolean,
): Path<0 | KError> {
  const dev = m.devices.get(device)!.dev;
  let addr: number;
  let len = size === undefined ? 1 : parseSize(size);
  if (handle !== undefined) {
    const h = m.dmaHandles.get(handle);
    if (h === undefined) return kerr("ENOENT", `no DMA handle '${handle}'`);
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
    m.findings.push(lazy ? `stale IOTLB (lazy invalidation window, the IOVA waits in the flush queue): ${what}` : `stale IOTLB outside any flush queue: ${what}`);
    if (!lazy) m.isolationBreaches.push(what);
    if (m.k.tracing) m.k.note("device_dma", device, `stale IOTLB entry: ${what}`);
  }
  if (r.fault !== null) return kerr("EFAULT", `IOMMU fault: ${r.faultReason}`);
  m.lastValue = r.pages[0]?.pa ?? addr;
  return 0;
}

export function* advanceTime(m: Machine, ms: number): Path<0 | KError> {
  m.dc.now += ms;
  const fired = dmaRunTimers(m.k.domains, m.dc.now);
  if (m.k.tracing) m.k.note("timers", `t=${m.dc.now} ms`, `${fired} flush-queue timer(s) fired`);
  return 0;
}
