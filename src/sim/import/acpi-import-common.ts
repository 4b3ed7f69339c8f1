/**
 * What the ACPI table importers (acpi-dmar-import.ts, acpi-ivrs-import.ts,
 * acpi-iort-import.ts) share: a table found among the files, and the
 * scenario being built (its IOMMUs, devices, warnings and trailer).
 */
import { basename } from "node:path";
import { UniqueNames, type FwEntry } from "./fw-scenario.ts";
import type { AcpiTable } from "./acpi-table.ts";
import type { PciTopology } from "./acpi-pci.ts";
import { deviceEntry } from "./lspci-data.ts";

/** A table found among the files, and the file it came from. */
export interface Found {
  file: string;
  table: AcpiTable;
}

/** Where a structure of a table is, for comments: file name and byte offset. */
export const where = (f: Found, off: number) => `${basename(f.file)} byte ${off}`;

/** The scenario the tables make: with an lspci dump, its functions are the devices from the start. */
export class Builder {
  constructor(readonly pci: PciTopology | null) {
    if (pci === null) return;
    for (const x of pci.functions) {
      const { name, ...data } = deviceEntry(x);
      this.device(name as string, data, `${name as string}: ${pci.file}:${x.src.line}`);
    }
  }

  readonly iommus: FwEntry[] = [];
  readonly devices: FwEntry[] = [];
  readonly devByName = new Map<string, FwEntry>();
  readonly names = new UniqueNames();
  readonly warnings: string[] = [];
  readonly trailer: string[] = [];

  /** The device of that name, made (with the comment) the first time; later references add `again`. */
  device(name: string, data: Record<string, unknown>, comment: string, again?: string): FwEntry {
    let e = this.devByName.get(name);
    if (e === undefined) {
      e = { data: { name, ...data }, comment: [comment] };
      this.devByName.set(name, e);
      this.devices.push(e);
    } else if (again !== undefined) e.comment.push(again);
    return e;
  }

  /** A warning about the structure at byte `off` of the table's file. */
  warn(f: Found, off: number, msg: string): void {
    this.warnings.push(`${f.file}: byte ${off}: ${msg}`);
  }

  reserved(e: FwEntry, r: { start: number; length: number; type: string }): void {
    const list = (e.data["reserved-regions"] ??= []) as unknown[];
    list.push(r);
  }
}
