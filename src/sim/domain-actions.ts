/**
 * Scenario events that act on domains, attachments, PASIDs and DMA
 * ownership, as the kernel entry points a caller (VFIO, iommufd, a driver)
 * would use. Domains are named by the scenario or referenced by model id;
 * a reference to no live domain fails with ENOENT and changes nothing.
 */
import type { Path } from "../base/path.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { iommuAttachDevice, iommuAttachGroup, iommuDetachDevice, iommuDetachGroup } from "../iommu/attach.ts";
import { devGroup } from "../iommu/dev-iommu.ts";
import { iommuDomainFree } from "../iommu/domain-alloc.ts";
import type { IommuDomain } from "../iommu/domain.ts";
import type { IommuGroup } from "../iommu/group.ts";
import { iommuGroupStoreType } from "../iommu/group-sysfs.ts";
import {
  iommuDeviceClaimDmaOwner,
  iommuDeviceReleaseDmaOwner,
  iommuGroupClaimDmaOwner,
  iommuGroupReleaseDmaOwner,
} from "../iommu/ownership.ts";
import { iommuAttachDevicePasid, iommuDetachDevicePasid, iommuReplaceDevicePasid } from "../iommu/pasid.ts";
import { isErr } from "../lib/errno.ts";
import type { Machine } from "./machine.ts";

/** The live domain a scenario reference names. */
export function findDomain(m: Machine, ref: string | number): IommuDomain | KError {
  if (typeof ref === "string") {
    const d = m.userDomains.get(ref);
    if (d === undefined || d.freed) return kerr("ENOENT", `no live domain named '${ref}'`);
    return d;
  }
  for (const d of m.k.domains) if (d.id === ref && !d.freed) return d;
  return kerr("ENOENT", `no live domain with id ${ref}`);
}

/**
 * Model rule (docs/model.md): a group's default and blocking domains live and die with that group
 * (iommu_deinit_device and a new default domain free them), so attaching one to another group, or
 * at a PASID of another group's device, is refused: the kernel would go on using it after the free.
 */
function anotherGroupsDomain(m: Machine, d: IommuDomain, target: IommuGroup | null): KError | null {
  if (d.isStatic) return null;
  for (const g of m.k.groups) {
    if (g === target || (g.defaultDomain !== d && g.blockingDomain !== d)) continue;
    return kerr("EBUSY", `${d} is ${g}'s ${g.defaultDomain === d ? "default" : "blocking"} domain: it is freed with that group, so no other group may use it`);
  }
  return null;
}

function groupOf(m: Machine, device: string): IommuGroup | KError {
  const dev = m.devices.get(device)!.dev;
  return devGroup(dev) ?? kerr("ENODEV", `${device} is not in an IOMMU group`);
}

export function domainAlloc(m: Machine, name: string, device: string): 0 | KError {
  const existing = m.userDomains.get(name);
  if (existing !== undefined && !existing.freed) return kerr("EEXIST", `a domain named '${name}' is already allocated`);
  const dev = m.devices.get(device)!.dev;
  const strategy = m.k.strategy.domainAllocation;
  const d = strategy.alloc(m.k, dev);
  if (isErr(d)) return d;
  m.userDomains.set(name, d);
  if (m.k.tracing) m.k.note("domain_alloc", device, `${strategy.name}: ${d} ${d.iommu !== null ? `finalised for ${d.iommu.name}` : "finalised for no instance yet (its first attach will)"}`);
  return 0;
}

/** Domains some group or device still uses cannot be freed (the kernel would use-after-free). */
function inUse(m: Machine, d: IommuDomain, except: IommuGroup | null = null): string | null {
  for (const g of m.k.groups) {
    if (g === except) continue;
    if (g.domain === d || g.defaultDomain === d || g.blockingDomain === d) return `${g}`;
    if (g.hasPasids) for (const [pasid, e] of g.pasidArray) if (e.domain === d) return `PASID ${pasid} of ${g}`;
  }
  return null;
}

export function domainFree(m: Machine, ref: string | number): 0 | KError {
  const d = findDomain(m, ref);
  if (isErr(d)) return d;
  if (d.isStatic) return kerr("EINVAL", `${d} is a driver's static domain`);
  const user = inUse(m, d);
  if (user !== null) return kerr("EBUSY", `${d} is still attached to ${user}`);
  iommuDomainFree(m.k, d);
  return 0;
}

export function* attachGroup(m: Machine, ref: string | number, device: string): Path<0 | KError> {
  const d = findDomain(m, ref);
  if (isErr(d)) return d;
  const g = groupOf(m, device);
  if (isErr(g)) return g;
  const theirs = anotherGroupsDomain(m, d, g);
  if (theirs !== null) return theirs;
  return yield* iommuAttachGroup(m.k, d, g);
}

export function* attachDevice(m: Machine, ref: string | number, device: string): Path<0 | KError> {
  const d = findDomain(m, ref);
  if (isErr(d)) return d;
  const dev = m.devices.get(device)!.dev;
  const theirs = anotherGroupsDomain(m, d, devGroup(dev));
  if (theirs !== null) return theirs;
  return yield* iommuAttachDevice(m.k, d, dev);
}

export function* detach(m: Machine, device: string, ref: string | number | undefined): Path<0 | KError> {
  if (ref === undefined) {
    const g = groupOf(m, device);
    if (isErr(g)) return g;
    return yield* iommuDetachGroup(m.k, g);
  }
  const d = findDomain(m, ref);
  if (isErr(d)) return d;
  return yield* iommuDetachDevice(m.k, d, m.devices.get(device)!.dev);
}

export function* pasidOp(m: Machine, op: "attach" | "detach" | "replace", ref: string | number, device: string, pasid: number): Path<0 | KError> {
  const d = findDomain(m, ref);
  if (isErr(d)) return d;
  const dev = m.devices.get(device)!.dev;
  if (op !== "detach") {
    const theirs = anotherGroupsDomain(m, d, devGroup(dev));
    if (theirs !== null) return theirs;
  }
  if (op === "attach") return yield* iommuAttachDevicePasid(m.k, d, dev, pasid);
  if (op === "detach") return yield* iommuDetachDevicePasid(m.k, d, dev, pasid);
  return yield* iommuReplaceDevicePasid(m.k, d, dev, pasid);
}

function cookie(m: Machine, owner: string): { name: string } {
  let c = m.owners.get(owner);
  if (c === undefined) {
    c = { name: owner };
    m.owners.set(owner, c);
  }
  return c;
}

export function* claimDmaOwner(m: Machine, device: string, owner: string, group: boolean): Path<0 | KError> {
  const dev = m.devices.get(device)!.dev;
  if (!group) return yield* iommuDeviceClaimDmaOwner(m.k, dev, cookie(m, owner));
  const g = groupOf(m, device);
  if (isErr(g)) return g;
  return yield* iommuGroupClaimDmaOwner(m.k, g, cookie(m, owner));
}

export function* releaseDmaOwner(m: Machine, device: string, group: boolean): Path<0 | KError> {
  const dev = m.devices.get(device)!.dev;
  const g = devGroup(dev);
  if (g === null) return kerr("ENODEV", `${device} is not in an IOMMU group`);
  // The kernel WARNs and ignores a release of ownership nobody holds; the model refuses it as an event.
  if (g.owner === null) return kerr("EINVAL", `${g} is not owned by user space`);
  if (group) yield* iommuGroupReleaseDmaOwner(m.k, g);
  else yield* iommuDeviceReleaseDmaOwner(m.k, dev);
  return 0;
}

export function* groupType(m: Machine, device: string, type: string): Path<0 | KError> {
  const g = groupOf(m, device);
  if (isErr(g)) return g;
  return yield* iommuGroupStoreType(m.k, g, type);
}
