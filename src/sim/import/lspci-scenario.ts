/**
 * An lspci dump as a scenario: the PCI topology from the bridges' bus
 * ranges, port types from the Express capability, ACS registers, IDs and
 * bound drivers, the IOMMU chosen from the host bridge's vendor, and the
 * kernel's own groups (`IOMMU group:` lines) as an expectation. Functions
 * are listed in the order the kernel enumerates them (pci_bus_add_devices),
 * so the model probes them, and numbers their groups, in the kernel's order.
 */
import type { AcsName, PciDevType } from "../../base/pci/pci-dev.ts";
import { hex2, LspciError, type ExpressType, type LspciDump, type LspciFunction } from "./lspci-parse.ts";

export type ImportIommu = "intel-iommu" | "amd-iommu";

/** Drivers whose pci_driver sets driver_managed_dma: binding them takes no DMA-API ownership of the group. */
export const DRIVER_MANAGED_DMA: ReadonlySet<string> = new Set([
  "vfio-pci",
  "pci-stub",
  "pcieport",
  "mlx5_vfio_pci",
  "hisi_acc_vfio_pci",
  "pds_vfio_pci",
  "nvgrace_gpu_vfio_pci",
  "virtio_vfio_pci",
  "qat_vfio_pci",
  "xe_vfio_pci",
  "vfio-platform",
]);

const EXPRESS_MODEL: Record<ExpressType, PciDevType> = {
  "Root Port": "root-port",
  "Upstream Port": "switch-up",
  "Downstream Port": "switch-down",
  Endpoint: "endpoint",
  "Legacy Endpoint": "legacy-endpoint",
  "Root Complex Integrated Endpoint": "rc-endpoint",
  "Root Complex Event Collector": "rc-event-collector",
  "PCI-Express to PCI/PCI-X Bridge": "pcie-pci-bridge",
  "PCI/PCI-X to PCI-Express Bridge": "pcie-pci-bridge",
};

/** One function as it goes into the scenario. */
export interface ImportedFunction {
  name: string;
  src: LspciFunction;
  parent: string | null;
  type: PciDevType;
  multifunction: boolean;
  acsCap: AcsName[] | null;
  acsCtl: AcsName[] | null;
  children: ImportedFunction[];
}

/** A dump's PCI functions, without an IOMMU chosen (`import acpi --lspci`: the tables name the IOMMUs). */
export interface LspciPci {
  file: string;
  /** In enumeration order. */
  functions: ImportedFunction[];
  warnings: string[];
}

export interface LspciImport extends LspciPci {
  iommu: ImportIommu;
  iommuWhy: string;
}

const name = (seg: number, bus: number, dev: number, fn: number) => `${seg.toString(16).padStart(4, "0")}:${hex2(bus)}:${hex2(dev)}.${fn}`;

/** Which IOMMU the host bridge's vendor implies. */
function chooseIommu(d: LspciDump, forced: ImportIommu | undefined): { iommu: ImportIommu; why: string } {
  if (forced !== undefined) return { iommu: forced, why: "--iommu" };
  const host = d.functions.find((f) => f.classCode === 0x0600 || f.className === "Host bridge") ?? null;
  if (host !== null) {
    if (host.vendor === 0x8086 || /\bIntel\b/.test(host.description)) return { iommu: "intel-iommu", why: `host bridge at line ${host.line} is Intel's: VT-d` };
    if (host.vendor === 0x1022 || host.vendor === 0x1d94 || /\bAMD\b|Advanced Micro Devices|Hygon/.test(host.description)) {
      return { iommu: "amd-iommu", why: `host bridge at line ${host.line} is AMD's: AMD-Vi` };
    }
  }
  throw new LspciError(d.file, host?.line ?? d.functions[0]!.line, `cannot tell the IOMMU from the host bridge${host === null ? " (the dump has none)" : ""}: pass --iommu intel or --iommu amd`);
}

export function importLspci(d: LspciDump, opts: { iommu?: ImportIommu } = {}): LspciImport {
  const pci = importLspciPci(d);
  const io = chooseIommu(d, opts.iommu);
  return { ...pci, iommu: io.iommu, iommuWhy: io.why };
}

/** The dump's functions and topology alone. */
export function importLspciPci(d: LspciDump): LspciPci {
  const file = d.file;
  const warnings: string[] = [];
  // Addresses: with -P the bus of a path's last element is its parent bridge's secondary bus.
  const byName = new Map<string, LspciFunction>();
  for (const f of d.functions) {
    if (f.busFromPath) {
      const p = byName.get(f.pathParent!);
      if (p === undefined || p.busLine === null) throw new LspciError(file, f.line, `the path names ${f.pathParent}, which is not a bridge listed before this function`);
      f.bus = p.busLine.secondary;
      if (p.busLine.primary !== p.bus) throw new LspciError(file, p.busLine.line, `the bridge sits on bus ${hex2(p.bus)} but says primary=${hex2(p.busLine.primary)}`);
    }
    const n = name(f.segment, f.bus, f.dev, f.fn);
    const prev = byName.get(n);
    if (prev !== undefined) throw new LspciError(file, f.line, `${n} is listed twice (also at line ${prev.line})`);
    byName.set(n, f);
  }
  // Bridges by the bus they lead to.
  const bridgeTo = new Map<string, string>();
  const ranges: { seg: number; sec: number; sub: number; name: string }[] = [];
  for (const [n, f] of byName) {
    if (f.busLine === null) continue;
    const key = `${f.segment}:${f.busLine.secondary}`;
    const other = bridgeTo.get(key);
    if (other !== undefined) throw new LspciError(file, f.busLine.line, `bus ${hex2(f.busLine.secondary)} is the secondary bus of both ${other} and ${n}`);
    bridgeTo.set(key, n);
    ranges.push({ seg: f.segment, sec: f.busLine.secondary, sub: f.busLine.subordinate, name: n });
  }
  const slotCount = new Map<string, number>();
  for (const f of byName.values()) {
    const k = `${f.segment}:${f.bus}:${f.dev}`;
    slotCount.set(k, (slotCount.get(k) ?? 0) + 1);
  }
  const recs = new Map<string, ImportedFunction>();
  const roots: ImportedFunction[] = [];
  let denied = 0;
  // lspci lists functions by bus number, and bridges lead to higher buses: parents come first.
  const order = [...byName.entries()].sort(([, a], [, b]) => a.segment - b.segment || a.bus - b.bus || a.dev - b.dev || a.fn - b.fn);
  for (const [n, f] of order) {
    const parentName = bridgeTo.get(`${f.segment}:${f.bus}`) ?? null;
    if (parentName === null) {
      const inside = ranges.find((r) => r.seg === f.segment && f.bus > r.sec && f.bus <= r.sub);
      if (inside !== undefined) {
        throw new LspciError(file, f.line, `${n} is on bus ${hex2(f.bus)}, inside ${inside.name}'s range ${hex2(inside.sec)}-${hex2(inside.sub)}, but no bridge in the dump leads to that bus (the dump is cut or corrupt)`);
      }
    }
    if (f.pathParent !== null && parentName !== null && f.pathParent !== parentName) {
      throw new LspciError(file, f.line, `the path says ${n} is below ${f.pathParent}, the bus ranges say below ${parentName}`);
    }
    const parent = parentName === null ? null : recs.get(parentName)!;
    if (parent === undefined) throw new LspciError(file, f.line, `${n}'s bridge ${parentName} comes after it in bus order`);
    let type: PciDevType;
    if (f.accessDenied !== null && f.express === null) {
      denied++;
      if (f.busLine !== null) {
        const pt = parent?.type;
        type = parent === null ? "root-port" : pt === "root-port" || pt === "switch-down" ? "switch-up" : pt === "switch-up" ? "switch-down" : "pci-bridge";
      } else type = parent === null ? "pci-endpoint" : "endpoint";
    } else if (f.express !== null) {
      type = EXPRESS_MODEL[f.express.type];
      const bridgeType = type === "root-port" || type === "switch-up" || type === "switch-down" || type === "pcie-pci-bridge";
      if (bridgeType && f.busLine === null) throw new LspciError(file, f.express.line, `a ${f.express.type} without a 'Bus: primary=...' line (the dump is cut?)`);
      if (!bridgeType && f.busLine !== null) throw new LspciError(file, f.busLine.line, `a bus range on a PCI Express ${f.express.type}, which is not a bridge`);
      if (f.express.type === "PCI/PCI-X to PCI-Express Bridge") warnings.push(`${file}:${f.express.line}: ${n} is a reverse (PCI to PCI Express) bridge; the model treats it as a PCIe-to-PCI bridge`);
    } else {
      type = f.busLine !== null ? "pci-bridge" : "pci-endpoint";
    }
    if (parent !== null && !["root-port", "switch-up", "switch-down", "pcie-pci-bridge", "pci-bridge"].includes(parent.type)) {
      throw new LspciError(file, f.line, `${n}'s parent ${parent.name} is a ${parent.type}, not a bridge`);
    }
    const multifunction = f.headerType !== null ? (f.headerType & 0x80) !== 0 : (slotCount.get(`${f.segment}:${f.bus}:${f.dev}`) ?? 1) > 1 || f.fn !== 0;
    const r: ImportedFunction = { name: n, src: f, parent: parentName, type, multifunction, acsCap: f.acsCap?.set ?? null, acsCtl: f.acsCtl?.set ?? null, children: [] };
    recs.set(n, r);
    if (parent === null) roots.push(r);
    else parent.children.push(r);
  }
  if (denied > 0) {
    warnings.push(
      `${file}: ${denied} function(s) show 'Capabilities: <access denied>' (lspci ran without root): their ACS is unknown. The model assumed no ACS capability (the kernel's quirk tables still apply by ID), bridge types from the topology (root port, switch up/down) and conventional PCI for root-bus functions; run lspci as root for the real registers`,
    );
  }
  const noIds = [...recs.values()].filter((x) => x.src.vendor === null).length;
  if (noIds > 0) {
    warnings.push(`${file}: ${noIds} function(s) without vendor:device IDs (run lspci with -nn, or -xxx): the kernel's quirk tables cannot match them`);
  }
  // pci_bus_add_devices: a bus's functions by devfn, then each bridge's bus.
  const functions: ImportedFunction[] = [];
  const devfn = (x: ImportedFunction) => (x.src.dev << 3) | x.src.fn;
  const addBus = (list: ImportedFunction[]) => {
    list.sort((a, b) => devfn(a) - devfn(b));
    for (const x of list) functions.push(x);
    for (const x of list) if (x.children.length > 0) addBus(x.children);
  };
  const rootBuses = new Map<string, ImportedFunction[]>();
  for (const r of roots) {
    const k = `${r.src.segment}:${r.src.bus}`;
    const l = rootBuses.get(k);
    if (l === undefined) rootBuses.set(k, [r]);
    else l.push(r);
  }
  for (const l of rootBuses.values()) addBus(l);
  return { file, functions, warnings };
}
