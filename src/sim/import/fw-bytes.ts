/**
 * Bounded reading of a firmware blob (a flattened device tree, an ACPI
 * table): every read past the end, and every problem found in the bytes,
 * is a FirmwareError naming the file, the byte offset and the problem;
 * nothing else is thrown.
 */

export class FirmwareError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly problem: string,
  ) {
    super(`${file}: at byte ${offset} (0x${offset.toString(16)}): ${problem}`);
    this.name = "FirmwareError";
  }
}

export const hex = (n: number | bigint, pad = 0): string => `0x${n.toString(16).padStart(pad, "0")}`;

/** A blob with its file name; readers check bounds and say what they were reading. */
export class Blob {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly file: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.length;
  }

  fail(offset: number, problem: string): never {
    throw new FirmwareError(this.file, offset, problem);
  }

  /** Fails unless [off, off+n) lies within [0, end). */
  need(off: number, n: number, what: string, end = this.bytes.length): void {
    if (off < 0 || n < 0 || off + n > end) {
      this.fail(Math.min(Math.max(off, 0), end), `${what} needs ${n} byte${n === 1 ? "" : "s"} at ${off}, but ${end <= off ? "the data ends" : `only ${end - off} remain`} (truncated?)`);
    }
  }

  u8(off: number, what: string, end?: number): number {
    this.need(off, 1, what, end);
    return this.bytes[off]!;
  }
  u16le(off: number, what: string, end?: number): number {
    this.need(off, 2, what, end);
    return this.view.getUint16(off, true);
  }
  u32le(off: number, what: string, end?: number): number {
    this.need(off, 4, what, end);
    return this.view.getUint32(off, true);
  }
  u64le(off: number, what: string, end?: number): bigint {
    this.need(off, 8, what, end);
    return this.view.getBigUint64(off, true);
  }
  u32be(off: number, what: string, end?: number): number {
    this.need(off, 4, what, end);
    return this.view.getUint32(off, false);
  }
  u64be(off: number, what: string, end?: number): bigint {
    this.need(off, 8, what, end);
    return this.view.getBigUint64(off, false);
  }
  /** ASCII of n bytes (NULs dropped). */
  ascii(off: number, n: number, what: string, end?: number): string {
    this.need(off, n, what, end);
    let s = "";
    for (let i = 0; i < n; i++) {
      const c = this.bytes[off + i]!;
      if (c !== 0) s += String.fromCharCode(c);
    }
    return s;
  }
  /** A NUL-terminated string starting at off, which must end before `end`. */
  cstring(off: number, what: string, end = this.bytes.length): { text: string; next: number } {
    let i = off;
    while (i < end && this.bytes[i] !== 0) i++;
    if (i >= end) this.fail(off, `${what} has no terminating NUL before byte ${end}`);
    let text = "";
    for (let j = off; j < i; j++) text += String.fromCharCode(this.bytes[j]!);
    return { text, next: i + 1 };
  }
}

/** A u64 as a number, or a FirmwareError when it is beyond 2^53-1 (what a scenario size holds). */
export function safeNumber(b: Blob, v: bigint, off: number, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) b.fail(off, `${what} ${hex(v)} is beyond 2^53-1, which the scenario format cannot hold`);
  return Number(v);
}
