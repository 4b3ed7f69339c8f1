/**
 * The scenario file format (docs/scenarios.md; the contract is extended,
 * never renamed). Validated with zod; scenarios/schema.json is generated
 * from it (scripts/gen-schema.ts) for editors.
 */
import { z } from "zod";
import { ACS_NAMES, PCI_DEV_TYPES } from "../../base/pci/pci-dev.ts";
import { IOMMU_DRIVER_NAMES } from "../../drivers/index.ts";
import { DOMAIN_ALLOC_NAMES, OPS_RESOLUTION_NAMES } from "../../iommu/strategy.ts";
import { ERRNO_NAMES } from "../../lib/errno.ts";
import { named } from "./nouns.ts";
import { listOf, quoteString } from "./suggest.ts";

const name = named(z.string().min(1), "a name");
const errno = z.enum(ERRNO_NAMES as [string, ...string[]]).describe("a kernel errno name, e.g. EBUSY");
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

export { DOMAIN_ALLOC_NAMES, IOMMU_DRIVER_NAMES, OPS_RESOLUTION_NAMES };
export const BUS_NAMES = ["platform", "pci", "amba", "iommufd_mock"] as const;

const iommuSchema = z
  .strictObject({
    name,
    driver: z.enum(IOMMU_DRIVER_NAMES),
    fwnode: z
      .string()
      .min(1)
      .nullable()
      .optional()
      .describe(
        "firmware node fwspecs point at (DT path). intel/amd: none (scope-based). mock: omit for a software node created at registration (v6.18+), null for none (v6.8-v6.17)",
      ),
    registered: z.boolean().optional().describe("registered at boot (default true); false: an event registers it"),
    scope: z
      .union([z.literal("all"), z.array(name)])
      .optional()
      .describe("intel-iommu/amd-iommu device scope: 'all' (INCLUDE_PCI_ALL) or device names (a bridge covers its subtree)"),
    segment: z.number().int().nonnegative().optional().describe("PCI segment of a scope-based unit (default 0)"),
    "#iommu-cells": z.number().int().min(0).max(4).optional().describe("cells per `iommus` entry (default 1)"),
    status: z.enum(["okay", "disabled"]).optional().describe("DT status of the IOMMU node"),
    "page-sizes": z.array(sizeSchema).min(1).optional().describe("page sizes the hardware supports"),
    "sid-bits": z.number().int().min(1).max(32).optional().describe("SMMU StreamID width (arm-smmu-v3 default 32, arm-smmu 15)"),
    "stream-match-mask": z.number().int().nonnegative().optional().describe("arm-smmu: SMR mask for 1-cell iommus entries"),
    "stream-map-entries": z.number().int().min(1).max(128).optional().describe("arm-smmu: number of stream-mapping groups (default 128)"),
    "pasid-bits": z.number().int().min(0).max(20).optional().describe("PASID/SubstreamID width (0: none)"),
    ias: z.number().int().min(32).max(52).optional().describe("input (IOVA) address bits"),
  })
  .describe("an IOMMU hardware instance (struct iommu_device)");

const resvRegionSchema = z.strictObject({
  start: sizeSchema,
  length: sizeSchema,
  type: z.enum(["direct", "direct-relaxable", "reserved"]),
});

const pciHostSchema = z.strictObject({
  segment: z.number().int().nonnegative(),
  "iommu-map": z
    .array(z.tuple([z.number().int().nonnegative(), name, z.number().int().nonnegative(), z.number().int().positive()]))
    .optional()
    .describe("entries of [rid-base, iommu instance, iommu-base, length]"),
  "iommu-map-mask": z.number().int().nonnegative().optional(),
});

const deviceSchema = z
  .strictObject({
    name,
    bus: z.enum(BUS_NAMES),
    fwnode: z.string().min(1).optional().describe("firmware node: a DT path, or an ACPI path starting with \\_SB"),
    iommus: z
      .array(z.array(z.union([name, z.number().int().nonnegative()])).min(1))
      .optional()
      .describe("device-tree `iommus`: each entry is [instance, cells...]"),
    "pci-host": pciHostSchema.optional().describe("this platform device is a PCI host bridge"),
    parent: name.optional(),
    type: z.enum(PCI_DEV_TYPES).optional(),
    acs: z.array(z.enum(ACS_NAMES)).optional().describe("ACS controls enabled; absent = no ACS capability"),
    multifunction: z.boolean().optional(),
    "dma-alias": z.array(z.string()).optional().describe("quirked DMA aliases on the same bus: 'DD.F' or a device name"),
    "bridge-xlate-root": z.boolean().optional(),
    "pcie-bridge-alias": z.boolean().optional(),
    untrusted: z.boolean().optional().describe("behind an external-facing port"),
    "pasid-bits": z.number().int().min(0).max(20).optional().describe("PASID capability width"),
    "reserved-regions": z.array(resvRegionSchema).optional().describe("firmware reserved regions (RMRR, IORT RMR)"),
    def_domain_type: z
      .enum(["identity", "DMA"])
      .optional()
      .describe("what the IOMMU driver's def_domain_type answers for this device (its quirk table)"),
    fail_attach: errno.optional().describe("fault injection: the IOMMU driver fails attach_dev of an UNMANAGED domain to this device"),
    "dma-mask": z.number().int().min(1).max(64).optional().describe("DMA mask width in bits (default 32)"),
    added: z.boolean().optional().describe("added at boot (default true)"),
    add_with: z
      .enum(["device_add", "iommu_mock_device_add"])
      .optional()
      .describe("how a mock-bus device is added (default iommu_mock_device_add, v6.18+)"),
  })
  .describe("a device (struct device)");

const driverSchema = z.strictObject({
  name,
  bus: z.enum(BUS_NAMES),
  match: z.union([z.array(name), z.literal("*")]),
  driver_managed_dma: z.boolean().optional(),
  registered: z.boolean().optional().describe("registered at boot (default true)"),
  probe_result: z.record(name, errno).optional().describe("per device: the errno the driver's probe returns"),
});

/** The words `expect` reads as a kind of domain (the current domain's type) rather than a domain_alloc name. */
export const EXPECT_DOMAIN_KINDS = ["blocked", "identity"] as const;

/** An expected current domain: a kind, a domain id, or a domain_alloc name. */
const expectDomain = z
  .union([z.enum(EXPECT_DOMAIN_KINDS), z.number().int(), name])
  .nullable()
  .optional()
  .describe("blocked or identity (a domain of that type), a domain id, or the name a domain_alloc event gave");

const deviceExpect = z.strictObject({
  bus: z.string().optional(),
  registered: z.boolean().optional(),
  iommu: z.string().nullable().optional(),
  ops: z.string().nullable().optional(),
  fwspec: z
    .strictObject({ iommu: z.string().nullable().optional(), ids: z.array(z.number()).optional() })
    .nullable()
    .optional(),
  dev_iommu: z.enum(["none", "fw_only", "probed"]).optional(),
  group: z.number().int().nullable().optional(),
  domain: expectDomain,
  driver: z.string().nullable().optional(),
  probe: z.enum(["none", "bound", "deferred", "failed"]).optional(),
  probe_error: z.string().nullable().optional(),
});

const groupExpect = z.union([
  z.array(name).min(1),
  z.strictObject({
    devices: z.array(name).min(1),
    type: z.string().optional(),
    domain: expectDomain,
    owner: z.enum(["none", "kernel", "user"]).optional(),
    owner_cnt: z.number().int().nonnegative().optional(),
    pasids: z.array(z.number().int()).optional(),
  }),
]);

const domainExpect = z.strictObject({
  type: z.string().optional(),
  iommu: z.string().nullable().optional(),
  page_sizes: z.array(z.string()).optional(),
  format: z.string().nullable().optional(),
  live: z.boolean().optional(),
  mapped_bytes: z.number().optional(),
  pgtable_pages: z.number().optional(),
  pgtable_bytes: z.number().optional(),
});

const iommuExpect = z.strictObject({
  driver: z.string().optional(),
  registered: z.boolean().optional(),
  devices: z.array(name).optional(),
});

export const expectSchema = z
  .strictObject({
    devices: z.record(name, deviceExpect).optional(),
    groups: z.array(groupExpect).optional().describe("each listed set must be exactly one group's devices (order-free)"),
    group_count: z.number().int().nonnegative().optional(),
    iommus: z.record(name, iommuExpect).optional(),
    domains: z.record(name, domainExpect).optional().describe("domains a domain_alloc event named"),
    deferred: z.array(name).optional().describe("exactly the devices on the deferred-probe lists"),
    violations: z.array(z.string()).optional().describe("[] asserts that no invariant is broken"),
    warnings: z.array(z.string()).optional().describe("kernel WARNs so far, by function name; [] asserts none"),
    findings: z.array(z.string()).optional().describe("the model's findings so far (stale IOTLB DMA, page-table quirks); [] asserts none"),
  })
  .describe("a partial match against the snapshot: only the keys written are compared");

/** A domain: the name a domain_alloc event gave it, or the model's domain id from the snapshot. */
const domainRef = z.union([name, z.number().int().positive()]);

const EVENT_KEYS = [
  "iommu_register",
  "iommu_unregister",
  "device_add",
  "device_del",
  "driver_register",
  "driver_unregister",
  "driver_bind",
  "driver_unbind",
  "domain_alloc",
  "domain_free",
  "attach_group",
  "attach_device",
  "detach",
  "attach_pasid",
  "detach_pasid",
  "replace_pasid",
  "claim_dma_owner",
  "release_dma_owner",
  "group_type",
  "map",
  "unmap",
  "dma_map",
  "dma_unmap",
  "device_dma",
  "advance_time",
  "expect",
] as const;
export type EventKey = (typeof EVENT_KEYS)[number];

export const eventSchema = z
  .strictObject({
    iommu_register: name.optional(),
    iommu_unregister: name.optional(),
    device_add: name.optional(),
    device_del: name.optional(),
    driver_register: name.optional(),
    driver_unregister: name.optional(),
    driver_bind: z.strictObject({ device: name, driver: name }).optional(),
    driver_unbind: name.optional(),
    domain_alloc: z
      .strictObject({ name, device: name })
      .optional()
      .describe("allocate an UNMANAGED domain for the device (strategy domain_alloc decides how) and name it"),
    domain_free: domainRef.optional().describe("iommu_domain_free"),
    attach_group: z.strictObject({ domain: domainRef, device: name }).optional().describe("iommu_attach_group on the device's group"),
    attach_device: z.strictObject({ domain: domainRef, device: name }).optional().describe("iommu_attach_device (singleton groups only)"),
    detach: z
      .strictObject({ device: name, domain: domainRef.optional() })
      .optional()
      .describe("with domain: iommu_detach_device; without: iommu_detach_group on the device's group"),
    attach_pasid: z.strictObject({ domain: domainRef, device: name, pasid: z.number().int().nonnegative() }).optional(),
    detach_pasid: z.strictObject({ domain: domainRef, device: name, pasid: z.number().int().nonnegative() }).optional(),
    replace_pasid: z.strictObject({ domain: domainRef, device: name, pasid: z.number().int().nonnegative() }).optional(),
    claim_dma_owner: z
      .strictObject({ device: name, owner: name, group: z.boolean().optional() })
      .optional()
      .describe("iommu_device_claim_dma_owner (iommufd), or with group: true iommu_group_claim_dma_owner (legacy VFIO); owner names a cookie"),
    release_dma_owner: z
      .strictObject({ device: name, group: z.boolean().optional() })
      .optional()
      .describe("iommu_device_release_dma_owner, or iommu_group_release_dma_owner"),
    group_type: z
      .strictObject({ device: name, type: z.enum(["identity", "DMA", "DMA-FQ", "auto"]) })
      .optional()
      .describe("write /sys/kernel/iommu_groups/N/type for the device's group"),
    map: z
      .strictObject({ domain: domainRef, iova: sizeSchema, paddr: sizeSchema, size: sizeSchema, prot: z.enum(["r", "w", "rw"]).optional() })
      .optional()
      .describe("iommu_map on a domain (prot default rw)"),
    unmap: z.strictObject({ domain: domainRef, iova: sizeSchema, size: sizeSchema }).optional().describe("iommu_unmap; its value is the bytes unmapped"),
    dma_map: z
      .strictObject({
        device: name,
        name,
        paddr: sizeSchema.optional(),
        size: sizeSchema.optional(),
        sg: z.array(z.tuple([sizeSchema, sizeSchema])).min(1).optional().describe("dma_map_sg: [paddr, length] entries"),
        dir: z.enum(["bidirectional", "to_device", "from_device"]).optional(),
      })
      .optional()
      .describe("dma_map_page (paddr, size) or dma_map_sg (sg); the handle gets a name; its value is the DMA address"),
    dma_unmap: z.strictObject({ device: name, name }).optional().describe("dma_unmap_page / dma_unmap_sg of a named handle"),
    device_dma: z
      .strictObject({
        device: name,
        iova: sizeSchema.optional(),
        handle: name.optional().describe("a dma_map handle: DMA to its address"),
        size: sizeSchema.optional(),
        dir: z.enum(["read", "write"]).optional(),
      })
      .optional()
      .describe("the device performs DMA: translated through its domain; a fault fails with EFAULT; its value is the first physical address"),
    advance_time: z.number().int().positive().optional().describe("milliseconds of model time pass: flush-queue timers fire"),
    expect: expectSchema.optional(),
    expect_error: errno.optional().describe("the event must fail with this errno"),
    expect_value: z.number().optional().describe("the value the event returns: bytes unmapped, a DMA or physical address"),
    note: z.string().optional(),
  })
  .superRefine((e, ctx) => {
    const present = EVENT_KEYS.filter((k) => e[k] !== undefined);
    if (present.length !== 1) {
      const keys = Object.keys(e);
      ctx.addIssue({
        code: "custom",
        message:
          present.length === 0
            ? `expected one kernel entry point or expect (${listOf(EVENT_KEYS, 5)}), found ${keys.length === 0 ? "an empty event" : `only ${listOf(keys.map((k) => quoteString(k, 30)), 4)}`}`
            : `expected one kernel entry point per event, found ${present.length}: ${present.join(" and ")}`,
      });
    }
    if (e.expect_error !== undefined && e.expect !== undefined) {
      ctx.addIssue({ code: "custom", message: "expect_error belongs on an event, not on expect", path: ["expect_error"] });
    }
  })
  .describe("one kernel entry point, or an expectation");


/** The design-axis strategies a run uses (docs/design-axes.md). */
export const strategySchema = z.strictObject({
  ops_resolution: z.enum(OPS_RESOLUTION_NAMES).optional().describe("which ops serve a device (default upstream)"),
  domain_alloc: z
    .enum(DOMAIN_ALLOC_NAMES)
    .optional()
    .describe("how domain_alloc events allocate: through the device's ops (default) or the pre-6.13 bus path with a NULL device"),
});
export type StrategyChoice = z.infer<typeof strategySchema>;

export const scenarioSchema = z
  .strictObject({
    name,
    description: z.string().optional(),
    boot: z
      .strictObject({
        cmdline: z
          .string()
          .optional()
          .describe(
            "kernel command line: iommu.passthrough=, iommu.strict=, x86 iommu=pt/nopt are modelled; other IOMMU options are named as not modelled, unknown ones warned about",
          ),
        arch: z.enum(["x86", "arm64"]).optional().describe("default: x86 when an intel/amd instance exists, else arm64"),
        order: z
          .enum(["iommus-first", "devices-first"])
          .optional()
          .describe(
            "iommus-first (default): instances register, then devices are added (built-in drivers); devices-first: devices are enumerated, then instances register and replay probe over them (VT-d's rootfs_initcall), then drivers",
          ),
        strategy: strategySchema
          .optional()
          .describe("design choices (docs/design-axes.md); {} = upstream"),
      })
      .optional(),
    iommus: z.array(iommuSchema).default([]),
    devices: z.array(deviceSchema).default([]),
    drivers: z.array(driverSchema).default([]),
    events: z.array(eventSchema).default([]),
  })
  .describe("an iommu-sim scenario: a machine, what happens to it, and what must hold");

export type Scenario = z.infer<typeof scenarioSchema>;
export type IommuSpec = z.infer<typeof iommuSchema>;
export type DeviceSpec = z.infer<typeof deviceSchema>;
export type EventSpec = z.infer<typeof eventSchema>;
export type ExpectSpec = z.infer<typeof expectSchema>;

/** The scenario with some of its boot.strategy choices replaced. */
export function withStrategy(s: Scenario, over: StrategyChoice): Scenario {
  const strategy = { ...s.boot?.strategy };
  if (over.ops_resolution !== undefined) strategy.ops_resolution = over.ops_resolution;
  if (over.domain_alloc !== undefined) strategy.domain_alloc = over.domain_alloc;
  return { ...s, boot: { ...s.boot, strategy } };
}

/** The architecture a scenario boots: boot.arch, else x86 when an intel/amd instance exists, else arm64. */
export function scenarioArch(s: Pick<Scenario, "boot" | "iommus">): "x86" | "arm64" {
  return s.boot?.arch ?? (s.iommus.some((m) => m.driver === "intel-iommu" || m.driver === "amd-iommu") ? "x86" : "arm64");
}

export function eventKey(e: EventSpec): EventKey {
  return EVENT_KEYS.find((k) => e[k] !== undefined)!;
}

/** Parses a size: 4096, "4K", "2M", "1G", "1T", "0x1000". */
export function parseSize(v: number | string): number {
  if (typeof v === "number") return v;
  if (v.startsWith("0x")) return parseInt(v.slice(2), 16);
  const m = /^([0-9]+)([KMGT]?)$/.exec(v)!;
  const mult = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2] as "" | "K" | "M" | "G" | "T"];
  return parseInt(m[1]!, 10) * mult;
}
