/**
 * The `iommufd:` and `vfio_bind:` scenario events: a list of calls run
 * against one iommufd context of the machine (opened by the first event
 * naming it, as a VMM opens /dev/iommu), the ids the calls return bound to
 * the names the scenario gives them; and vfio-pci taking a device (what
 * `driverctl set-override DEVICE vfio-pci` does).
 */
import { z } from "zod";
import { deviceDriverAttach, deviceReleaseDriver, flushDeferredProbeWork } from "../base/dd.ts";
import type { Path } from "../base/path.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { iommufdDeviceAttach, iommufdDeviceDetach, iommufdDeviceReplace } from "../iommufd/attach.ts";
import { getDevice, iommufdDeviceBind, iommufdDeviceUnbind, IommufdDevice } from "../iommufd/device.ts";
import { IommufdIoas } from "../iommufd/ioas.ts";
import { iommufdClose, iommufdIoctl, iommufdOpen } from "../iommufd/main.ts";
import type { IommufdCtx } from "../iommufd/object.ts";
import * as U from "../iommufd/uapi.ts";
import { Mm } from "../iommufd/user-memory.ts";
import { iommufdEnv } from "./iommufd-env.ts";
import type { Machine } from "./machine.ts";
import { accessRelease, runMoreCall, type ScenarioAccess } from "./iommufd-calls.ts";
import { errno, name, parseSize, sizeSchema } from "./scenario/atoms.ts";

/** The driver `vfio_bind` binds: the scenario lists it, with driver_managed_dma: true. */
export const VFIO_PCI = "vfio-pci";

const MAP_FLAG_NAMES = ["READABLE", "WRITEABLE"] as const;
const HWPT_FLAG_NAMES = ["NEST_PARENT", "DIRTY_TRACKING"] as const;

/** One call: exactly one of the call keys, and optionally expect_error. */
export const iommufdCallSchema = z.strictObject({
  ioas_alloc: z.strictObject({ as: name }).optional().describe("IOMMU_IOAS_ALLOC; the IOAS gets the name"),
  device_bind: z.strictObject({ device: name, as: name }).optional().describe("the VFIO device fd's bind to the context (iommufd_device_bind: claims DMA ownership)"),
  attach: z.strictObject({ dev: name, pt: name }).optional().describe("iommufd_device_attach to an IOAS or HWPT"),
  replace: z.strictObject({ dev: name, pt: name }).optional().describe("iommufd_device_replace"),
  detach: z.strictObject({ dev: name }).optional().describe("iommufd_device_detach"),
  unbind: z.strictObject({ dev: name }).optional().describe("closing the VFIO device fd: detach if attached, then iommufd_device_unbind (releases DMA ownership)"),
  ioas_map: z
    .strictObject({
      ioas: name,
      iova: sizeSchema.optional(),
      length: sizeSchema,
      flags: z.array(z.enum(MAP_FLAG_NAMES)).optional(),
      expect_iova: sizeSchema.optional().describe("the IOVA the map must land at (one the kernel allocated)"),
    })
    .optional()
    .describe("IOMMU_IOAS_MAP of fresh anonymous memory of the context's process (guest RAM); iova given: FIXED_IOVA; flags default [READABLE, WRITEABLE]"),
  ioas_unmap: z
    .strictObject({ ioas: name, iova: sizeSchema, length: sizeSchema, expect_unmapped: sizeSchema.optional().describe("the bytes the call must report unmapped") })
    .optional()
    .describe("IOMMU_IOAS_UNMAP"),
  ioas_copy: z
    .strictObject({
      src: name,
      src_iova: sizeSchema,
      dst: name,
      dst_iova: sizeSchema.optional(),
      length: sizeSchema,
      flags: z.array(z.enum(MAP_FLAG_NAMES)).optional(),
      expect_iova: sizeSchema.optional().describe("the IOVA the copy must land at (one the kernel allocated)"),
    })
    .optional()
    .describe("IOMMU_IOAS_COPY of [src_iova, +length) of IOAS src into IOAS dst (dst_iova given: FIXED_IOVA); flags default [READABLE, WRITEABLE]"),
  hwpt_alloc: z
    .strictObject({ dev: name, pt: name, as: name, flags: z.array(z.enum(HWPT_FLAG_NAMES)).optional() })
    .optional()
    .describe("IOMMU_HWPT_ALLOC of a paging HWPT for device dev on IOAS pt; the HWPT gets the name"),
  access_create: z
    .strictObject({ ioas: name, as: name })
    .optional()
    .describe("an in-kernel access (an emulated-IOMMU VFIO driver's: iommufd_access_create with needs_pin_pages, attached to the IOAS); its unmap callback unpins what it pinned in the range"),
  access_pin: z
    .strictObject({ access: name, iova: sizeSchema, length: sizeSchema, write: z.boolean().optional() })
    .optional()
    .describe("iommufd_access_pin_pages (write: IOMMUFD_ACCESS_RW_WRITE)"),
  access_unpin: z.strictObject({ access: name, iova: sizeSchema, length: sizeSchema }).optional().describe("iommufd_access_unpin_pages of a range the access pinned (EINVAL if it did not)"),
  access_rw: z
    .strictObject({
      access: name,
      iova: sizeSchema,
      length: sizeSchema,
      write: z.boolean().optional(),
      byte: z.number().int().min(0).max(255).optional().describe("a write writes this byte over the whole range (default 0)"),
      expect_bytes: z.number().int().min(0).max(255).optional().describe("a read must read this byte throughout"),
    })
    .optional()
    .describe("iommufd_access_rw: the access reads or writes the memory behind [iova, +length)"),
  access_destroy: z.strictObject({ access: name }).optional().describe("the driver lets go: its pins unpinned, then iommufd_access_destroy"),
  set_dirty_tracking: z.strictObject({ hwpt: name, enable: z.boolean() }).optional().describe("IOMMU_HWPT_SET_DIRTY_TRACKING"),
  test_dirty: z
    .strictObject({ hwpt: name, iova: sizeSchema, length: sizeSchema, page_size: sizeSchema.optional() })
    .optional()
    .describe("the selftest's IOMMU_TEST_OP_DIRTY on a mock domain: every mapped page of the range is marked written (as a device's DMA writes would; page_size default 4K)"),
  get_dirty_bitmap: z
    .strictObject({
      hwpt: name,
      iova: sizeSchema,
      length: sizeSchema,
      page_size: sizeSchema.optional(),
      no_clear: z.boolean().optional(),
      expect_dirty: z.array(sizeSchema).optional().describe("exactly the IOVAs (each the start of a page_size unit) the bitmap must report dirty"),
    })
    .optional()
    .describe("IOMMU_HWPT_GET_DIRTY_BITMAP of [iova, +length) in page_size units (default 4K); no_clear: IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR"),
  destroy: name.optional().describe("IOMMU_DESTROY of a named object"),
  close: z.literal(true).optional().describe("close every bound device (as unbind) and then /dev/iommu (iommufd_fops_release)"),
  expect_error: errno.optional().describe("the call must fail with this errno"),
});
export type IommufdCall = z.infer<typeof iommufdCallSchema>;
export const IOMMUFD_CALL_KEYS = [
  "ioas_alloc",
  "device_bind",
  "attach",
  "replace",
  "detach",
  "unbind",
  "ioas_map",
  "ioas_unmap",
  "ioas_copy",
  "hwpt_alloc",
  "access_create",
  "access_pin",
  "access_unpin",
  "access_rw",
  "access_destroy",
  "set_dirty_tracking",
  "test_dirty",
  "get_dirty_bitmap",
  "destroy",
  "close",
] as const;
export type IommufdCallKey = (typeof IOMMUFD_CALL_KEYS)[number];

export const iommufdEventSchema = z.strictObject({ ctx: name, calls: z.array(iommufdCallSchema).min(1) });
export type IommufdEventArg = z.infer<typeof iommufdEventSchema>;

/** The call key of a call (the static check has made sure there is exactly one). */
export function callKey(c: IommufdCall): IommufdCallKey {
  return IOMMUFD_CALL_KEYS.find((k) => c[k] !== undefined)!;
}

/** A context a scenario opened: the kernel's context and the names its calls bound to ids. */
export interface ScenarioIommufd {
  readonly ictx: IommufdCtx;
  readonly names: Map<string, number>;
  /** The accesses access_create made, by object id. */
  readonly accesses: Map<number, ScenarioAccess>;
}

/** The name a call binds to the id it returns (`as`), if any. */
export function callBinds(c: IommufdCall): string | undefined {
  return c.ioas_alloc?.as ?? c.device_bind?.as ?? c.hwpt_alloc?.as ?? c.access_create?.as;
}

/** The machine's contexts by name (a closed one stays, `ictx.closed` set). */
const CONTEXTS = new WeakMap<Machine, Map<string, ScenarioIommufd>>();

export function iommufdContexts(m: Machine): Map<string, ScenarioIommufd> {
  let c = CONTEXTS.get(m);
  if (c === undefined) CONTEXTS.set(m, (c = new Map()));
  return c;
}

function openCtx(m: Machine, ctx: string): ScenarioIommufd {
  const all = iommufdContexts(m);
  let s = all.get(ctx);
  if (s === undefined) {
    const env = iommufdEnv(m);
    s = { ictx: iommufdOpen(env, new Mm(env.phys, 1000 + all.size)), names: new Map(), accesses: new Map() };
    all.set(ctx, s);
  }
  return s;
}

function idOf(s: ScenarioIommufd, n: string): number | KError {
  const id = s.names.get(n);
  return id === undefined ? kerr("ENOENT", `no object is named ${n} in this context`) : id;
}

function deviceOf(s: ScenarioIommufd, n: string): IommufdDevice | KError {
  const id = idOf(s, n);
  return typeof id === "number" ? getDevice(s.ictx, id) : id;
}

/** Closing a VFIO device fd bound to the context: detach if attached, then unbind. */
// @kernel: vfio_iommufd_physical_unbind
function unbindDev(s: ScenarioIommufd, idev: IommufdDevice): void {
  if (idev.attached) iommufdDeviceDetach(s.ictx, idev);
  iommufdDeviceUnbind(s.ictx, idev);
}

function sizeOf(nr: number): number {
  return U.CMD_LAYOUTS.get(nr)!.sizeof;
}

function runCall(m: Machine, s: ScenarioIommufd, c: IommufdCall): 0 | KError {
  const ictx = s.ictx;
  if (ictx.closed) return kerr("EBADF", "the context is closed");
  if (c.ioas_alloc !== undefined) {
    const cmd = { size: sizeOf(U.IOMMUFD_CMD_IOAS_ALLOC), flags: 0, out_ioas_id: 0 };
    const rc = iommufdIoctl(ictx, U.IOMMUFD_CMD_IOAS_ALLOC, cmd);
    if (rc === 0) s.names.set(c.ioas_alloc.as, cmd.out_ioas_id);
    return rc;
  }
  if (c.device_bind !== undefined) {
    // @kernel: vfio_iommufd_physical_bind
    const rec = m.devices.get(c.device_bind.device)!;
    if (rec.dev.driver?.name !== VFIO_PCI && !(rec.dev.driver?.driverManagedDma ?? false)) {
      return kerr("EINVAL", `${rec.dev.name} is not bound to a VFIO driver: only a VFIO device fd binds to iommufd`);
    }
    const idev = iommufdDeviceBind(ictx, rec.dev);
    if (isErr(idev)) return idev;
    s.names.set(c.device_bind.as, idev.id);
    return 0;
  }
  if (c.attach !== undefined || c.replace !== undefined) {
    const a = (c.attach ?? c.replace)!;
    const idev = deviceOf(s, a.dev);
    if (isErr(idev)) return idev;
    const pt = idOf(s, a.pt);
    if (isErr(pt)) return pt;
    const r = c.attach !== undefined ? iommufdDeviceAttach(ictx, idev, pt) : iommufdDeviceReplace(ictx, idev, pt);
    return isErr(r) ? r : 0;
  }
  if (c.detach !== undefined || c.unbind !== undefined) {
    const idev = deviceOf(s, (c.detach ?? c.unbind)!.dev);
    if (isErr(idev)) return idev;
    if (c.detach !== undefined) {
      if (!idev.attached) return kerr("EINVAL", `${idev.dev.name} is not attached`);
      iommufdDeviceDetach(ictx, idev);
    } else {
      unbindDev(s, idev);
    }
    return 0;
  }
  if (c.ioas_map !== undefined) {
    const a = c.ioas_map;
    const ioas = idOf(s, a.ioas);
    if (isErr(ioas)) return ioas;
    const length = parseSize(a.length);
    const flagNames = a.flags ?? MAP_FLAG_NAMES;
    let flags = 0;
    for (const f of flagNames) flags |= f === "READABLE" ? U.IOMMU_IOAS_MAP_READABLE : U.IOMMU_IOAS_MAP_WRITEABLE;
    if (a.iova !== undefined) flags |= U.IOMMU_IOAS_MAP_FIXED_IOVA;
    const mm = ictx.mm;
    const userVa = mm.mmap(length);
    const cmd = { size: sizeOf(U.IOMMUFD_CMD_IOAS_MAP), flags, ioas_id: ioas, __reserved: 0, user_va: userVa, length, iova: a.iova === undefined ? 0 : parseSize(a.iova) };
    const rc = iommufdIoctl(ictx, U.IOMMUFD_CMD_IOAS_MAP, cmd);
    if (rc !== 0) mm.munmap(userVa, length);
    if (rc === 0 && a.expect_iova !== undefined && cmd.iova !== parseSize(a.expect_iova)) return kerr("EBADE", `the map landed at 0x${cmd.iova.toString(16)}, not 0x${parseSize(a.expect_iova).toString(16)}`);
    return rc;
  }
  if (c.ioas_unmap !== undefined) {
    const a = c.ioas_unmap;
    const ioas = idOf(s, a.ioas);
    if (isErr(ioas)) return ioas;
    const cmd = { size: sizeOf(U.IOMMUFD_CMD_IOAS_UNMAP), ioas_id: ioas, iova: parseSize(a.iova), length: parseSize(a.length) };
    const o = ictx.get(ioas, "IOAS");
    const before = o instanceof IommufdIoas ? o.iopt.areaStore.size : 0;
    const rc = iommufdIoctl(ictx, U.IOMMUFD_CMD_IOAS_UNMAP, cmd);
    if (rc !== 0) {
      const gone = o instanceof IommufdIoas ? before - o.iopt.areaStore.size : 0;
      if (gone > 0) m.k.effect("ioas-unmap-keeps-earlier-unmaps", a.ioas, `IOAS_UNMAP failed with ${rc.errno} after it had unmapped ${gone} area(s) of the range; they stay unmapped`);
      return rc;
    }
    if (a.expect_unmapped !== undefined && cmd.length !== parseSize(a.expect_unmapped)) return kerr("EBADE", `the unmap reported 0x${cmd.length.toString(16)} bytes, not 0x${parseSize(a.expect_unmapped).toString(16)}`);
    return 0;
  }
  const more = runMoreCall(s, c);
  if (more !== null) return more;
  if (c.destroy !== undefined) {
    const id = idOf(s, c.destroy);
    if (isErr(id)) return id;
    const rc = iommufdIoctl(ictx, U.IOMMUFD_CMD_DESTROY, { size: sizeOf(U.IOMMUFD_CMD_DESTROY), id });
    if (rc === 0) s.names.delete(c.destroy);
    return rc;
  }
  // close: the drivers let go of their accesses and devices, then /dev/iommu is released
  for (const sa of [...s.accesses.values()]) accessRelease(s, sa);
  for (const o of ictx.live()) if (o instanceof IommufdDevice) unbindDev(s, o);
  iommufdClose(ictx);
  s.names.clear();
  return 0;
}

/**
 * Runs the calls in order; the first whose outcome is not the one it
 * states ends the event: its errno, or EBADE for a call that succeeded
 * where expect_error said it fails (the calls before it stay done, as
 * separate ioctls would).
 */
export function runIommufd(m: Machine, a: IommufdEventArg): 0 | KError {
  const s = openCtx(m, a.ctx);
  for (let i = 0; i < a.calls.length; i++) {
    const c = a.calls[i]!;
    const rc = runCall(m, s, c);
    const what = `calls[${i}] ${callKey(c)}`;
    if (c.expect_error === undefined) {
      if (rc !== 0) return kerr(rc.errno, `${what}: ${rc.message}`);
    } else if (rc === 0) {
      return kerr("EBADE", `${what} succeeded, but its expect_error says ${c.expect_error}`);
    } else if (rc.errno !== c.expect_error) {
      return kerr(rc.errno, `${what}: ${rc.message} (its expect_error says ${c.expect_error})`);
    }
  }
  return 0;
}

/** vfio-pci takes the device: its kernel driver (if any, other than vfio-pci) is unbound, then vfio-pci is bound. */
export function* vfioBind(m: Machine, device: string): Path<0 | KError> {
  const drv = m.drivers.get(VFIO_PCI);
  if (drv === undefined) return kerr("ENODEV", `no driver ${VFIO_PCI} in the scenario`);
  const dev = m.devices.get(device)!.dev;
  if (dev.driver === drv) return 0;
  if (!drv.registered) return kerr("ENODEV", `driver ${VFIO_PCI} is not registered`);
  if (!dev.registered) return kerr("ENODEV", `${device} is not added`);
  if (dev.driver !== null) yield* deviceReleaseDriver(m.dc, dev);
  const rc = yield* deviceDriverAttach(m.dc, drv, dev);
  yield* flushDeferredProbeWork(m.dc);
  return rc;
}
