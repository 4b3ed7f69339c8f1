/**
 * `iommu-sim import dtb FILE` and `iommu-sim import acpi DIR`: firmware as a
 * scenario on stdout (YAML, its comments naming the nodes and tables and
 * their byte offsets); warnings on stderr. A blob or table that is cut
 * short, corrupt, or fails its checksum is exit 2 with the file, the byte
 * offset and the problem.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { FirmwareError } from "../sim/import/fw-bytes.ts";
import { fwScenarioYaml, type FwImport } from "../sim/import/fw-scenario.ts";
import { parseFdt } from "../sim/import/fdt-parse.ts";
import { importDtb } from "../sim/import/dt-scenario.ts";
import { importAcpiTables, type AcpiFile } from "../sim/import/acpi-scenario.ts";
import type { LspciPci } from "../sim/import/lspci-scenario.ts";
import { EXIT_INVALID, EXIT_OK } from "./exit.ts";
import type { Io } from "./io.ts";

export const FIRMWARE_KINDS = ["dtb", "acpi"] as const;

/** Reads and imports; the problem line when the input is not what the kind takes. */
export async function importFirmwareFile(kind: (typeof FIRMWARE_KINDS)[number], file: string, lspci?: LspciPci): Promise<FwImport | string> {
  try {
    if (kind === "dtb") {
      let bytes: Uint8Array;
      try {
        bytes = await readFile(file);
      } catch (e) {
        return `${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as NodeJS.ErrnoException).code === "EISDIR" ? "a directory, not a DTB" : (e as Error).message}`;
      }
      return importDtb(parseFdt(bytes, file), file);
    }
    const files = await readAcpiDir(file);
    return typeof files === "string" ? files : importAcpiTables(file, files, lspci);
  } catch (e) {
    if (e instanceof FirmwareError) return e.message;
    throw e;
  }
}

/** The files of DIR in name order (or the one file) that could be tables: regular files up to 16 MiB; a problem line when DIR cannot be read. */
export async function readAcpiDir(path: string): Promise<AcpiFile[] | string> {
  let names: string[];
  try {
    names = (await stat(path)).isDirectory() ? (await readdir(path)).sort().map((f) => join(path, f)) : [path];
  } catch (e) {
    return `${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (e as Error).message}`;
  }
  const out: AcpiFile[] = [];
  for (const f of names) {
    const st = await stat(f);
    if (st.isFile() && st.size <= 16 << 20) out.push({ file: f, bytes: await readFile(f) });
  }
  return out;
}

/** `lspci`: for acpi, an import of the same machine's lspci dump (`--lspci`). */
export async function firmwareImportCommand(kind: (typeof FIRMWARE_KINDS)[number], file: string, io: Io, lspci?: LspciPci): Promise<number> {
  if (file === "-") {
    io.err(`import ${kind}: reads ${kind === "dtb" ? "a file" : "a directory"}, not stdin`);
    return EXIT_INVALID;
  }
  const imp = await importFirmwareFile(kind, file, lspci);
  if (typeof imp === "string") {
    io.err(imp);
    return EXIT_INVALID;
  }
  for (const w of imp.warnings) io.err(`iommu-sim: warning: ${w}`);
  io.out(fwScenarioYaml(imp).trimEnd());
  return EXIT_OK;
}
