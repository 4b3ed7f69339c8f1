/**
 * DMA API benchmark: dma_map_page + dma_unmap_page pairs through a strict
 * DMA domain (Arm SMMUv3, LPAE stage 1, 4K granule): IOVA from the per-CPU
 * cache, iommu_map of one 4K page, iommu_unmap with a gathered sync, IOVA
 * back to the cache. Also the core's iommu_map/iommu_unmap of one page.
 */
import { runPath } from "../src/base/path.ts";
import { dmaMapPage, dmaUnmapPage, DMA_MAPPING_ERROR } from "../src/dma/dma-iommu.ts";
import { devGroup } from "../src/iommu/dev-iommu.ts";
import { iommuMap, iommuUnmap } from "../src/iommu/map.ts";
import { IOMMU_READ, IOMMU_WRITE } from "../src/pgtable/types.ts";
import { Machine } from "../src/sim/machine.ts";
import { bootPath } from "../src/sim/runner.ts";
import { parseScenario } from "../src/sim/scenario/load.ts";

const SCENARIO = `
name: dma bench
iommus:
  - {name: smmu, driver: arm-smmu-v3, fwnode: /smmu}
devices:
  - {name: nic, bus: platform, fwnode: /nic, iommus: [[smmu, 1]]}
`;

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

export async function benchDma(log: (line: string) => void): Promise<void> {
  const m = new Machine(parseScenario(SCENARIO, "bench"), { trace: false });
  runPath(bootPath(m, []));
  const dev = m.devices.get("nic")!.dev;
  const N = 2_000_000;
  log("dma: strict DMA domain on an SMMUv3 (LPAE S1, 4K granule), one CPU (median of 5 runs)");

  const pairs: number[] = [];
  for (let run = 0; run < 6; run++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const pa = 0x4000_0000_0 + (i & 1023) * 4096;
      const dma = dmaMapPage(dev, pa, 4096, "bidirectional");
      if (dma === DMA_MAPPING_ERROR) throw new Error("dma_map_page failed");
      dmaUnmapPage(dev, dma, 4096);
    }
    if (run > 0) pairs.push(performance.now() - t0);
  }
  const ns = (median(pairs) * 1e6) / N;
  log(`  dma_map_page + dma_unmap_page (4 KiB): ${ns.toFixed(0)} ns per pair, ${(1e9 / ns / 1e6).toFixed(2)} M pairs/s  (goal: >= 5 M pairs/s)`);

  const domain = devGroup(dev)!.defaultDomain!;
  const core: number[] = [];
  for (let run = 0; run < 6; run++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const iova = 0x1000_0000 + (i & 1023) * 4096;
      iommuMap(domain, iova, iova, 4096, IOMMU_READ | IOMMU_WRITE);
      iommuUnmap(domain, iova, 4096);
    }
    if (run > 0) core.push(performance.now() - t0);
  }
  log(`  iommu_map + iommu_unmap (4 KiB, core splitting + driver + sync): ${((median(core) * 1e6) / N).toFixed(0)} ns per pair`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchDma((l) => console.log(l));
}
