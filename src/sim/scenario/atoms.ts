/**
 * The small schemas the scenario format builds from (names, errnos, sizes,
 * domain references), shared by the file's schema (schema.ts) and the event
 * table (sim/event-table.ts).
 */
import { z } from "zod";
import { ERRNO_NAMES } from "../../lib/errno.ts";
import { named } from "./nouns.ts";
import { quoteString } from "./suggest.ts";

/** A name: of an instance, a device, a driver, a domain, a handle. */
export const name = named(z.string().min(1), "a name");
/** A kernel errno name. */
export const errno = z.enum(ERRNO_NAMES as [string, ...string[]]).describe("a kernel errno name, e.g. EBUSY");
const SIZE_STRING = /^(0x[0-9a-fA-F]+|[0-9]+[KMGT]?)$/;
const SIZE_MULT = { "": 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n, T: 1n << 40n } as const;

/** A size string's exact value (the string matches SIZE_STRING). */
function sizeStringValue(v: string): bigint {
  if (v.startsWith("0x")) return BigInt(v);
  const m = /^([0-9]+)([KMGT]?)$/.exec(v)!;
  return BigInt(m[1]!) * SIZE_MULT[m[2] as keyof typeof SIZE_MULT];
}

/**
 * A byte size or address: a number, or a string like "4K", "2M", "1G",
 * "0x1000". Both forms have the same bounds: a non-negative integer up to
 * 2^53-1, the largest a number holds exactly.
 */
export const sizeSchema = named(
  z
    .union([
      z.number().int().nonnegative(),
      z.string().regex(SIZE_STRING, { error: "expected a size: a non-negative integer, or a string like 4K, 2M, 1G or 0x1000" }),
    ])
    .superRefine((v, ctx) => {
      // (zod runs this even when the union failed: only a well-formed string is measured.)
      if (typeof v !== "string" || !SIZE_STRING.test(v)) return;
      const n = sizeStringValue(v);
      if (n > BigInt(Number.MAX_SAFE_INTEGER)) {
        ctx.addIssue({
          code: "custom",
          input: v,
          message: `expected a size of at most 2^53-1 (0x1fffffffffffff), found ${quoteString(v)} = 0x${n.toString(16).slice(0, 40)}`,
        });
      }
    }),
  "a size: a non-negative integer, or a string like 4K, 2M, 1G or 0x1000",
);

/** The words `expect` reads as a kind of domain (the current domain's type) rather than a domain_alloc name. */
export const EXPECT_DOMAIN_KINDS = ["blocked", "identity"] as const;

/** A domain: the name a domain_alloc event gave it, or the model's domain id from the snapshot. */
export const domainRef = z.union([name, z.number().int().positive()]);

/** Parses a size: 4096, "4K", "2M", "1G", "1T", "0x1000". */
export function parseSize(v: number | string): number {
  if (typeof v === "number") return v;
  if (v.startsWith("0x")) return parseInt(v.slice(2), 16);
  const m = /^([0-9]+)([KMGT]?)$/.exec(v)!;
  const mult = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2] as "" | "K" | "M" | "G" | "T"];
  return parseInt(m[1]!, 10) * mult;
}
