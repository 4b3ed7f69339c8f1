/**
 * The rules the model checks after every step (reference §17 numbers them;
 * DESIGN.md "Invariants are first-class"). Checkers live apart from the
 * model and only read its state. A violation names the rule and says what
 * is wrong in a sentence.
 */
import { devGroup, devIommu, devIommuOps } from "../iommu/dev-iommu.ts";
import { domainIommuOpsCompatible } from "../iommu/domain-alloc.ts";
import { IOMMU_DOMAIN_BLOCKED } from "../iommu/domain.ts";
import { iommuFwspecOps } from "../iommu/fwspec.ts";
import type { Machine } from "./machine.ts";

export interface Violation {
  rule: string;
  message: string;
}

export function formatViolation(v: Violation): string {
  return `${v.rule}: ${v.message}`;
}

export function checkInvariants(m: Machine): Violation[] {
  const out: Violation[] = [];
  const bad = (rule: string, message: string) => out.push({ rule, message });
  const k = m.k;

  // I1: every listed instance has ops.
  for (const it of k.deviceList) if (it.ops === null) bad("I1 instance-ops", `${it.name} is on iommu_device_list without ops`);

  const memberOf = new Map<unknown, number>();
  for (const g of k.groups) for (const gd of g.devices) memberOf.set(gd.dev, (memberOf.get(gd.dev) ?? 0) + 1);

  for (const { dev } of m.devices.values()) {
    const p = devIommu(dev);
    const g = devGroup(dev);
    const iommuDev = p?.iommuDev ?? null;
    // I3: nothing points at an instance that is not registered.
    if (iommuDev !== null && !iommuDev.listed) {
      bad("I3 no-dangling-instance", `${dev.name} still points at ${iommuDev.name}, which is not registered`);
    }
    // I4: probed <=> in exactly one group, the one dev->iommu_group names.
    const n = memberOf.get(dev) ?? 0;
    if (iommuDev !== null && (g === null || n !== 1 || !g.devices.some((gd) => gd.dev === dev))) {
      bad("I4 group-membership", `${dev.name} has an IOMMU but is in ${n} groups (iommu_group ${g?.id ?? "NULL"})`);
    }
    if (iommuDev === null && (g !== null || n !== 0)) {
      bad("I4 group-membership", `${dev.name} has no IOMMU but is in a group`);
    }
    // I8: a dev_iommu without an instance is a fwspec waiting to be probed, nothing else.
    if (p !== null && iommuDev === null && p.fwspec === null) {
      bad("I8 clean-failure", `${dev.name} keeps a dev_iommu with neither fwspec nor IOMMU (a failed probe did not clean up)`);
    }
    // I6: the fwspec resolves to the ops the device was probed with.
    if (p?.fwspec && iommuDev !== null && iommuDev.listed) {
      const ops = iommuFwspecOps(k, p.fwspec);
      if (ops !== iommuDev.ops) bad("I6 fwspec-ops", `${dev.name}'s fwspec resolves to ${ops?.name ?? "no ops"}, but it was probed with ${iommuDev.ops?.name}`);
    }
    // A fwspec names a registered instance, or its device waits on the deferred list.
    if (p?.fwspec && iommuDev === null && k.firstByFwnode(p.fwspec.iommuFwnode) === null && !dev.deferredProbe) {
      bad("I-fwspec-deferred", `${dev.name}'s fwspec names ${p.fwspec.iommuFwnode?.name}, which is not registered, and it is not deferred`);
    }
  }

  const groupIds = new Set<number>();
  for (const g of k.groups) {
    // I10: ids unique among live groups.
    if (groupIds.has(g.id)) bad("I10 group-id", `two live groups have id ${g.id}`);
    groupIds.add(g.id);
    const devs = g.devices.map((gd) => gd.dev);
    // I12: each member holds a reference.
    if (g.refcount < devs.length) bad("I12 group-refcount", `group ${g.id} has ${devs.length} members but ${g.refcount} references`);
    if (devs.length === 0) {
      // I11: an empty group holds no domains and no owner.
      if (g.defaultDomain !== null || g.blockingDomain !== null || g.domain !== null || g.ownerCnt !== 0) {
        bad("I11 empty-group", `group ${g.id} has no devices but still holds domains or owners`);
      }
      continue;
    }
    // I9: members share ops and instance.
    const ops0 = devIommuOps(devs[0]!);
    const inst0 = devIommu(devs[0]!)?.iommuDev ?? null;
    for (const d of devs.slice(1)) {
      if (devIommuOps(d) !== ops0) bad("I9 group-ops", `group ${g.id} mixes ${ops0?.name} (${devs[0]!.name}) and ${devIommuOps(d)?.name} (${d.name})`);
      else if ((devIommu(d)?.iommuDev ?? null) !== inst0) {
        bad("I9 group-ops", `group ${g.id} mixes instances ${inst0?.name} (${devs[0]!.name}) and ${devIommu(d)?.iommuDev?.name} (${d.name})`);
      }
    }
    // I13: a default domain implies a current domain.
    if (g.defaultDomain !== null && g.domain === null) bad("I13 domain-set", `group ${g.id} has a default domain but no domain attached`);
    const dom = g.domain;
    if (dom !== null && ops0 !== null) {
      // I17: the current domain is one the group's driver can use, finalised for its instance.
      if (!domainIommuOpsCompatible(ops0, dom)) bad("I17 domain-compatible", `group ${g.id} is attached to ${dom}, which ${ops0.name} did not allocate`);
      else if (dom.iommu !== null && !dom.spansInstances && inst0 !== null && dom.iommu !== inst0) {
        bad("I17 domain-compatible", `group ${g.id} (behind ${inst0.name}) is attached to ${dom}, finalised for ${dom.iommu.name}`);
      }
    }
    // I16: each member translates through the group's domain (unless its attach is deferred).
    for (const d of devs) {
      const p = devIommu(d)!;
      if (p.attachDeferred && dom === g.defaultDomain) continue;
      if (dom !== null && p.domain !== dom) {
        bad("I16 member-domain", `${d.name} translates through ${p.domain ?? "no domain"}, but group ${g.id} is attached to ${dom}`);
      }
      // I18: a device that needs its direct mappings is never blocked.
      if (p.requireDirect && p.domain !== null && (p.domain.type === IOMMU_DOMAIN_BLOCKED || p.domain === g.blockingDomain)) {
        bad("I18 require-direct", `${d.name} needs its direct mappings but is attached to ${p.domain}`);
      }
    }
    // I22: an owner cookie means at least one claim.
    if (g.owner !== null && g.ownerCnt < 1) bad("I22 owner-count", `group ${g.id} has an owner but owner_cnt ${g.ownerCnt}`);
    // I14 / I15: kernel DMA users sit on the default domain; a user owner never does.
    if (g.owner === null && g.ownerCnt > 0 && dom !== g.defaultDomain) {
      bad("I14 kernel-dma-on-default", `group ${g.id} has ${g.ownerCnt} kernel DMA users but is attached to ${dom ?? "no domain"}, not its default domain`);
    }
    if (g.owner !== null && dom === g.defaultDomain && g.defaultDomain !== g.blockingDomain) {
      bad("I15 user-not-on-default", `group ${g.id} is owned by user space but still on its default domain`);
    }
    // I23 / I24: owner_cnt counts the bound DMA-API drivers; they never coexist with a user owner.
    const dmaUsers = devs.filter((d) => d.bound && d.driver !== null && !d.driver.driverManagedDma);
    if (g.owner !== null && dmaUsers.length > 0) {
      bad("I23 user-vs-kernel", `group ${g.id} is user-owned while ${dmaUsers.map((d) => d.name).join(", ")} use the DMA API`);
    }
    if (g.owner === null && g.ownerCnt !== dmaUsers.length) {
      bad(
        "I24 owner-count",
        `group ${g.id} counts ${g.ownerCnt} kernel DMA users, but ${dmaUsers.length} bound drivers use the DMA API (${dmaUsers.map((d) => d.name).join(", ") || "none"})`,
      );
    }
    // A group with a kernel DMA user has a default domain.
    if (g.ownerCnt > 0 && g.owner === null && g.defaultDomain === null) {
      bad("I-default-domain", `group ${g.id} has kernel DMA users but no default domain`);
    }
  }

  // Isolation: a device's DMA reaches only what its current domain maps (a lazy domain's
  // flush-queue window excepted, which the DMA layer reports as a finding instead).
  for (const b of m.isolationBreaches) bad("I-isolation", b);

  // I33: between steps no path holds a lock.
  const locks = [k.probeLock, m.dc.deferredProbeMutex, ...[...k.groups].map((g) => g.mutex), ...[...m.devices.values()].map((r) => r.dev.lock)];
  for (const l of locks) if (l.holder !== null) bad("I33 lock-held", `${l.lockName} is still held by ${l.holder.name}`);
  return out;
}
