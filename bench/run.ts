/**
 * `npm run bench`: every benchmark, in order, printing its figures. Pass
 * names to run some: `npm run bench -- boot dma`.
 */
import { benchBoot } from "./boot.ts";
import { benchDma } from "./dma.ts";
import { benchExplore } from "./explore.ts";
import { benchGroups } from "./groups.ts";
import { benchImport } from "./import.ts";
import { benchIommufd } from "./iommufd.ts";
import { benchIova } from "./iova.ts";
import { benchLspci } from "./lspci.ts";
import { benchPgtable } from "./pgtable.ts";
import { benchStartup } from "./startup.ts";
import { benchView } from "./view.ts";

const ALL: Record<string, (log: (line: string) => void) => Promise<void>> = {
  boot: benchBoot,
  groups: benchGroups,
  pgtable: benchPgtable,
  iova: benchIova,
  dma: benchDma,
  iommufd: benchIommufd,
  startup: benchStartup,
  explore: benchExplore,
  lspci: benchLspci,
  import: benchImport,
  view: benchView,
};

const wanted = process.argv.slice(2).filter((a) => a !== "--");
const names = wanted.length > 0 ? wanted : Object.keys(ALL);
const log = (line: string) => console.log(line);
const v8Flags = process.execArgv.filter((a) => a.startsWith("--max-semi-space-size")).join(" ");
log(`iommu-sim benchmarks (node ${process.version}, ${new Date().toISOString().slice(0, 10)}${v8Flags === "" ? ", V8's default young generation" : `, ${v8Flags}`})`);
for (const n of names) {
  const fn = ALL[n];
  if (fn === undefined) {
    console.error(`unknown benchmark '${n}' (one of ${Object.keys(ALL).join(", ")})`);
    process.exitCode = 2;
    continue;
  }
  log("");
  const t0 = performance.now();
  await fn(log);
  log(`  (${n}: ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
