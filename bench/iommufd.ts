/**
 * iommufd benchmarks: IOAS_MAP + IOAS_UNMAP pairs of one 64 KiB area among
 * 10k and 100k others (area lookup must stay logarithmic), with a mock
 * domain attached (every map pins and writes the mock table) and without;
 * the fill and drain of all the areas; ACCESS_RW of 64 bytes; and the run
 * time of the ported selftest suite (test/iommufd).
 *
 * The mock aperture is [16 MiB, 2 GiB), room for 32,512 areas of 64 KiB,
 * so with a domain (every other 64 KiB slot filled) the largest figure is 15k areas; without a domain
 * 100k areas fit.
 *
 *   node --import tsx bench/iommufd.ts
 */
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { runPath } from "../src/base/path.ts";
import { iommufdAccessChangeIoas, iommufdAccessCreate, iommufdAccessRw } from "../src/iommufd/access.ts";
import { iommufdIoctl, iommufdOpen } from "../src/iommufd/main.ts";
import type { IommufdCtx } from "../src/iommufd/object.ts";
import { iommufdTest, IOMMU_TEST_OP_MOCK_DOMAIN } from "../src/iommufd/selftest.ts";
import * as U from "../src/iommufd/uapi.ts";
import { Mm, PhysMem } from "../src/iommufd/user-memory.ts";
import { isErr } from "../src/lib/errno.ts";
import { MOCK_APERTURE_START } from "../src/pgtable/mock.ts";
import { iommufdEnv } from "../src/sim/iommufd-env.ts";
import { Machine } from "../src/sim/machine.ts";
import { bootPath } from "../src/sim/runner.ts";
import { parseScenario } from "../src/sim/scenario/load.ts";
import { GcCounter, best, median } from "./stats.ts";

const RUNS = 5;
const SZ = 0x10000;
const RW = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;

function ctx(): { fd: IommufdCtx; mm: Mm } {
  const m = new Machine(parseScenario("name: bench\niommus:\n  - {name: mock-iommu, driver: mock}\n", "bench.yaml"), {});
  runPath(bootPath(m, []));
  const phys = new PhysMem();
  const mm = new Mm(phys, 1);
  return { fd: iommufdOpen(iommufdEnv(m, phys), mm), mm };
}

function ioasAlloc(fd: IommufdCtx): number {
  const c = { size: 12, flags: 0, out_ioas_id: 0 };
  if (iommufdIoctl(fd, U.IOMMUFD_CMD_IOAS_ALLOC, c) !== 0) throw new Error("IOAS_ALLOC failed");
  return c.out_ioas_id;
}

export async function benchIommufd(log: (line: string) => void): Promise<void> {
  const gc = await GcCounter.start();
  try {
    log("iommufd (mock IOMMU, 4 KiB CPU pages, 2 KiB mock pages)");
    log("  (the mock aperture [16 MiB, 2 GiB) holds 15k areas of 64 KiB one slot apart: 100k areas are timed without a domain)");
    for (const [areas, domain] of [[10_000, true], [15_000, true], [10_000, false], [100_000, false]] as const) {
      const { fd, mm } = ctx();
      const ioas = ioasAlloc(fd);
      if (domain) {
        const c = { op: IOMMU_TEST_OP_MOCK_DOMAIN, id: ioas, mock_domain: { out_stdev_id: 0, out_hwpt_id: 0, out_idev_id: 0 } };
        if (iommufdTest(fd, c) !== 0) throw new Error("MOCK_DOMAIN failed");
      }
      const buf = mm.mmap(SZ);
      const map = { size: 40, flags: RW | U.IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: ioas, __reserved: 0, user_va: buf, length: SZ, iova: 0 };
      const unmap = { size: 24, ioas_id: ioas, iova: 0, length: SZ };
      // Every other slot is filled, so each pair maps into a hole among `areas` others.
      const slot = (i: number) => MOCK_APERTURE_START + i * 2 * SZ;
      let t0 = performance.now();
      for (let i = 0; i < areas; i++) {
        map.iova = slot(i);
        if (iommufdIoctl(fd, U.IOMMUFD_CMD_IOAS_MAP, map) !== 0) throw new Error(`map ${i} failed`);
      }
      const fillNs = ((performance.now() - t0) * 1e6) / areas;
      const pairs = (n: number) => {
        for (let i = 0; i < n; i++) {
          const iova = slot((i * 7919) % areas) + SZ;
          map.iova = iova;
          iommufdIoctl(fd, U.IOMMUFD_CMD_IOAS_MAP, map);
          unmap.iova = iova;
          unmap.length = SZ;
          iommufdIoctl(fd, U.IOMMUFD_CMD_IOAS_UNMAP, unmap);
        }
      };
      await report(log, gc, `IOAS_MAP+IOAS_UNMAP 64 KiB among ${areas / 1000}k areas, ${domain ? "mock domain" : "no domain"}`, domain ? 20_000 : 50_000, pairs);
      t0 = performance.now();
      for (let i = 0; i < areas; i++) {
        unmap.iova = slot(i);
        unmap.length = SZ;
        iommufdIoctl(fd, U.IOMMUFD_CMD_IOAS_UNMAP, unmap);
      }
      const drainNs = ((performance.now() - t0) * 1e6) / areas;
      log(`    fill ${fillNs.toFixed(0)} ns/map, drain ${drainNs.toFixed(0)} ns/unmap (ascending order)`);
    }

    const { fd, mm } = ctx();
    const ioas = ioasAlloc(fd);
    const buf = mm.mmap(SZ * 4);
    const map = { size: 40, flags: RW, ioas_id: ioas, __reserved: 0, user_va: buf, length: SZ * 4, iova: 0 };
    if (iommufdIoctl(fd, U.IOMMUFD_CMD_IOAS_MAP, map) !== 0) throw new Error("map failed");
    const access = iommufdAccessCreate(fd, { needsPinPages: false, unmap() {} });
    if (isErr(access) || iommufdAccessChangeIoas(fd, access, ioas) !== 0) throw new Error("access failed");
    const data = new Uint8Array(64);
    const base = map.iova;
    await report(log, gc, "access rw, 64 bytes (read and write alternately)", 1_000_000, (n) => {
      for (let i = 0; i < n; i++) iommufdAccessRw(access, base + ((i * 97) % (SZ * 4 - 64)), data, 64, i & 1);
    });

    if (process.env.NO_SUITE === "1") return;
    const t0 = performance.now();
    execFileSync("npx", ["vitest", "run", "test/iommufd"], { stdio: "ignore" });
    log(`  the ported selftest suite (npx vitest run test/iommufd, wall clock incl. startup): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    gc.stop();
  }
}

async function report(log: (line: string) => void, gc: GcCounter, label: string, n: number, body: (n: number) => void): Promise<void> {
  body(n / 4);
  const before = await gc.count();
  const ns: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const t0 = performance.now();
    body(n);
    ns.push(((performance.now() - t0) * 1e6) / n);
  }
  const gcs = (await gc.count()) - before;
  log(`  ${label.padEnd(64)} ${median(ns).toFixed(0).padStart(7)} ns (best ${best(ns).toFixed(0).padStart(6)})  ${(1e3 / median(ns)).toFixed(2)} M ops/s, GCs ${gcs}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await benchIommufd((l) => console.log(l));
}
