/**
 * The imported machine as scenario YAML, each entry's comment naming the
 * dump's lines it came from.
 */
import { basename } from "node:path";
import { DRIVER_MANAGED_DMA, type ImportedFunction, type LspciImport } from "./lspci-scenario.ts";

const q = (s: string) => JSON.stringify(s);
const h4 = (n: number) => n.toString(16).padStart(4, "0");

function deviceLine(x: ImportedFunction): string {
  const f = x.src;
  const kv: string[] = [`name: ${q(x.name)}`, "bus: pci"];
  if (x.parent !== null) kv.push(`parent: ${q(x.parent)}`);
  kv.push(`type: ${x.type}`);
  if (x.multifunction) kv.push("multifunction: true");
  if (f.vendor !== null && f.device !== null) kv.push(`id: "${h4(f.vendor)}:${h4(f.device)}"`);
  if (f.subsystem !== null) kv.push(`subsystem: "${h4(f.subsystem[0])}:${h4(f.subsystem[1])}"`);
  if (f.classCode !== null) kv.push(`class: "${h4(f.classCode)}${f.progIf === null ? "" : f.progIf.toString(16).padStart(2, "0")}"`);
  if (f.revision !== null) kv.push(`revision: 0x${f.revision.toString(16).padStart(2, "0")}`);
  if (x.acsCap !== null) kv.push(`acs_cap: [${x.acsCap.join(", ")}]`, `acs_ctl: [${(x.acsCtl ?? []).join(", ")}]`);
  kv.push(`description: ${q(f.description)}`);
  return `  - {${kv.join(", ")}}`;
}

function sourceComment(x: ImportedFunction, file: string): string {
  const f = x.src;
  const at: string[] = [`${f.line}`];
  if (f.busLine !== null) at.push(`${f.busLine.line} bus range`);
  if (f.express !== null) at.push(`${f.express.line} ${f.express.type}`);
  if (f.acsCap !== null) at.push(`${f.acsCap.line}-${f.acsCtl!.line} ACS`);
  if (f.accessDenied !== null) at.push(`${f.accessDenied} access denied: ACS unknown`);
  if (f.hexLine !== null) at.push(`${f.hexLine} header type`);
  return `  # ${file}:${at.join(", ")}`;
}

export function lspciScenarioYaml(imp: LspciImport): string {
  const file = imp.file;
  const out: string[] = [];
  out.push(`# Imported by iommu-sim import lspci from ${file} (${imp.functions.length} PCI functions).`);
  out.push("# Functions are listed in the kernel's enumeration order, so groups are numbered as the kernel numbers them.");
  out.push(`name: ${q(`lspci ${basename(file)}`)}`);
  out.push("boot:");
  out.push("  order: devices-first  # VT-d and AMD-Vi initialise after PCI enumeration");
  out.push("iommus:");
  const segments = [...new Set(imp.functions.map((x) => x.src.segment))].sort((a, b) => a - b);
  const prefix = imp.iommu === "intel-iommu" ? "dmar" : "ivhd";
  // With the kernel's groups in the dump, a function it left out of every group is outside the IOMMU's device scope.
  const grouped0 = imp.functions.filter((x) => x.src.iommuGroup !== null);
  const partial = grouped0.length > 0 && grouped0.length < imp.functions.length;
  if (partial) {
    const left = imp.functions.filter((x) => x.src.iommuGroup === null);
    out.push(`  # ${left.map((x) => x.name).join(", ")} ${left.length === 1 ? "has" : "have"} no 'IOMMU group:' line: outside the IOMMU's device scope (the IOMMU itself, or not in the DMAR/IVRS scope), so the scope lists the others`);
  }
  for (const s of segments) {
    const scope = partial ? `[${grouped0.filter((x) => x.src.segment === s).map((x) => q(x.name)).join(", ")}]` : "all";
    out.push(`  - {name: ${prefix}${s}, driver: ${imp.iommu}, scope: ${scope}${s === 0 ? "" : `, segment: ${s}`}}  # ${imp.iommuWhy}`);
  }
  out.push("devices:");
  for (const x of imp.functions) {
    out.push(sourceComment(x, file));
    out.push(deviceLine(x));
  }
  const drivers = new Map<string, ImportedFunction[]>();
  for (const x of imp.functions) {
    const d = x.src.driver;
    if (d === null) continue;
    const l = drivers.get(d.name);
    if (l === undefined) drivers.set(d.name, [x]);
    else l.push(x);
  }
  if (drivers.size > 0) {
    out.push("drivers:");
    for (const [n, xs] of drivers) {
      out.push(`  # ${file}: 'Kernel driver in use' at line${xs.length === 1 ? "" : "s"} ${xs.map((x) => x.src.driver!.line).join(", ")}`);
      out.push(`  - {name: ${q(n)}, bus: pci, match: [${xs.map((x) => q(x.name)).join(", ")}]${DRIVER_MANAGED_DMA.has(n) ? ", driver_managed_dma: true" : ""}}`);
    }
  }
  const grouped = imp.functions.filter((x) => x.src.iommuGroup !== null);
  if (grouped.length > 0) {
    const byId = new Map<number, ImportedFunction[]>();
    for (const x of grouped) {
      const l = byId.get(x.src.iommuGroup!);
      if (l === undefined) byId.set(x.src.iommuGroup!, [x]);
      else l.push(x);
    }
    out.push("events:");
    out.push(`  # ${file}: the kernel's own groups, from the 'IOMMU group:' lines`);
    out.push("  - note: the groups the kernel that produced the dump made");
    out.push("    expect:");
    out.push("      groups:");
    for (const [id, xs] of [...byId].sort((a, b) => a[0] - b[0])) {
      out.push(`        - {id: ${id}, devices: [${xs.map((x) => q(x.name)).join(", ")}]}  # line${xs.length === 1 ? "" : "s"} ${xs.map((x) => x.src.iommuGroupLine).join(", ")}`);
    }
    if (grouped.length === imp.functions.length) out.push(`      group_count: ${byId.size}`);
  }
  return out.join("\n") + "\n";
}
