/**
 * An ACPI table as acpidump -b, acpixtract -a or /sys/firmware/acpi/tables
 * leave it: the 36-byte header (signature, length, revision, checksum, OEM
 * IDs), its length checked against the file and its checksum verified
 * (every byte of the table sums to 0 mod 256).
 */
import { Blob, hex } from "./fw-bytes.ts";

export const ACPI_HEADER = 36;

export interface AcpiTable {
  blob: Blob;
  signature: string;
  length: number;
  revision: number;
  oemId: string;
  oemTableId: string;
  oemRevision: number;
}

export function readAcpiTable(bytes: Uint8Array, file: string): AcpiTable {
  const blob: Blob = new Blob(bytes, file);
  blob.need(0, ACPI_HEADER, "the ACPI table header");
  const signature = blob.ascii(0, 4, "the signature");
  const length = blob.u32le(4, "the table length");
  if (length < ACPI_HEADER) blob.fail(4, `the table length ${length} is shorter than its header`);
  if (length > bytes.length) blob.fail(4, `the table length says ${length} bytes, the file has ${bytes.length} (truncated)`);
  let sum = 0;
  for (let i = 0; i < length; i++) sum = (sum + bytes[i]!) & 0xff;
  if (sum !== 0) blob.fail(9, `bad checksum: the table's ${length} bytes sum to ${hex(sum, 2)} mod 256, not 0 (checksum byte ${hex(bytes[9]!, 2)}; it should be ${hex((bytes[9]! - sum) & 0xff, 2)})`);
  return {
    blob: new Blob(bytes.subarray(0, length), file),
    signature,
    length,
    revision: blob.u8(8, "the revision"),
    oemId: blob.ascii(10, 6, "the OEM ID"),
    oemTableId: blob.ascii(16, 8, "the OEM table ID"),
    oemRevision: blob.u32le(24, "the OEM revision"),
  };
}

/** A PCI requester ID as SSSS:BB:DD.F. */
export function pciName(segment: number, bus: number, dev: number, fn: number): string {
  return `${segment.toString(16).padStart(4, "0")}:${bus.toString(16).padStart(2, "0")}:${dev.toString(16).padStart(2, "0")}.${fn}`;
}

/** A 16-bit requester ID (bus << 8 | devfn) as SSSS:BB:DD.F. */
export function ridName(segment: number, rid: number): string {
  return pciName(segment, rid >> 8, (rid >> 3) & 0x1f, rid & 7);
}
