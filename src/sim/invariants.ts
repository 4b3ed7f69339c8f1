/**
 * The rules the model checks after every step (reference §17 numbers them;
 * DESIGN.md "Invariants are first-class"). Checkers live apart from the
 * model and only read its state. Each rule here is one the kernel never
 * breaks: a state it refuses (with an errno) or cannot reach, so a
 * violation is a model bug. States the kernel reaches with a WARN are
 * `warnings` (the model warns where the kernel does), and states it allows
 * silently are neither; docs/invariants.md classifies every rule by the
 * kernel function that enforces it.
 */
import { Device } from "../base/device.ts";
import type { Mutex } from "../base/mutex.ts";
import { devGroup, devIommu, devIommuOps } from "../iommu/dev-iommu.ts";
import { domainIommuOpsCompatible } from "../iommu/domain-alloc.ts";
import { domainTypeName, IOMMU_DOMAIN_BLOCKED, type IommuDomain } from "../iommu/domain.ts";
import { iommuFwspecOps } from "../iommu/fwspec.ts";
import { IommuGroup } from "../iommu/group.ts";
import type { IommuDevice } from "../iommu/iommu-device.ts";
import type { Machine } from "./machine.ts";

/** Every rule id the checker can emit; docs/invariants.md has a section for each (a test checks). */
export const INVARIANT_RULES = [
  "I1 instance-ops",
  "I3 no-dangling-instance",
  "I4 group-membership",
  "I6 fwspec-ops",
  "I8 clean-failure",
  "I-fwspec-deferred",
  "I9 group-ops",
  "I10 group-id",
  "I11 empty-group",
  "I12 group-refcount",
  "I13 domain-set",
  "I16 member-domain",
  "I17 domain-compatible",
  "I18 require-direct",
  "I22 owner-count",
  "I23 user-vs-kernel",
  "I24 owner-count",
  "I-default-domain",
  "I-isolation",
  "I33 lock-held",
] as const;

export type InvariantRule = (typeof INVARIANT_RULES)[number];

export interface Violation {
  rule: InvariantRule;
  message: string;
  /**
   * The state is one the modelled kernel reaches only through a kernel BUG it hit (recorded in the
   * diagnostics' `bugs`), where it would have stopped: I23 under dma_ownership=notifier. Still a
   * violation (the issue asks the invariant to catch it); the fuzzer counts these apart.
   */
  afterKernelBug?: true;
}

export function formatViolation(v: Violation): string {
  return `${v.rule}: ${v.message}`;
}

function names(devs: readonly Device[]): string {
  return devs.length === 0 ? "none" : devs.map((d) => d.name).join(", ");
}

/** "group 3 [a, b]": a group by its sysfs id and its members. */
function groupName(g: IommuGroup): string {
  return `group ${g.id} [${names(g.devices.map((gd) => gd.dev))}]`;
}

/**
 * A device whose bound driver took DMA ownership at bind: a driver that is
 * not driver_managed_dma, on a bus whose dma_configure calls
 * iommu_device_use_default_domain (platform, PCI, AMBA; not the iommufd
 * mock bus, which has no dma_configure).
 */
function kernelDmaUser(d: Device): boolean {
  return d.bound && d.driver !== null && !d.driver.driverManagedDma && d.bus.dmaConfigure !== null;
}

/**
 * What one step may have changed: the devices and groups it touched (took
 * the lock of, or probed, released or queued for deferral; see `touch` in
 * base/path.ts) and the locks it took. Objects a step did not touch keep the
 * state they were checked in, so checking the touched ones after each step
 * finds what a whole check would (test/sim/invariants-incremental.test.ts
 * checks that every object whose checked state changed was touched).
 */
export interface InvariantScope {
  readonly devices: readonly Device[];
  readonly groups: readonly IommuGroup[];
  readonly locks: readonly Mutex[];
}

/** The scope of a step from the locks and objects it touched. */
export function scopeOfTouched(touched: readonly Mutex[]): InvariantScope {
  const devices: Device[] = [];
  const groups: IommuGroup[] = [];
  for (const t of touched) {
    if (t instanceof Device) devices.push(t);
    else if (t instanceof IommuGroup) groups.push(t);
  }
  return { devices, groups, locks: touched };
}

/**
 * Checks the rules on the whole machine, or on what one step touched
 * (`scope`): its devices, their groups and the groups it locked, and the
 * locks it took, plus the machine-wide rules that cost nothing (the
 * instance list, isolation breaches, the global locks).
 */
export function checkInvariants(m: Machine, scope?: InvariantScope): Violation[] {
  const out: Violation[] = [];
  const bad = (rule: InvariantRule, message: string) => out.push({ rule, message });
  const k = m.k;
  const ownership = k.strategy.dmaOwnership;
  const userName = new Map<IommuDomain, string>();
  for (const [n, d] of m.userDomains) userName.set(d, n);
  /** "domain 5 'd0' (unmanaged)": the scenario's name where it gave one. */
  const dom = (d: IommuDomain | null): string => {
    if (d === null) return "no domain";
    const n = userName.get(d);
    return n === undefined ? `${d}` : `domain ${d.id} '${n}' (${domainTypeName(d.type)})`;
  };

  // I1: an instance joins iommu_device_list only with its ops set.
  for (const it of k.deviceList) {
    if (it.ops === null) bad("I1 instance-ops", `${it.name} is on iommu_device_list without ops (iommu_device_register sets them before listing it)`);
  }

  // The groups to check: all, or those the step locked plus the groups of the devices it touched.
  let groups: IommuGroup[];
  if (scope === undefined) {
    groups = [...k.groups];
  } else {
    const set = new Set<IommuGroup>();
    for (const g of scope.groups) if (k.groups.has(g)) set.add(g);
    for (const d of scope.devices) {
      const g = devGroup(d);
      if (g !== null && k.groups.has(g)) set.add(g);
    }
    groups = [...set];
  }

  // I4, the groups' side: every member names the group that lists it, and is listed once. A device
  // in two groups names at most one of them, so the other finds it.
  let namingMembers = 0;
  for (const g of groups) {
    const list = g.devices;
    for (let i = 0; i < list.length; i++) {
      const d = list[i]!.dev;
      if (devGroup(d) === g) namingMembers++;
      else {
        const other = devGroup(d);
        bad("I4 group-membership", `${d.name} is listed by ${groupName(g)} but its iommu_group is ${other === null ? "NULL" : groupName(other)}; a probed device is in exactly one group`);
      }
    }
    if (list.length > 1 && listsTwice(list)) {
      bad("I4 group-membership", `${groupName(g)} lists a device more than once (a device joins its group once, in __iommu_probe_device)`);
    }
  }
  // Whether a device's group lists it: in a step's scope, look; for the whole machine, count, and
  // look only when the counts differ.
  const listed = scope === undefined ? null : new Set<Device>();
  if (listed !== null) for (const g of groups) for (const gd of g.devices) listed.add(gd.dev);
  let namingDevices = 0;
  const unlisted = (dev: Device, g: IommuGroup, iommuDev: IommuDevice) =>
    bad("I4 group-membership", `${dev.name} is probed against ${iommuDev.name} and its iommu_group is ${groupName(g)}, which does not list it; a probed device is in exactly one group`);

  const checkDevice = (dev: Device) => {
    const p = devIommu(dev);
    const g = devGroup(dev);
    const iommuDev = p?.iommuDev ?? null;
    const onIommuBus = k.iommuBuses.includes(dev.bus);
    // I3: unregistering releases every device of iommu_buses[] it served (the mock bus is not scanned).
    if (iommuDev !== null && !iommuDev.listed && onIommuBus) {
      bad(
        "I3 no-dangling-instance",
        `${dev.name} (bus ${dev.bus.name}) still points at ${iommuDev.name}, which is not registered (iommu_device_unregister releases every device of iommu_buses[] it served)`,
      );
    }
    // I4: probed <=> in exactly one group, the one dev->iommu_group names.
    if (iommuDev !== null) {
      if (g === null) bad("I4 group-membership", `${dev.name} is probed against ${iommuDev.name} but its iommu_group is NULL; a probed device is in exactly one group`);
      else if (g.released) bad("I4 group-membership", `${dev.name} is probed against ${iommuDev.name} but its iommu_group ${g.id} was released`);
      else if (listed === null) namingDevices++;
      else if (!listed.has(dev)) unlisted(dev, g, iommuDev);
    } else if (g !== null) {
      bad("I4 group-membership", `${dev.name} has no IOMMU but its iommu_group is ${groupName(g)}; only a probed device is in a group`);
    }
    // I8: a dev_iommu without an instance is a fwspec waiting to be probed, nothing else.
    if (p !== null && iommuDev === null && p.fwspec === null) {
      bad("I8 clean-failure", `${dev.name} keeps a dev_iommu with neither fwspec nor IOMMU (a failed probe frees dev->iommu: iommu_init_device)`);
    }
    // I6: a live fwspec naming a firmware node resolves to the ops the device was probed with. A NULL
    // fwnode resolves to the first listed instance without one, which registrations change silently.
    if (p?.fwspec && p.fwspec.iommuFwnode !== null && iommuDev !== null && iommuDev.listed) {
      const ops = iommuFwspecOps(k, p.fwspec);
      if (ops !== null && ops !== iommuDev.ops) {
        bad(
          "I6 fwspec-ops",
          `${dev.name}'s fwspec (${p.fwspec.iommuFwnode?.name ?? "NULL fwnode"}) resolves to ${ops.name}, but it was probed with ${iommuDev.name}'s ${iommuDev.ops?.name ?? "missing ops"} (probe takes the ops from the fwspec)`,
        );
      }
    }
    // On the IOMMU buses a fwspec names a registered instance (iommu_fwspec_init defers otherwise), or its
    // device waits on the deferred list. The mock bus is not scanned, and loses its notifier with the instance.
    // Not under fwspec-carries-ops (up to v6.10): a failed parse leaves its fwspec, waiting or not.
    if (p?.fwspec && iommuDev === null && onIommuBus && !k.strategy.fwspecOps.keepsFailedParse && k.firstByFwnode(p.fwspec.iommuFwnode) === null && !dev.deferredProbe) {
      bad(
        "I-fwspec-deferred",
        `${dev.name}'s fwspec names ${p.fwspec.iommuFwnode?.name ?? "a NULL fwnode"}, which no registered instance has, and ${dev.name} is not on the deferred-probe list`,
      );
    }
  };
  if (scope !== undefined) for (const dev of scope.devices) checkDevice(dev);
  else for (const r of m.devices.values()) checkDevice(r.dev);
  if (listed === null && namingDevices !== namingMembers) {
    // Some probed device's group does not list it: find which.
    const all = new Set<Device>();
    for (const g of groups) for (const gd of g.devices) all.add(gd.dev);
    for (const r of m.devices.values()) {
      const p = devIommu(r.dev);
      const g = devGroup(r.dev);
      if (p?.iommuDev != null && g !== null && !g.released && !all.has(r.dev)) unlisted(r.dev, g, p.iommuDev);
    }
  }

  // I10: ids unique among live groups (ids come from one ida; a duplicate could only come from the
  // allocator, so the whole-machine checks after boot and at the end look for one).
  if (scope === undefined) {
    let max = 0;
    for (const g of groups) if (g.id > max) max = g.id;
    const seen = new Uint8Array(max + 1);
    for (const g of groups) {
      if (seen[g.id] === 1) bad("I10 group-id", `two live groups have id ${g.id} (iommu_group_alloc takes the lowest free id from the ida)`);
      seen[g.id] = 1;
    }
  }

  for (const g of groups) {
    const list = g.devices;
    const n = list.length;
    // I12: each member holds a reference.
    if (g.refcount < n) bad("I12 group-refcount", `${groupName(g)} has ${n} members but ${g.refcount} references (each member holds one)`);
    if (n === 0) {
      // I11: the last member's release frees the group's domains (iommu_deinit_device); owner_cnt
      // left non-zero there is the WARN of __iommu_group_free_device.
      if (g.defaultDomain !== null || g.blockingDomain !== null || g.domain !== null) {
        bad(
          "I11 empty-group",
          `group ${g.id} has no devices but still holds default ${dom(g.defaultDomain)}, blocking ${dom(g.blockingDomain)}, current ${dom(g.domain)} (iommu_deinit_device frees them with the last member)`,
        );
      }
      if (!g.ownerCntStale && (g.ownerCnt !== 0 || g.owner !== null)) {
        bad("I11 empty-group", `group ${g.id} has no devices but owner_cnt ${g.ownerCnt}${g.owner !== null ? " and a user owner" : ""}, with no WARN from __iommu_group_free_device`);
      }
      continue;
    }
    // I9: members share ops (the model refuses the join the kernel would misdrive; instances may differ).
    const first = list[0]!.dev;
    const ops0 = devIommuOps(first);
    const inst0 = devIommu(first)?.iommuDev ?? null;
    for (let i = 1; i < n; i++) {
      const d = list[i]!.dev;
      const ops = devIommuOps(d);
      if (ops !== ops0) {
        bad(
          "I9 group-ops",
          `${groupName(g)} mixes ${ops0?.name ?? "no ops"} (${first.name}) and ${ops?.name ?? "no ops"} (${d.name}); a group's members share one driver's ops (the model refuses the join in __iommu_probe_device)`,
        );
      }
    }
    // I13: a default domain implies a current domain.
    if (g.defaultDomain !== null && g.domain === null) {
      bad("I13 domain-set", `${groupName(g)} has default ${dom(g.defaultDomain)} but no current domain (iommu_setup_default_domain attaches the default domain it installs)`);
    }
    const cur = g.domain;
    if (cur !== null && ops0 !== null) {
      // I17: the current domain is one the group's driver can use, finalised for its instance.
      if (!domainIommuOpsCompatible(ops0, cur)) {
        bad("I17 domain-compatible", `${groupName(g)} is attached to ${dom(cur)}, which ${ops0.name} did not allocate (__iommu_attach_group refuses it with EINVAL)`);
      } else if (!g.domainWarned && cur.iommu !== null && !cur.spansInstances && inst0 !== null && cur.iommu !== inst0) {
        bad("I17 domain-compatible", `${groupName(g)} (behind ${inst0.name}) is attached to ${dom(cur)}, finalised for ${cur.iommu.name} (the driver's attach_dev refuses it)`);
      }
    }
    // I16: each member translates through the group's domain (unless its attach is deferred, or a
    // switch the core cannot fail failed for it: see IommuGroup.domainWarned).
    let dmaUsers = 0;
    for (let i = 0; i < n; i++) {
      const d = list[i]!.dev;
      if (kernelDmaUser(d)) dmaUsers++;
      const p = devIommu(d);
      if (p === null) continue; // I4 reported it
      if (p.attachDeferred && cur === g.defaultDomain) continue;
      if (!g.domainWarned && cur !== null && p.domain !== cur) {
        bad("I16 member-domain", `${d.name} translates through ${dom(p.domain)}, but its ${groupName(g)} is attached to ${dom(cur)} (a group switch moves every member or none)`);
      }
      // I18: a device that needs its direct mappings is never blocked.
      if (p.requireDirect && p.domain !== null && (p.domain.type === IOMMU_DOMAIN_BLOCKED || p.domain === g.blockingDomain)) {
        bad("I18 require-direct", `${d.name} needs its firmware direct mappings but is attached to ${dom(p.domain)} (__iommu_device_set_domain refuses it with EINVAL)`);
      }
    }
    // I22: an owner cookie means at least one claim.
    if (!g.ownerCntStale && g.owner !== null && g.ownerCnt < 1) bad("I22 owner-count", `${groupName(g)} has a user owner but owner_cnt ${g.ownerCnt} (a claim counts itself)`);
    // I23: no kernel DMA-API driver is bound in a user-owned group, unless a WARN broke the count (see
    // IommuGroup.ownerCntStale) or the design lets that device be (VFIO's allowed devices: PCI bridges).
    if (!g.ownerCntStale && g.owner !== null && dmaUsers > 0) {
      const v = userVsKernel(m, g, list);
      if (v !== null) out.push(v);
    }
    // I24: with no user owner, owner_cnt counts the kernel DMA-API drivers bound in the group under a design
    // that counts them at bind (driver-core), and nothing under one that does not (notifier: claims only).
    const counted = ownership.useDefaultDomainAtBind ? dmaUsers : 0;
    if (!g.ownerCntStale && g.owner === null && g.ownerCnt !== counted) {
      bad(
        "I24 owner-count",
        ownership.useDefaultDomainAtBind
          ? `${groupName(g)} has owner_cnt ${g.ownerCnt}, but ${dmaUsers} device(s) are bound to a DMA-API driver (${names(dmaUsersOf(list))}); ` +
              `iommu_device_use_default_domain counts each at bind and iommu_device_unuse_default_domain uncounts it at unbind`
          : `${groupName(g)} has owner_cnt ${g.ownerCnt} and no user owner; under dma_ownership=${ownership.name} no bind is counted, owner_cnt counts user claims only`,
      );
    }
    // A group with a kernel DMA user has a default domain (iommu_device_use_default_domain defers otherwise;
    // a design that counts no bind has no such check).
    if (ownership.useDefaultDomainAtBind && g.ownerCnt > 0 && g.owner === null && g.defaultDomain === null) {
      bad("I-default-domain", `${groupName(g)} has ${g.ownerCnt} kernel DMA user(s) but no default domain (iommu_device_use_default_domain returns EPROBE_DEFER without one)`);
    }
  }

  // Isolation: a device's DMA reaches only what its current domain maps (a lazy domain's
  // flush-queue window excepted, which the DMA layer reports as a finding instead).
  for (const b of m.ctx.diag.isolationBreaches) bad("I-isolation", `${b}, outside any flush-queue window (strict iommu_unmap invalidates the IOTLB before it returns)`);

  // I33: between steps no path holds a lock (a lock is taken only through mutex_lock, which marks it touched).
  const held = (l: Mutex) => {
    if (l.holder !== null) bad("I33 lock-held", `${l.lockName} is still held by ${l.holder.name} between steps`);
  };
  held(k.probeLock);
  held(m.dc.deferredProbeMutex);
  if (scope !== undefined) {
    for (const l of scope.locks) if (l !== k.probeLock && l !== m.dc.deferredProbeMutex) held(l);
  } else {
    for (const g of k.groups) held(g.mutex);
    for (const r of m.devices.values()) held(r.dev.lock);
  }
  return out;
}

/** Whether a member list holds a device twice (small lists compared pairwise). */
function listsTwice(list: readonly { dev: Device }[]): boolean {
  if (list.length > 16) return new Set(list.map((gd) => gd.dev)).size !== list.length;
  for (let i = 1; i < list.length; i++) for (let j = 0; j < i; j++) if (list[i]!.dev === list[j]!.dev) return true;
  return false;
}

function dmaUsersOf(list: readonly { dev: Device }[]): Device[] {
  return list.map((gd) => gd.dev).filter(kernelDmaUser);
}

/**
 * I23 on a user-owned group with kernel DMA-API drivers bound: those the
 * dma_ownership design does not let stay (driver-core: every one; notifier:
 * all but PCI bridges, which VFIO allows) break isolation. Under
 * driver-core the state is refused (EPERM at the claim, EBUSY at the bind);
 * under notifier VFIO refuses an unviable group (EINVAL) and a later bind
 * is reached only after the kernel BUG in vfio_iommu_group_notifier.
 */
function userVsKernel(m: Machine, g: IommuGroup, list: readonly { dev: Device }[]): Violation | null {
  const ownership = m.k.strategy.dmaOwnership;
  const conflicting = dmaUsersOf(list).filter((d) => !ownership.allowedInUserGroup(d));
  if (conflicting.length === 0) return null;
  const afterBug = conflicting.every((d) => m.ctx.diag.bugHit(d.name));
  const why = ownership.useDefaultDomainAtBind
    ? "claims need owner_cnt 0: EPERM; a DMA-API bind needs no owner: EBUSY"
    : `VFIO hands out only viable groups: EINVAL; a later bind ${afterBug ? "is reached only after" : "hits"} the kernel BUG in vfio_iommu_group_notifier, where the kernel stops`;
  const v: Violation = {
    rule: "I23 user-vs-kernel",
    message: `${groupName(g)} is owned by user space while ${names(conflicting)} ${conflicting.length === 1 ? "is" : "are"} bound to a DMA-API driver (${why})`,
  };
  if (afterBug) v.afterKernelBug = true;
  return v;
}
