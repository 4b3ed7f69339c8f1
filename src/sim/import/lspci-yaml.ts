/**
 * The imported machine as scenario YAML (lspci-data.ts's data, one flow
 * mapping per entry), each entry's comment naming the dump's lines it came
 * from.
 */
import { deviceEntry, driversOf, groupsOf, iommuPrefix, scopeOf, segmentsOf } from "./lspci-data.ts";
import { DRIVER_MANAGED_DMA, type ImportedFunction, type LspciImport } from "./lspci-scenario.ts";

const q = (s: string) => JSON.stringify(s);

/** A flow mapping of scalars and lists of scalars. */
function flow(o: Record<string, unknown>): string {
  const v = (x: unknown): string => (Array.isArray(x) ? `[${x.map(v).join(", ")}]` : typeof x === "string" ? (/^[A-Za-z][\w-]*$/.test(x) && x !== "true" && x !== "false" && x !== "null" ? x : q(x)) : String(x));
  return `{${Object.entries(o).map(([k, x]) => `${k}: ${k === "revision" ? `0x${(x as number).toString(16).padStart(2, "0")}` : v(x)}`).join(", ")}}`;
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
  out.push(`name: ${q(`lspci ${file.split("/").at(-1)!}`)}`);
  out.push("boot:");
  out.push("  order: devices-first  # VT-d and AMD-Vi initialise after PCI enumeration");
  out.push("iommus:");
  const sc = scopeOf(imp);
  if (sc.partial) {
    out.push(`  # ${sc.left.map((x) => x.name).join(", ")} ${sc.left.length === 1 ? "has" : "have"} no 'IOMMU group:' line: outside the IOMMU's device scope (the IOMMU itself, or not in the DMAR/IVRS scope), so the scope lists the others`);
  }
  for (const s of segmentsOf(imp)) {
    const scope = sc.partial ? `[${sc.grouped.filter((x) => x.src.segment === s).map((x) => q(x.name)).join(", ")}]` : "all";
    out.push(`  - {name: ${iommuPrefix(imp)}${s}, driver: ${imp.iommu}, scope: ${scope}${s === 0 ? "" : `, segment: ${s}`}}  # ${imp.iommuWhy}`);
  }
  out.push("devices:");
  for (const x of imp.functions) {
    out.push(sourceComment(x, file));
    out.push(`  - ${flow(deviceEntry(x))}`);
  }
  const drivers = driversOf(imp);
  if (drivers.size > 0) {
    out.push("drivers:");
    for (const [n, xs] of drivers) {
      out.push(`  # ${file}: 'Kernel driver in use' at line${xs.length === 1 ? "" : "s"} ${xs.map((x) => x.src.driver!.line).join(", ")}`);
      out.push(`  - {name: ${q(n)}, bus: pci, match: [${xs.map((x) => q(x.name)).join(", ")}]${DRIVER_MANAGED_DMA.has(n) ? ", driver_managed_dma: true" : ""}}`);
    }
  }
  const groups = groupsOf(imp);
  if (groups.length > 0) {
    out.push("events:");
    out.push(`  # ${file}: the kernel's own groups, from the 'IOMMU group:' lines`);
    out.push("  - note: the groups the kernel that produced the dump made");
    out.push("    expect:");
    out.push("      groups:");
    for (const [id, xs] of groups) {
      out.push(`        - {id: ${id}, devices: [${xs.map((x) => q(x.name)).join(", ")}]}  # line${xs.length === 1 ? "" : "s"} ${xs.map((x) => x.src.iommuGroupLine).join(", ")}`);
    }
    if (sc.grouped.length === imp.functions.length) out.push(`      group_count: ${groups.length}`);
  }
  return out.join("\n") + "\n";
}
