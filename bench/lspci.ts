/**
 * `iommu-sim import lspci` and grouping together on a big dump: 2,045 PCI
 * functions (14 root ports, each with a switch of 16 downstream ports and an
 * 8-function device below each), as lspci -vvnn prints them. Timed: parse,
 * import, the scenario's validation, and boot (probe and
 * pci_device_group for every function), as `iommu-sim groups DUMP` does.
 */
import { parseLspci } from "../src/sim/import/lspci-parse.ts";
import { importLspci } from "../src/sim/import/lspci-scenario.ts";
import { lspciScenarioData } from "../src/sim/import/lspci-data.ts";
import { validateScenario } from "../src/sim/scenario/load.ts";
import { runScenario } from "../src/sim/runner.ts";
import { best, median } from "./stats.ts";

const h2 = (n: number) => n.toString(16).padStart(2, "0");
const ACS = "\t\tACSCap:\tSrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-\n\t\tACSCtl:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-\n";

function fn(addr: string, cls: string, code: string, desc: string, id: string, extra: string, express: string | null, acs: boolean, driver: string, group: number): string {
  return (
    `${addr} ${cls} [${code}]: ${desc} [${id}] (rev 01)\n` +
    "\tControl: I/O- Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+\n" +
    "\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-\n" +
    `\tIOMMU group: ${group}\n` +
    extra +
    "\tCapabilities: [40] Power Management version 3\n\t\tFlags: PMEClk- DSI- D1- D2- AuxCurrent=0mA PME(D0+,D1-,D2-,D3hot+,D3cold+)\n" +
    (express === null ? "" : `\tCapabilities: [70] Express (v2) ${express}, MSI 00\n\t\tDevCap:\tMaxPayload 512 bytes, PhantFunc 0\n\t\tLnkSta:\tSpeed 8GT/s, Width x8\n`) +
    (acs ? `\tCapabilities: [148 v1] Access Control Services\n${ACS}` : "") +
    `\tKernel driver in use: ${driver}\n\n`
  );
}

/** The dump's text and its number of functions. */
export function bigDump(rootPorts = 14): { text: string; functions: number } {
  let text = fn("00:00.0", "Host bridge", "0600", "Intel Corporation Sky Lake-E DMI3 Registers", "8086:2020", "", null, false, "skx_uncore", 0);
  let n = 1;
  let group = 1;
  let bus = 1;
  const bridge = (p: number, s: number, sub: number) => `\tBus: primary=${h2(p)}, secondary=${h2(s)}, subordinate=${h2(sub)}, sec-latency=0\n`;
  const tail: string[] = [];
  for (let r = 0; r < rootPorts; r++) {
    const up = bus;
    const down = bus + 1;
    const sub = bus + 17;
    text += fn(`00:${h2(r + 1)}.0`, "PCI bridge", "0604", "Intel Corporation Sky Lake-E PCI Express Root Port A", "8086:2030", bridge(0, up, sub), "Root Port (Slot+)", true, "pcieport", group++);
    n++;
    tail.push(fn(`${h2(up)}:00.0`, "PCI bridge", "0604", "PLX Technology, Inc. PEX 8796 96-lane, 24-Port PCI Express Gen 3 (8.0 GT/s) Switch", "10b5:8796", bridge(up, down, sub), "Upstream Port", false, "pcieport", group++));
    n++;
    for (let p = 0; p < 16; p++) {
      tail.push(fn(`${h2(down)}:${h2(p)}.0`, "PCI bridge", "0604", "PLX Technology, Inc. PEX 8796 96-lane, 24-Port PCI Express Gen 3 (8.0 GT/s) Switch", "10b5:8796", bridge(down, down + 1 + p, down + 1 + p), "Downstream Port (Slot+)", p % 4 !== 3, "pcieport", group++));
      n++;
    }
    for (let p = 0; p < 16; p++) {
      for (let f = 0; f < 8; f++) {
        tail.push(fn(`${h2(down + 1 + p)}:00.${f}`, "Ethernet controller", "0200", "Intel Corporation I350 Gigabit Network Connection", "8086:1521", "", "Endpoint", false, "igb", group++));
        n++;
      }
    }
    bus = sub + 1;
  }
  return { text: text + tail.join(""), functions: n };
}

function once(text: string): { ms: number; groups: number } {
  const t0 = performance.now();
  const imp = importLspci(parseLspci(text, "big.txt"));
  const s = validateScenario(lspciScenarioData(imp), "big.txt");
  const r = runScenario({ ...s, events: [] }, { trace: false, invariants: false });
  const ms = performance.now() - t0;
  return { ms, groups: r.snapshot.groups.length };
}

export async function benchLspci(log: (line: string) => void): Promise<void> {
  const { text, functions } = bigDump();
  log(`lspci: import and grouping of a ${functions.toLocaleString("en-US")}-function lspci -vvnn dump (${(text.length / 1024).toFixed(0)} KiB; parse, import, scenario validation, boot: what iommu-sim groups DUMP does), trace off, median of 7 runs after 2 warm-up runs`);
  once(text);
  once(text);
  const runs = Array.from({ length: 7 }, () => once(text));
  const ms = runs.map((r) => r.ms);
  log(`  ${functions} functions -> ${runs[0]!.groups} groups: median ${median(ms).toFixed(0)} ms, best ${best(ms).toFixed(0)} ms  (goal: < 300 ms)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchLspci((l) => console.log(l));
}
