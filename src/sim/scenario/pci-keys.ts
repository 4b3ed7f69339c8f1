/**
 * The scenario keys that describe a PCI function's identity and ACS
 * registers as config space has them (docs/scenarios.md): `id`,
 * `subsystem`, `class`, `revision`, `acs_cap`, `acs_ctl`. An importer
 * (`iommu-sim import lspci`) writes them; the quirk tables match on them.
 */
import { z } from "zod";
import { ACS_BITS, ACS_NAMES, NO_PCI_IDS, type AcsName, type PciIds } from "../../base/pci/pci-dev.ts";

const vendorDevice = z
  .string()
  .regex(/^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$/, "expected vvvv:dddd (four hex digits each)");

export const pciIdentityKeys = {
  id: vendorDevice.optional().describe("vendor:device as lspci -nn prints it, e.g. 8086:a290: the quirk tables match on it"),
  subsystem: vendorDevice.optional().describe("subsystem vendor:device"),
  class: z
    .string()
    .regex(/^(0x)?([0-9a-fA-F]{4}|[0-9a-fA-F]{6})$/, "expected a class code: 4 hex digits (class, subclass) or 6 (with prog-if)")
    .optional()
    .describe("class code, e.g. 0604 or 060400"),
  revision: z.number().int().min(0).max(255).optional().describe("revision ID"),
  description: z.string().max(400).optional().describe("what the function is, as lspci names it (shown by iommu-sim groups)"),
  acs_cap: z.array(z.enum(ACS_NAMES)).optional().describe("ACS controls the hardware implements (ACSCap); absent with acs_ctl absent = no ACS capability"),
  acs_ctl: z
    .array(z.enum(ACS_NAMES))
    .optional()
    .describe("ACS controls enabled (ACSCtl), as a running kernel left them; absent with acs_cap: the kernel's pci_enable_acs enables SV, RR, CR, UF of those implemented"),
};

const hex = (s: string) => parseInt(s, 16);

/** The IDs a device spec gives (-1 where it says nothing). */
export function pciIdsOf(d: { id?: string; subsystem?: string; class?: string; revision?: number }): PciIds {
  if (d.id === undefined && d.subsystem === undefined && d.class === undefined && d.revision === undefined) return NO_PCI_IDS;
  const [v, dev] = d.id === undefined ? [-1, -1] : d.id.split(":").map(hex);
  const [sv, sd] = d.subsystem === undefined ? [-1, -1] : d.subsystem.split(":").map(hex);
  let cls = -1;
  if (d.class !== undefined) {
    const c = d.class.replace(/^0x/, "");
    cls = c.length === 4 ? hex(c) << 8 : hex(c);
  }
  return { vendor: v!, device: dev!, subsystemVendor: sv!, subsystemDevice: sd!, classCode: cls, revision: d.revision ?? -1 };
}

const mask = (l: readonly AcsName[]) => l.reduce((m, c) => m | ACS_BITS[c], 0);

/**
 * The ACS registers a device spec gives: `acs` (the older key) lists the
 * controls enabled on a capability that implements every control (so a
 * control it leaves out is missing, as before); `acs_cap`/`acs_ctl` are
 * the two registers.
 * `std` says whether the kernel's standard enable still applies (no
 * control register was given).
 */
export function pciAcsOf(d: { acs?: AcsName[]; acs_cap?: AcsName[]; acs_ctl?: AcsName[] }): { cap: number | null; ctl: number; std: boolean } {
  if (d.acs !== undefined) return { cap: mask(ACS_NAMES), ctl: mask(d.acs), std: false };
  if (d.acs_cap === undefined && d.acs_ctl === undefined) return { cap: null, ctl: 0, std: false };
  return { cap: mask(d.acs_cap ?? []), ctl: mask(d.acs_ctl ?? []), std: d.acs_ctl === undefined };
}
