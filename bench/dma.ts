/**
 * DMA API benchmark: dma_map_page + dma_unmap_page pairs through a DMA
 * domain on an Arm SMMUv3 (LPAE stage 1, 4K granule): IOVA from the per-CPU
 * cache, iommu_map of one 4K page, iommu_unmap with a gathered sync (strict)
 * or a flush-queue entry (lazy, DMA-FQ), IOVA back to the cache. Also the
 * core's iommu_map/iommu_unmap of one page, the part of the pair below the
 * DMA layer.
 */
import { runPath } from "../src/base/path.ts";
import type { Device } from "../src/base/device.ts";
import { dmaMapPage, dmaUnmapPage, DMA_MAPPING_ERROR } from "../src/dma/dma-iommu.ts";
import { devGroup } from "../src/iommu/dev-iommu.ts";
import { IOMMU_DOMAIN_DMA, IOMMU_DOMAIN_DMA_FQ } from "../src/iommu/domain.ts";
import { iommuMap, iommuUnmap } from "../src/iommu/map.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../src/pgtable/types.ts";
import { Machine } from "../src/sim/machine.ts";
import { bootPath } from "../src/sim/runner.ts";
import { parseScenario } from "../src/sim/scenario/load.ts";
import { best, median } from "./stats.ts";

const N = 2_000_000;
const RUNS = 5;

function bootNic(strict: boolean): Device {
  const scenario = `
name: dma bench
boot: {cmdline: "iommu.strict=${strict ? 1 : 0}"}
iommus:
  - {name: smmu, driver: arm-smmu-v3, fwnode: /smmu}
devices:
  - {name: nic, bus: platform, fwnode: /nic, iommus: [[smmu, 1]]}
`;
  const m = new Machine(parseScenario(scenario, "bench"), { trace: false });
  runPath(bootPath(m, []));
  const dev = m.devices.get("nic")!.dev;
  const type = devGroup(dev)?.defaultDomain?.type;
  if (type !== (strict ? IOMMU_DOMAIN_DMA : IOMMU_DOMAIN_DMA_FQ)) throw new Error(`nic's default domain is not ${strict ? "DMA" : "DMA-FQ"}`);
  return dev;
}

/** ns per iteration of `body` over N iterations: one warm-up run, then RUNS timed runs. */
function timeRuns(body: () => void): number[] {
  const ns: number[] = [];
  for (let run = 0; run <= RUNS; run++) {
    const t0 = performance.now();
    body();
    if (run > 0) ns.push(((performance.now() - t0) * 1e6) / N);
  }
  return ns;
}

function dmaPairs(dev: Device): number[] {
  return timeRuns(() => {
    for (let i = 0; i < N; i++) {
      const pa = 0x4_0000_0000 + (i & 1023) * 4096;
      const dma = dmaMapPage(dev, pa, 4096, "bidirectional");
      if (dma === DMA_MAPPING_ERROR) throw new Error("dma_map_page failed");
      dmaUnmapPage(dev, dma, 4096);
    }
  });
}

function row(label: string, ns: number[], extra = ""): string {
  const med = median(ns);
  return `  ${label.padEnd(58)} ${med.toFixed(0).padStart(5)} ns (best ${best(ns).toFixed(0).padStart(4)})  ${(1e3 / med).toFixed(2)} M pairs/s${extra}`;
}

export async function benchDma(log: (line: string) => void): Promise<void> {
  log(`dma: DMA domain on an SMMUv3 (LPAE S1, 4K granule), one CPU; median of ${RUNS} runs of ${N / 1e6} M pairs, best run beside it`);
  const strictDev = bootNic(true);
  const strict = dmaPairs(strictDev);
  log(row("dma_map_page + dma_unmap_page, strict (DMA)", strict, `  (goal: >= 5 M pairs/s, ${1e3 / 5} ns)`));
  const lazy = dmaPairs(bootNic(false));
  log(row("dma_map_page + dma_unmap_page, lazy (DMA-FQ)", lazy));

  const domain = devGroup(strictDev)!.defaultDomain!;
  const core = timeRuns(() => {
    for (let i = 0; i < N; i++) {
      const iova = 0x1000_0000 + (i & 1023) * 4096;
      if (iommuMap(domain, iova, iova, 4096, IOMMU_READ | IOMMU_WRITE) !== 0 || iommuUnmap(domain, iova, 4096) !== 4096) {
        throw new Error(`iommu_map/iommu_unmap of IOVA 0x${iova.toString(16)} failed`);
      }
    }
  });
  log(row("iommu_map + iommu_unmap (core splitting + driver + sync)", core));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchDma((l) => console.log(l));
}
