/**
 * The scenario events, one entry per kind: the schema of its argument (the
 * scenario schema and scenarios/schema.json are built from these, in this
 * order), what the event log calls it, how it runs, what it returns, and
 * its cross-reference checks. A new event is one entry here, an action in
 * sim/*-actions.ts, and a section in docs/scenarios.md.
 */
import { z } from "zod";
import { addDevice, bindDriver, delDevice, iommuRegister, iommuUnregister, registerDriver, unbindDriver, unregisterDriver } from "./actions.ts";
import { advanceTime, deviceDma, dmaMap, dmaUnmap, map, unmap } from "./dma-actions.ts";
import { attachDevice, attachGroup, claimDmaOwner, detach, domainAlloc, domainFree, groupType, pasidOp, releaseDmaOwner } from "./domain-actions.ts";
import { callEvent, pathEvent, valueEvent, type EventDef } from "./event-kind.ts";
import { domainRef, EXPECT_DOMAIN_KINDS, name, sizeSchema } from "./scenario/atoms.ts";
import { quoteString } from "./scenario/suggest.ts";
import { callKey, IOMMUFD_CALL_KEYS, iommufdEventSchema, runIommufd, VFIO_PCI, vfioBind } from "./iommufd-actions.ts";

/** The argument of the three PASID events (one schema object each, as each key is its own property). */
const pasidArg = () => z.strictObject({ domain: domainRef, device: name, pasid: z.number().int().nonnegative() });

export const EVENTS = {
  iommu_register: pathEvent({
    schema: name,
    label: (n) => n,
    run: (m, n) => iommuRegister(m, m.instances.get(n)!),
    check: (n, refs) => refs.iommu(n),
  }),
  iommu_unregister: pathEvent({
    schema: name,
    label: (n) => n,
    run: (m, n) => iommuUnregister(m, m.instances.get(n)!),
    check: (n, refs) => refs.iommu(n),
  }),
  device_add: pathEvent({
    schema: name,
    label: (n) => n,
    run: (m, n) => addDevice(m, m.devices.get(n)!),
    check: (n, refs) => refs.device(n),
  }),
  device_del: pathEvent({
    schema: name,
    label: (n) => n,
    run: (m, n) => delDevice(m, m.devices.get(n)!),
    check: (n, refs) => refs.device(n),
  }),
  driver_register: pathEvent({
    schema: name,
    label: (n) => n,
    run: (m, n) => registerDriver(m, n),
    check: (n, refs) => refs.driver(n),
  }),
  driver_unregister: pathEvent({
    schema: name,
    label: (n) => n,
    run: (m, n) => unregisterDriver(m, n),
    check: (n, refs) => refs.driver(n),
  }),
  driver_bind: pathEvent({
    schema: z.strictObject({ device: name, driver: name }),
    label: (a) => `${a.device} ${a.driver}`,
    run: (m, a) => bindDriver(m, a.device, a.driver),
    check: (a, refs) => {
      refs.device(a.device, "device");
      refs.driver(a.driver, "driver");
    },
  }),
  driver_unbind: pathEvent({
    schema: name,
    label: (n) => n,
    run: (m, n) => unbindDriver(m, n),
    check: (n, refs) => refs.device(n),
  }),
  domain_alloc: callEvent({
    schema: z.strictObject({ name, device: name }),
    doc: "allocate an UNMANAGED domain for the device (strategy domain_alloc decides how) and name it",
    label: (a) => `${a.name} ${a.device}`,
    run: (m, a) => domainAlloc(m, a.name, a.device),
    check: (a, refs) => {
      refs.device(a.device, "device");
      if ((EXPECT_DOMAIN_KINDS as readonly string[]).includes(a.name)) {
        refs.bad(`${quoteString(a.name)} is reserved: expect reads ${EXPECT_DOMAIN_KINDS.join(" and ")} as kinds of domain`, "name");
      }
    },
  }),
  domain_free: callEvent({
    schema: domainRef,
    doc: "iommu_domain_free",
    label: (ref) => String(ref),
    run: (m, ref) => domainFree(m, ref),
    check: (ref, refs) => refs.domain(ref),
  }),
  attach_group: pathEvent({
    schema: z.strictObject({ domain: domainRef, device: name }),
    doc: "iommu_attach_group on the device's group",
    label: (a) => `${a.domain} ${a.device}`,
    run: (m, a) => attachGroup(m, a.domain, a.device),
    check: (a, refs) => {
      refs.device(a.device, "device");
      refs.domain(a.domain, "domain");
    },
  }),
  attach_device: pathEvent({
    schema: z.strictObject({ domain: domainRef, device: name }),
    doc: "iommu_attach_device (singleton groups only)",
    label: (a) => `${a.domain} ${a.device}`,
    run: (m, a) => attachDevice(m, a.domain, a.device),
    check: (a, refs) => {
      refs.device(a.device, "device");
      refs.domain(a.domain, "domain");
    },
  }),
  detach: pathEvent({
    schema: z.strictObject({ device: name, domain: domainRef.optional() }),
    doc: "with domain: iommu_detach_device; without: iommu_detach_group on the device's group",
    label: (a) => (a.domain === undefined ? a.device : `${a.domain} ${a.device}`),
    run: (m, a) => detach(m, a.device, a.domain),
    check: (a, refs) => {
      refs.device(a.device, "device");
      if (a.domain !== undefined) refs.domain(a.domain, "domain");
    },
  }),
  attach_pasid: pathEvent({
    schema: pasidArg(),
    label: (a) => `${a.domain} ${a.device} ${a.pasid}`,
    run: (m, a) => pasidOp(m, "attach", a.domain, a.device, a.pasid),
    check: (a, refs) => {
      refs.device(a.device, "device");
      refs.domain(a.domain, "domain");
    },
  }),
  detach_pasid: pathEvent({
    schema: pasidArg(),
    label: (a) => `${a.domain} ${a.device} ${a.pasid}`,
    run: (m, a) => pasidOp(m, "detach", a.domain, a.device, a.pasid),
    check: (a, refs) => {
      refs.device(a.device, "device");
      refs.domain(a.domain, "domain");
    },
  }),
  replace_pasid: pathEvent({
    schema: pasidArg(),
    label: (a) => `${a.domain} ${a.device} ${a.pasid}`,
    run: (m, a) => pasidOp(m, "replace", a.domain, a.device, a.pasid),
    check: (a, refs) => {
      refs.device(a.device, "device");
      refs.domain(a.domain, "domain");
    },
  }),
  claim_dma_owner: pathEvent({
    schema: z.strictObject({ device: name, owner: name, group: z.boolean().optional() }),
    doc: "iommu_device_claim_dma_owner (iommufd), or with group: true iommu_group_claim_dma_owner (legacy VFIO); owner names a cookie",
    label: (a) => `${a.device} ${a.owner}${a.group ? " (group)" : ""}`,
    run: (m, a) => claimDmaOwner(m, a.device, a.owner, a.group ?? false),
    check: (a, refs) => refs.device(a.device, "device"),
  }),
  release_dma_owner: pathEvent({
    schema: z.strictObject({ device: name, group: z.boolean().optional() }),
    doc: "iommu_device_release_dma_owner, or iommu_group_release_dma_owner",
    label: (a) => `${a.device}${a.group ? " (group)" : ""}`,
    run: (m, a) => releaseDmaOwner(m, a.device, a.group ?? false),
    check: (a, refs) => refs.device(a.device, "device"),
  }),
  group_type: pathEvent({
    schema: z.strictObject({ device: name, type: z.enum(["identity", "DMA", "DMA-FQ", "auto"]) }),
    doc: "write /sys/kernel/iommu_groups/N/type for the device's group",
    label: (a) => `${a.device} ${a.type}`,
    run: (m, a) => groupType(m, a.device, a.type),
    check: (a, refs) => refs.device(a.device, "device"),
  }),
  map: callEvent({
    schema: z.strictObject({ domain: domainRef, iova: sizeSchema, paddr: sizeSchema, size: sizeSchema, prot: z.enum(["r", "w", "rw"]).optional() }),
    doc: "iommu_map on a domain (prot default rw)",
    label: (a) => `${a.domain} ${a.iova} -> ${a.paddr} ${a.size}`,
    run: (m, a) => map(m, a.domain, a.iova, a.paddr, a.size, a.prot ?? "rw"),
    check: (a, refs) => refs.domain(a.domain, "domain"),
  }),
  unmap: valueEvent({
    schema: z.strictObject({ domain: domainRef, iova: sizeSchema, size: sizeSchema }),
    doc: "iommu_unmap; its value is the bytes unmapped",
    label: (a) => `${a.domain} ${a.iova} ${a.size}`,
    run: (m, a) => unmap(m, a.domain, a.iova, a.size),
    check: (a, refs) => refs.domain(a.domain, "domain"),
  }),
  dma_map: valueEvent({
    schema: z.strictObject({
      device: name,
      name,
      paddr: sizeSchema.optional(),
      size: sizeSchema.optional(),
      sg: z.array(z.tuple([sizeSchema, sizeSchema])).min(1).optional().describe("dma_map_sg: [paddr, length] entries"),
      dir: z.enum(["bidirectional", "to_device", "from_device"]).optional(),
    }),
    doc: "dma_map_page (paddr, size) or dma_map_sg (sg); the handle gets a name; its value is the DMA address",
    label: (a) => `${a.device} ${a.name}`,
    run: (m, a) => dmaMap(m, a.device, a.name, a.dir ?? "bidirectional", a.paddr, a.size, a.sg),
    check: (a, refs) => {
      refs.device(a.device, "device");
      if (a.sg === undefined && (a.paddr === undefined || a.size === undefined)) refs.bad("dma_map needs paddr and size (dma_map_page) or sg (dma_map_sg)");
      if (a.sg !== undefined && (a.paddr !== undefined || a.size !== undefined)) refs.bad("dma_map takes sg or paddr/size, not both");
    },
  }),
  dma_unmap: valueEvent({
    schema: z.strictObject({ device: name, name }),
    doc: "dma_unmap_page / dma_unmap_sg of a named handle",
    label: (a) => `${a.device} ${a.name}`,
    run: (m, a) => dmaUnmap(m, a.device, a.name),
    check: (a, refs) => {
      refs.device(a.device, "device");
      refs.handle(a.name, "name");
    },
  }),
  device_dma: valueEvent({
    schema: z.strictObject({
      device: name,
      iova: sizeSchema.optional(),
      handle: name.optional().describe("a dma_map handle: DMA to its address"),
      size: sizeSchema.optional(),
      dir: z.enum(["read", "write"]).optional(),
    }),
    doc: "the device performs DMA: translated through its domain; a fault fails with EFAULT; its value is the first physical address",
    label: (a) => `${a.device} ${a.handle ?? a.iova} ${a.dir ?? "read"}`,
    run: (m, a) => deviceDma(m, a.device, a.iova, a.handle, a.size, a.dir === "write"),
    check: (a, refs) => {
      refs.device(a.device, "device");
      if ((a.iova === undefined) === (a.handle === undefined)) refs.bad("device_dma needs exactly one of iova and handle");
      if (a.handle !== undefined) refs.handle(a.handle, "handle");
    },
  }),
  vfio_bind: pathEvent({
    schema: name,
    doc: `${VFIO_PCI} takes the device: its kernel driver is unbound (device_release_driver) and ${VFIO_PCI}, which the scenario lists with driver_managed_dma, bound`,
    label: (n) => n,
    run: (m, n) => vfioBind(m, n),
    check: (n, refs) => {
      refs.device(n);
      refs.driver(VFIO_PCI);
    },
  }),
  iommufd: callEvent({
    schema: iommufdEventSchema,
    doc: "calls on an iommufd context (opened by the first event naming it); ids are bound to names (as); each call may say expect_error",
    label: (a) => `${a.ctx} ${a.calls.map((c) => callKey(c) ?? "?").join(",")}`,
    run: (m, a) => runIommufd(m, a),
    check: (a, refs) => {
      let closes = false;
      a.calls.forEach((c, i) => {
        const keys = IOMMUFD_CALL_KEYS.filter((k) => c[k] !== undefined);
        if (keys.length !== 1) {
          refs.bad(`a call has exactly one of ${IOMMUFD_CALL_KEYS.join(", ")}; found ${keys.length === 0 ? "none" : keys.join(" and ")}`, "calls", i);
          return;
        }
        const at = (...rest: string[]) => ["calls", i, keys[0]!, ...rest];
        const obj = (n: string, ...rest: string[]) => refs.iommufdName(a.ctx, n, ...at(...rest));
        if (closes) refs.bad("no call can follow close", "calls", i);
        if (c.device_bind !== undefined) refs.device(c.device_bind.device, ...at("device"));
        const pt = c.attach ?? c.replace;
        if (pt !== undefined) {
          obj(pt.dev, "dev");
          obj(pt.pt, "pt");
        }
        const d = c.detach ?? c.unbind;
        if (d !== undefined) obj(d.dev, "dev");
        if (c.ioas_map !== undefined) obj(c.ioas_map.ioas, "ioas");
        if (c.ioas_unmap !== undefined) obj(c.ioas_unmap.ioas, "ioas");
        if (c.ioas_copy !== undefined) {
          obj(c.ioas_copy.src, "src");
          obj(c.ioas_copy.dst, "dst");
        }
        if (c.hwpt_alloc !== undefined) {
          obj(c.hwpt_alloc.dev, "dev");
          obj(c.hwpt_alloc.pt, "pt");
        }
        if (c.access_create !== undefined) obj(c.access_create.ioas, "ioas");
        const acc = c.access_pin ?? c.access_unpin ?? c.access_rw ?? c.access_destroy;
        if (acc !== undefined) obj(acc.access, "access");
        const hw = c.set_dirty_tracking ?? c.test_dirty ?? c.get_dirty_bitmap;
        if (hw !== undefined) obj(hw.hwpt, "hwpt");
        if (c.destroy !== undefined) obj(c.destroy);
        if (c.close !== undefined) closes = true;
      });
      refs.iommufdCtx(a.ctx, closes, "ctx");
    },
  }),
  advance_time: callEvent({
    schema: z.number().int().positive(),
    doc: "milliseconds of model time pass: flush-queue timers fire",
    label: (ms) => `${ms} ms`,
    run: (m, ms) => advanceTime(m, ms),
  }),
} as const;

/** A kind of scenario event: a kernel entry point (an `expect` step is not one). */
export type EventKind = keyof typeof EVENTS;

/** The event kinds in the table's order (the scenario schema's). */
export const EVENT_KINDS = Object.keys(EVENTS) as EventKind[];

/** The argument an event of kind K takes. */
export type EventArg<K extends EventKind> = z.infer<(typeof EVENTS)[K]["schema"]>;

/** What an event of kind K returns: 0 or a value, or an errno. */
export type EventResult<K extends EventKind> = (typeof EVENTS)[K] extends { run(...a: never[]): infer R } ? (R extends Generator<unknown, infer T> ? T : R) : never;

/** An entry of the table, its argument type erased (for code that handles every kind alike). */
export function eventDef(kind: EventKind): EventDef {
  return EVENTS[kind] as unknown as EventDef;
}
