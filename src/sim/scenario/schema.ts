/**
 * The scenario file format (docs/scenarios.md; the contract is extended,
 * never renamed). Validated with zod; scenarios/schema.json is generated
 * from it (scripts/gen-schema.ts) for editors.
 */
import { z } from "zod";
import { ACS_NAMES, PCI_DEV_TYPES } from "../../base/pci/pci-dev.ts";
import { IOMMU_DRIVER_NAMES } from "../../drivers/index.ts";
import { AXES, AXIS_NAMES, type AxisName, type StrategyName } from "../../designs/registry.ts";
import { designChoice, PRESET_NAMES, type PresetName } from "../../designs/presets.ts";
import { EVENT_KINDS, EVENTS, type EventKind } from "../event-table.ts";
import { errno, EXPECT_DOMAIN_KINDS, name, parseSize, sizeSchema } from "./atoms.ts";
import { listOf, quoteString } from "./suggest.ts";
import { pciIdentityKeys } from "./pci-keys.ts";

export { EXPECT_DOMAIN_KINDS, IOMMU_DRIVER_NAMES, parseSize, sizeSchema };
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
      .describe("intel-iommu/amd-iommu device scope: 'all' (INCLUDE_PCI_ALL, IVHD ALL) or device names (intel-iommu: a bridge covers its subtree; amd-iommu: each name is one requester ID)"),
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
    acs: z.array(z.enum(ACS_NAMES)).optional().describe("ACS controls enabled, on a capability implementing all seven; absent = no ACS capability (or see acs_cap, acs_ctl)"),
    ...pciIdentityKeys,
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
    fail_probe: z
      .strictObject({ errno, times: z.number().int().min(1).optional().describe("how many probes fail (default 1)") })
      .optional()
      .describe("fault injection: the first `times` times an IOMMU driver's probe_device would take this device, it fails with errno instead"),
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
    id: z.number().int().nonnegative().optional().describe("the group's number (/sys/kernel/iommu_groups/N)"),
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

const iommufdExpect = z.strictObject({
  closed: z.boolean().optional(),
  objects: z.number().int().nonnegative().optional().describe("how many objects the context holds"),
  pinned_pages: z.number().int().nonnegative().optional(),
  areas: z
    .record(name, z.array(z.strictObject({ iova: sizeSchema, length: sizeSchema })))
    .optional()
    .describe("by IOAS name: exactly its mapped areas, by IOVA"),
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
    bus_ops: z
      .partialRecord(z.enum(BUS_NAMES), z.string().nullable())
      .optional()
      .describe("the iommu_ops named buses carry (bus->iommu_ops, up to v6.7), by ops name (the IOMMU driver's); null: none"),
    domains: z.record(name, domainExpect).optional().describe("domains a domain_alloc event named"),
    deferred: z.array(name).optional().describe("exactly the devices on the deferred-probe lists"),
    violations: z.array(z.string()).optional().describe("[] asserts that no invariant is broken"),
    warnings: z.array(z.string()).optional().describe("kernel WARNs so far, by function name; [] asserts none"),
    bugs: z.array(z.string()).optional().describe("kernel BUGs so far (the kernel would have stopped at the first), by function name; [] asserts none"),
    findings: z.array(z.string()).optional().describe("the model's findings so far (stale IOTLB DMA, page-table quirks); [] asserts none"),
    iommufd: z.record(name, iommufdExpect).optional().describe("iommufd contexts iommufd events opened, by name"),
  })
  .describe("a partial match against the snapshot: only the keys written are compared");


/** The argument schemas of the event table, each under its key, optional: what the scenario schema accepts for each event. */
type EventShape = { [K in EventKind]: z.ZodOptional<(typeof EVENTS)[K]["schema"]> };
const eventShape = Object.fromEntries(
  EVENT_KINDS.map((k) => {
    const d = EVENTS[k];
    const o = d.schema.optional();
    return [k, d.doc !== undefined ? o.describe(d.doc) : o];
  }),
) as EventShape;

/** The keys of which a step has exactly one: a kernel entry point (an event), an expectation, or a concurrently block. */
const STEP_KEYS = [...EVENT_KINDS, "expect", "concurrently"] as const;
/** A step's key: an event's kind, `expect`, or `concurrently`. */
export type EventKey = EventKind | "expect" | "concurrently";

/** The most tasks a concurrently block runs: they are named a to z in a schedule (docs/explore.md). */
export const MAX_TASKS = 26;

/** What an event of a task, or of the scenario, may carry besides its entry point. */
const eventExtras = {
  expect_error: errno.optional().describe("the event must fail with this errno"),
  expect_value: z.number().optional().describe("the value the event returns: bytes unmapped, a DMA or physical address"),
  may_fail: z
    .literal(true)
    .optional()
    .describe("the event may succeed or fail (in a concurrently block, which of two rival calls wins depends on the schedule): its result is recorded, neither is a failure"),
  note: z.string().optional(),
};

/** An event says what its outcome must be, or that either is fine: not both. */
function checkOutcomeKeys(e: { may_fail?: true; expect_error?: string }, ctx: z.RefinementCtx): void {
  if (e.may_fail !== undefined && e.expect_error !== undefined) {
    ctx.addIssue({ code: "custom", message: "may_fail says either outcome is fine; expect_error asks for one: give one of them", path: ["may_fail"] });
  }
}

/** One kernel entry point of a concurrent task (no expect and no nested concurrently: expectations stand between blocks). */
export const taskEventSchema = z
  .strictObject({ ...eventShape, ...eventExtras })
  .superRefine((e, ctx) => {
    checkOutcomeKeys(e, ctx);
    const present = EVENT_KINDS.filter((k) => e[k] !== undefined);
    if (present.length !== 1) {
      const keys = Object.keys(e);
      ctx.addIssue({
        code: "custom",
        message:
          present.length > 1
            ? `expected one kernel entry point per event, found ${present.length}: ${present.join(" and ")}`
            : `expected one kernel entry point (${listOf(EVENT_KINDS, 5)}), found ${keys.length === 0 ? "an empty event" : `only ${listOf(keys.map((k) => quoteString(k, 30)), 4)}`}`,
      });
    }
  })
  .describe("one kernel entry point of a concurrent task");

const concurrentlySchema = z
  .array(z.array(taskEventSchema).min(1, "a task runs at least one event"))
  .min(2, "a concurrently block runs two or more tasks; one task is a plain sequence of events")
  .max(MAX_TASKS, `a concurrently block runs at most ${MAX_TASKS} tasks (a to z in a schedule)`)
  .describe("each list runs as its own task, the tasks interleaved at the model's scheduling points (docs/explore.md)");

export const eventSchema = z
  .strictObject({
    ...eventShape,
    expect: expectSchema.optional(),
    concurrently: concurrentlySchema.optional(),
    ...eventExtras,
  })
  .superRefine((e, ctx) => {
    checkOutcomeKeys(e, ctx);
    const present = STEP_KEYS.filter((k) => e[k] !== undefined);
    if (present.length !== 1) {
      const keys = Object.keys(e);
      ctx.addIssue({
        code: "custom",
        message:
          present.length === 0
            ? `expected one kernel entry point, expect or concurrently (${listOf(STEP_KEYS, 5)}), found ${keys.length === 0 ? "an empty event" : `only ${listOf(keys.map((k) => quoteString(k, 30)), 4)}`}`
            : `expected one kernel entry point per event, found ${present.length}: ${present.join(" and ")}`,
      });
    }
    for (const k of ["expect", "concurrently"] as const) {
      if (e[k] === undefined) continue;
      for (const x of ["expect_error", "expect_value", "may_fail"] as const) {
        if (e[x] !== undefined) ctx.addIssue({ code: "custom", message: `${x} belongs on an event, not on ${k}`, path: [x] });
      }
    }
  })
  .describe("one kernel entry point, an expectation, or a concurrently block");

/** What `iommu-sim explore` must find in the scenario (`iommu-sim check` asserts it; docs/explore.md). */
export const EXPLORE_EXPECTS = ["none", "violation", "expectation", "deadlock"] as const;
/** The kinds of the invariants a race breaks (docs/invariants.md), as violation messages name them. */
export const RACE_KINDS = ["use-after-free", "half-initialised", "lock-misuse", "lock-order"] as const;

export const exploreSchema = z
  .strictObject({
    expect: z
      .enum(EXPLORE_EXPECTS)
      .describe("none: no schedule fails; violation: some schedule breaks an invariant; expectation: some schedule fails an expectation or an event; deadlock: some schedule deadlocks"),
    kind: z.enum(RACE_KINDS).optional().describe("with expect: violation, the kind of invariant the violation must break"),
    bound: z.number().int().positive().optional().describe("preemptions per schedule (default 2)"),
  })
  .superRefine((x, ctx) => {
    if (x.kind !== undefined && x.expect !== "violation") ctx.addIssue({ code: "custom", message: `kind names a violation's kind: it goes with expect: violation, not ${x.expect}`, path: ["kind"] });
  })
  .describe("what exploring the concurrently blocks' interleavings must find (iommu-sim check runs it)");

/** The design-axis strategies a run uses (docs/design-axes.md): per axis of the registry (src/designs/), one of its names. */
type StrategyShape = { [A in AxisName]: z.ZodOptional<z.ZodEnum<{ [N in StrategyName<A>]: N }>> };
export const strategySchema = z.strictObject(
  Object.fromEntries(AXIS_NAMES.map((a) => [a, z.enum(AXES[a].names).optional().describe(AXES[a].doc)])) as unknown as StrategyShape,
);
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
        kernel: z
          .enum(PRESET_NAMES)
          .optional()
          .describe("a kernel release whose design choices the run takes, one strategy per axis (docs/design-axes.md#kernel-presets); default current"),
        strategy: strategySchema
          .optional()
          .describe("design choices per axis (docs/design-axes.md), over the kernel preset's; {} = the preset's (upstream by default)"),
      })
      .optional(),
    iommus: z.array(iommuSchema).default([]),
    devices: z.array(deviceSchema).default([]),
    drivers: z.array(driverSchema).default([]),
    events: z.array(eventSchema).default([]),
    explore: exploreSchema.optional(),
  })
  .describe("an iommu-sim scenario: a machine, what happens to it, and what must hold");

export type Scenario = z.infer<typeof scenarioSchema>;
export type IommuSpec = z.infer<typeof iommuSchema>;
export type DeviceSpec = z.infer<typeof deviceSchema>;
export type EventSpec = z.infer<typeof eventSchema>;
export type ExpectSpec = z.infer<typeof expectSchema>;
export type TaskEventSpec = z.infer<typeof taskEventSchema>;
export type ExploreSpec = z.infer<typeof exploreSchema>;

/** The scenario with some of its boot.strategy choices replaced. */
export function withStrategy(s: Scenario, over: StrategyChoice): Scenario {
  return { ...s, boot: { ...s.boot, strategy: { ...s.boot?.strategy, ...over } } };
}

/**
 * The scenario run under another design: a kernel preset replaces the
 * scenario's own kernel and strategy choices (the run is that release's),
 * and strategy choices then override per axis.
 */
export function withDesign(s: Scenario, d: { kernel?: PresetName; strategy?: StrategyChoice }): Scenario {
  if (d.kernel === undefined) return withStrategy(s, d.strategy ?? {});
  return { ...s, boot: { ...s.boot, kernel: d.kernel, strategy: { ...d.strategy } } };
}

/** The strategy choice a scenario's boot asks for: its kernel preset, overridden by its strategy. */
export function scenarioDesign(s: Pick<Scenario, "boot">): StrategyChoice {
  return designChoice(s.boot?.kernel, s.boot?.strategy);
}

/** The architecture a scenario boots: boot.arch, else x86 when an intel/amd instance exists, else arm64. */
export function scenarioArch(s: Pick<Scenario, "boot" | "iommus">): "x86" | "arm64" {
  return s.boot?.arch ?? (s.iommus.some((m) => m.driver === "intel-iommu" || m.driver === "amd-iommu") ? "x86" : "arm64");
}

export function eventKey(e: EventSpec | TaskEventSpec): EventKey {
  const r = e as Partial<Record<EventKey, unknown>>;
  return STEP_KEYS.find((k) => r[k] !== undefined)!;
}
