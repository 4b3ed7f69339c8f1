/**
 * `iommu-sim import lspci FILE [--iommu intel|amd]` (and `import acpi DIR
 * --lspci FILE`, which reads the dump here): a dump of a real
 * machine as a scenario on stdout (YAML, its comments naming the dump's
 * lines); warnings on stderr. A dump that is not lspci output, or is cut
 * short, is exit 2 with the file, line and problem.
 */
import { readFile } from "node:fs/promises";
import { LspciError, parseLspci } from "../sim/import/lspci-parse.ts";
import { importLspci, importLspciPci, type ImportIommu, type LspciImport, type LspciPci } from "../sim/import/lspci-scenario.ts";
import { lspciScenarioYaml } from "../sim/import/lspci-yaml.ts";
import { STDIN_NAME } from "../sim/scenario/load.ts";
import { EXIT_INVALID, EXIT_OK } from "./exit.ts";
import type { Io } from "./io.ts";

export const IMPORT_KINDS = ["lspci", "dtb", "acpi"] as const;

/** --iommu's value as a driver name, or an error line. */
export function parseIommuFlag(v: string | undefined): { iommu?: ImportIommu } | { error: string } {
  if (v === undefined) return {};
  if (v === "intel" || v === "intel-iommu" || v === "vt-d") return { iommu: "intel-iommu" };
  if (v === "amd" || v === "amd-iommu" || v === "amd-vi") return { iommu: "amd-iommu" };
  return { error: `--iommu: '${v.slice(0, 40)}' is not one of intel, amd` };
}

/** The dump's text: a file, or stdin for `-`; an error line when it cannot be read. */
export async function readDump(file: string, io: Io): Promise<{ text: string; name: string } | string> {
  if (file === "-") {
    if (io.readStdin === undefined) return `${STDIN_NAME}: no standard input to read`;
    return { text: await io.readStdin(), name: STDIN_NAME };
  }
  try {
    const buf = await readFile(file);
    if (buf.includes(0)) return `${file}: a binary file, not lspci output`;
    return { text: buf.toString("utf8"), name: file };
  } catch (e) {
    return `${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`;
  }
}

/** `imp` run on a dump; an LspciError (the dump is not lspci output, or is cut short) as its message. */
function orLspciError<T>(imp: () => T): T | string {
  try {
    return imp();
  } catch (e) {
    if (e instanceof LspciError) return e.message;
    throw e;
  }
}

/** Parses and imports a dump; an LspciError's message, or the text's own problem, as an error line. */
export function importDump(text: string, name: string, iommu: ImportIommu | undefined): LspciImport | string {
  return orLspciError(() => importLspci(parseLspci(text, name), { iommu }));
}

/** The same for `import acpi --lspci`: the dump's functions, no IOMMU chosen. */
function importDumpPci(text: string, name: string): LspciPci | string {
  return orLspciError(() => importLspciPci(parseLspci(text, name)));
}

export async function importCommand(kind: string, file: string, o: { iommu?: string; lspci?: string }, io: Io): Promise<number> {
  if (!(IMPORT_KINDS as readonly string[]).includes(kind)) {
    io.err(`import: '${kind.slice(0, 40)}' is not a kind this iommu-sim imports (${IMPORT_KINDS.join(", ")})`);
    return EXIT_INVALID;
  }
  if (o.lspci !== undefined && kind !== "acpi") {
    io.err(`import ${kind}: --lspci goes with import acpi (it merges a dump's PCI functions with the DMAR, IVRS or IORT tables)`);
    return EXIT_INVALID;
  }
  if (kind === "acpi" && o.lspci !== undefined) {
    if (o.lspci === "-" && file === "-") {
      io.err("import acpi: reads a directory, not stdin");
      return EXIT_INVALID;
    }
    const dump = await readDump(o.lspci, io);
    if (typeof dump === "string") {
      io.err(`--lspci: ${dump}`);
      return EXIT_INVALID;
    }
    // The tables name the IOMMUs: the dump gives the functions only (no --iommu choice to make).
    const imp = importDumpPci(dump.text, dump.name);
    if (typeof imp === "string") {
      io.err(`--lspci: ${imp}`);
      return EXIT_INVALID;
    }
    for (const w of imp.warnings) io.err(`iommu-sim: warning: ${w}`);
    return (await import("./firmware-import.ts")).firmwareImportCommand(kind, file, io, imp);
  }
  if (kind === "dtb" || kind === "acpi") return (await import("./firmware-import.ts")).firmwareImportCommand(kind, file, io);
  const flag = parseIommuFlag(o.iommu);
  if ("error" in flag) {
    io.err(flag.error);
    return EXIT_INVALID;
  }
  const dump = await readDump(file, io);
  if (typeof dump === "string") {
    io.err(dump);
    return EXIT_INVALID;
  }
  const imp = importDump(dump.text, dump.name, flag.iommu);
  if (typeof imp === "string") {
    io.err(imp);
    return EXIT_INVALID;
  }
  for (const w of imp.warnings) io.err(`iommu-sim: warning: ${w}`);
  io.out(lspciScenarioYaml(imp).trimEnd());
  return EXIT_OK;
}
