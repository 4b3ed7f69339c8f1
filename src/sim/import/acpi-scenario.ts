/**
 * A directory of ACPI tables (or one table file) as a scenario. Tables are
 * recognised by their signature: DMAR (VT-d), IVRS (AMD-Vi), IORT (Arm
 * SMMUs); other tables are skipped. ACPI tables name IOMMUs and the
 * requester IDs each serves, not the PCI topology: the devices the
 * scenario gets are those the tables name as such (DMAR device scopes of
 * one hop, namespace devices; IORT named components and root complexes),
 * or, given an lspci dump of the same machine, its PCI functions, each
 * served by the DRHD or IVHD whose scope covers it, or the SMMU its IORT
 * root complex's ID mappings lead it to (acpi-*-import.ts).
 * The IORT's links are written as their DT equivalents (`iommus`,
 * `iommu-map`): iort_iommu_configure_id makes the same fwspec, and the
 * model has no IORT path; fwnodes are `IORT/<node>@<offset>`.
 */
import { basename } from "node:path";
import { FirmwareError } from "./fw-bytes.ts";
import type { FwEntry, FwImport } from "./fw-scenario.ts";
import { readAcpiTable } from "./acpi-table.ts";
import { PciTopology } from "./acpi-pci.ts";
import { driverData, driversOf, groupsEvent } from "./lspci-data.ts";
import type { LspciPci } from "./lspci-scenario.ts";
import { Builder, type Found } from "./acpi-import-common.ts";
import { importDmar } from "./acpi-dmar-import.ts";
import { importIvrs } from "./acpi-ivrs-import.ts";
import { importIort } from "./acpi-iort-import.ts";

export const ACPI_SIGNATURES = ["DMAR", "IVRS", "IORT"] as const;
/** File names the signature should match when they name one: dmar.dat, DMAR, dmar2.dat, iort.aml, ... */
const NAMED = /^(dmar|ivrs|iort)\d*(\.(dat|aml|bin))?$/i;

/** A file of the directory the tables were read from (the command line reads them: this layer does no I/O). */
export interface AcpiFile {
  file: string;
  bytes: Uint8Array;
}

/** The tables among `files` (DIR's, or the one file), by signature. */
function findTables(path: string, files: readonly AcpiFile[]): { found: Found[]; skipped: string[] } {
  const found: Found[] = [];
  const skipped: string[] = [];
  for (const { file: f, bytes } of files) {
    const sig = bytes.length >= 4 ? String.fromCharCode(...bytes.subarray(0, 4)) : "";
    const named = NAMED.exec(basename(f));
    if (!(ACPI_SIGNATURES as readonly string[]).includes(sig)) {
      if (named !== null) throw new FirmwareError(f, 0, `named like a ${named[1]!.toUpperCase()} table, but its signature is '${sig.replace(/[^\x20-\x7e]/g, "?")}'`);
      skipped.push(basename(f));
      continue;
    }
    if (named !== null && named[1]!.toUpperCase() !== sig) throw new FirmwareError(f, 0, `named like a ${named[1]!.toUpperCase()} table, but its signature is ${sig}`);
    found.push({ file: f, table: readAcpiTable(bytes, f) });
  }
  if (found.length === 0) throw new FirmwareError(path, 0, `no DMAR, IVRS or IORT table${files.length > 1 ? ` among its ${files.length} files` : ""} (acpidump -b or acpixtract -a write them as dmar.dat, ivrs.dat, iort.dat)`);
  // @kernel: acpi_get_table (one table per signature, the first instance)
  for (const s of ACPI_SIGNATURES) {
    const same = found.filter((x) => x.table.signature === s);
    if (same.length > 1) throw new FirmwareError(same[1]!.file, 0, `a second ${s} table (also ${same[0]!.file}); the kernel uses one`);
  }
  return { found, skipped };
}
/**
 * The tables `files` holds (read from `path`, a directory or one table
 * file) as a scenario; with `lspci`, an import of the same machine's lspci
 * dump, whose functions become the devices.
 */
export function importAcpiTables(path: string, files: readonly AcpiFile[], lspci?: LspciPci): FwImport {
  const { found, skipped } = findTables(path, files);
  const bld = new Builder(lspci !== undefined ? new PciTopology(lspci) : null);
  for (const f of found) {
    if (f.table.signature === "DMAR") importDmar(bld, f);
    else if (f.table.signature === "IVRS") importIvrs(bld, f);
    else importIort(bld, f);
  }
  const sigs = found.map((f) => f.table.signature);
  const x86 = sigs.includes("DMAR") || sigs.includes("IVRS");
  if (x86 && sigs.includes("IORT")) throw new FirmwareError(found.find((f) => f.table.signature === "IORT")!.file, 0, "an IORT table beside DMAR/IVRS: one machine is x86 or arm64, not both");
  const header = [
    `Imported by iommu-sim import acpi from ${path}: ${found.map((f) => `${f.table.signature} (${basename(f.file)}, ${f.table.length} bytes, revision ${f.table.revision}, OEM ${f.table.oemId.trim()} ${f.table.oemTableId.trim()})`).join(", ")}${skipped.length > 0 ? `; ${skipped.length} other file(s) skipped` : ""}.`,
    "ACPI tables name the IOMMUs and whom they serve, not the PCI topology: the devices are those the tables name. Comments give each structure's byte offset.",
  ];
  if (sigs.includes("IORT")) header.push("IORT links are written as their device-tree equivalents (iommus, iommu-map), which give the same fwspecs; the model has no IORT path.");
  const pci = bld.pci;
  if (pci !== null) {
    header[1] = `The PCI functions are ${pci.file}'s (lspci), in the kernel's enumeration order; each is served by ${x86 ? "the DRHD or IVHD whose scope covers it" : "the SMMU its root complex's ID mappings lead its requester ID to"}. Comments give each structure's byte offset and each function's line.`;
    header[0] = header[0]!.replace(/\.$/, `; ${pci.functions.length} PCI functions from ${pci.file}.`);
  }
  const drivers: FwEntry[] =
    pci === null
      ? []
      : [...driversOf(pci.imp)].map(([name, xs]) => ({
          data: driverData(name, xs),
          comment: [`${pci.file}: 'Kernel driver in use' at line${xs.length === 1 ? "" : "s"} ${xs.map((x) => x.src.driver!.line).join(", ")}`],
        }));
  const event = pci === null ? null : groupsEvent(pci.imp);
  const events: FwEntry[] = event === null ? [] : [{ data: event, comment: [`${pci!.file}: the kernel's own groups, from the 'IOMMU group:' lines`] }];
  return {
    source: `acpi ${path}`,
    name: `acpi ${basename(path)}`,
    header,
    boot: x86 ? { arch: "x86", order: "devices-first" } : { arch: "arm64" },
    iommus: bld.iommus,
    devices: bld.devices,
    ...(drivers.length > 0 ? { drivers } : {}),
    ...(events.length > 0 ? { events } : {}),
    trailer: bld.trailer,
    warnings: bld.warnings,
  };
}
