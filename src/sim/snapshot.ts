/**
 * The snapshot (`iommu-sim run FILE --json`): the machine's state as plain
 * data, in the shape the scenario contract fixes (docs/scenarios.md), plus added keys.
 */
import type { Device } from "../base/device.ts";
import { strategyNames, type AxisName } from "../designs/registry.ts";
import { formatFailureEffect } from "../lib/failure-effects.ts";
import { sizeName } from "../lib/size.ts";
import { devGroup, devIommu } from "../iommu/dev-iommu.ts";
import { domainTypeName, type IommuDomain } from "../iommu/domain.ts";
import { formatResvRegion, iommuGetGroupResvRegions } from "../iommu/group-resv.ts";
import type { IommuGroup } from "../iommu/group.ts";
import { dmaDomainStats, type DmaDomainStats } from "../dma/dma-iommu.ts";
import type { CmdlineNote } from "../iommu/cmdline.ts";
import type { IommuDomainStats } from "../iommu/ops.ts";
import { IommufdIoas } from "../iommufd/ioas.ts";
import { iommufdContexts, type ScenarioIommufd } from "./iommufd-actions.ts";
import type { DmaHandle, EventRecord, Machine } from "./machine.ts";

export type ProbeState = "none" | "bound" | "deferred" | "failed";

export interface DeviceSnap {
  name: string;
  bus: string;
  registered: boolean;
  iommu: string | null;
  ops: string | null;
  fwspec: { iommu: string | null; ids: number[] } | null;
  dev_iommu: "none" | "fw_only" | "probed";
  group: number | null;
  domain: number | null;
  driver: string | null;
  probe: ProbeState;
  probe_error: string | null;
}

export interface GroupSnap {
  id: number;
  devices: string[];
  type: string;
  domain: number | null;
  default_domain: number | null;
  owner: "none" | "kernel" | "user";
  owner_cnt: number;
  /** PASIDs with an attachment (pasid_array). */
  pasids: number[];
  reserved_regions: string[];
}

export interface IommuSnap {
  name: string;
  driver: string;
  registered: boolean;
  ready: boolean;
  fwnode: string | null;
  devices: string[];
}

export interface DomainSnap {
  id: number;
  /** The name a domain_alloc event gave it. */
  name: string | null;
  type: string;
  iommu: string | null;
  page_sizes: string[];
  format: string | null;
  static: boolean;
  mapped_bytes: number;
  pgtable_pages: number;
  pgtable_bytes: number;
  /**
   * Invalidations the driver issued (flush_all, flush_walk, add_page, sync) and, for the paging
   * domains of drivers/paging-domain.ts, the most recent ones (kind, iova, size; oldest first) and how
   * many were recorded in all.
   */
  tlb: IommuDomainStats["tlb"] | null;
  /** Valid IOTLB entries (once a device did DMA through the domain). */
  iotlb_entries: number;
  /**
   * DMA-API domains: IOVA ranges in the allocator (those parked in its per-CPU caches included) and,
   * for DMA-FQ, entries waiting in the flush queue and the IOTLB flushes the queue issued (in all,
   * on a full ring, by its timer).
   */
  dma: DmaDomainStats | null;
}

export type DmaHandleSnap = Omit<DmaHandle, "domain">;

export interface Snapshot {
  name: string;
  /** The design-axis strategies the run used, by axis. */
  strategy: Record<AxisName, string>;
  /** The kernel preset the run's design started from (boot.kernel or --kernel), or null for current. */
  kernel: string | null;
  iommus: IommuSnap[];
  /** The iommu_ops each bus carries (bus->iommu_ops, kernels up to v6.7: ops_resolution bus-set-iommu and bus-ops), by bus name, sorted; {} when no bus carries any. */
  bus_ops: Record<string, string>;
  devices: DeviceSnap[];
  groups: GroupSnap[];
  domains: DomainSnap[];
  /** Domains domain_alloc events named, live or freed. */
  user_domains: Record<string, DomainSnap & { live: boolean }>;
  deferred: string[];
  boot: EventRecord[];
  events: EventRecord[];
  warnings: string[];
  /** Kernel BUGs hit (BUG_ON), as `fn: subject: message`: the kernel would have stopped at the first; the model carried on. */
  bugs: string[];
  /** What each boot.cmdline option did: modelled, or a warning (a real option not modelled, or one the model does not know). */
  cmdline: CmdlineNote[];
  /** The model's findings: stale IOTLB DMA, page-table quirks the formats reported. */
  findings: string[];
  /** DMA handles dma_map events made. */
  /** Named DMA mappings: device, DMA address, size, whether still mapped, whether a scatterlist. */
  dma_handles: Record<string, DmaHandleSnap>;
  /** The iommufd contexts `iommufd` events opened, by name. */
  iommufd: Record<string, IommufdCtxSnap>;
  violations: string[];
}

/** An iommufd context: its objects (the name a call bound, if any), each IOAS's areas, the pages it pins. */
export interface IommufdCtxSnap {
  closed: boolean;
  objects: { id: number; type: string; name: string | null; users: number }[];
  /** By IOAS name (`#id` for one no call named): the mapped areas, by IOVA. */
  areas: Record<string, { iova: number; length: number }[]>;
  pinned_pages: number;
}

function iommufdCtxSnap(s: ScenarioIommufd): IommufdCtxSnap {
  const byId = new Map([...s.names].map(([n, id]) => [id, n] as const));
  const areas: IommufdCtxSnap["areas"] = {};
  for (const o of s.ictx.live()) {
    if (o instanceof IommufdIoas) areas[byId.get(o.id) ?? `#${o.id}`] = o.iopt.areas.map((a) => ({ iova: a.iova, length: a.length }));
  }
  return {
    closed: s.ictx.closed,
    objects: s.ictx.live().map((o) => ({ id: o.id, type: o.type, name: byId.get(o.id) ?? null, users: o.users })),
    areas,
    pinned_pages: s.ictx.env.phys.pinnedTotal,
  };
}

export function probeState(dev: Device): ProbeState {
  if (dev.bound) return "bound";
  if (dev.deferredProbe) return "deferred";
  if (dev.probeError !== null) return "failed";
  return "none";
}

/** Instance names by their fwnode's name, for fwspecs (the first instance with a fwnode wins). */
function instanceNames(m: Machine): Map<string, string> {
  const names = new Map<string, string>();
  for (const rec of m.instances.values()) {
    const fw = rec.iommu.fwnode?.name;
    if (fw !== undefined && !names.has(fw)) names.set(fw, rec.spec.name);
  }
  return names;
}

function instanceNameOf(names: Map<string, string>, fwnodeName: string | null): string | null {
  if (fwnodeName === null) return null;
  return names.get(fwnodeName) ?? fwnodeName;
}

/** Page sizes as names ("4K", "2M"), computed once per page-size list (domains of one format share theirs). */
const pageSizeNames = new WeakMap<readonly number[], readonly string[]>();
function pageSizes(pgsizes: readonly number[]): string[] {
  let names = pageSizeNames.get(pgsizes);
  if (names === undefined) {
    names = pgsizes.map(sizeName);
    pageSizeNames.set(pgsizes, names);
  }
  return names.slice();
}

function deviceSnap(names: Map<string, string>, dev: Device): DeviceSnap {
  const p = devIommu(dev);
  const iommuDev = p?.iommuDev ?? null;
  const fw = p?.fwspec ?? null;
  return {
    name: dev.name,
    bus: dev.bus.name,
    registered: dev.registered,
    iommu: iommuDev?.name ?? null,
    ops: iommuDev?.ops?.name ?? null,
    fwspec: fw === null ? null : { iommu: instanceNameOf(names, fw.iommuFwnode?.name ?? null), ids: [...fw.ids] },
    dev_iommu: p === null ? "none" : iommuDev === null ? "fw_only" : "probed",
    group: devGroup(dev)?.id ?? null,
    domain: p?.domain?.id ?? null,
    driver: dev.driver?.name ?? null,
    probe: probeState(dev),
    probe_error: dev.probeError,
  };
}

export function groupOwner(g: IommuGroup): "none" | "kernel" | "user" {
  if (g.owner !== null) return "user";
  return g.ownerCnt > 0 ? "kernel" : "none";
}

function groupSnap(g: IommuGroup): GroupSnap {
  return {
    id: g.id,
    devices: g.devices.map((d) => d.dev.name),
    type: g.defaultDomain === null ? "unknown" : domainTypeName(g.defaultDomain.type),
    domain: g.domain?.id ?? null,
    default_domain: g.defaultDomain?.id ?? null,
    owner: groupOwner(g),
    owner_cnt: g.ownerCnt,
    pasids: g.hasPasids ? [...g.pasidArray.keys()].sort((a, b) => a - b) : [],
    reserved_regions: iommuGetGroupResvRegions(g).map(formatResvRegion),
  };
}

function domainSnap(d: IommuDomain, name: string | null): DomainSnap {
  const stats = d.ops.stats?.(d) ?? null;
  return {
    id: d.id,
    name,
    type: domainTypeName(d.type),
    iommu: d.iommu?.name ?? null,
    page_sizes: pageSizes(d.pgsizes),
    format: d.pgtableFormat,
    static: d.isStatic,
    mapped_bytes: stats?.mappedBytes ?? 0,
    pgtable_pages: stats?.tablePages ?? 0,
    pgtable_bytes: stats?.tableBytes ?? 0,
    tlb: stats?.tlb ?? null,
    iotlb_entries: d.iotlb?.size ?? 0,
    dma: dmaDomainStats(d),
  };
}

/** The findings so far: the model's (stale IOTLB DMA), the failure effects, then each live domain's page-table findings. */
function findings(m: Machine): string[] {
  const diag = m.ctx.diag;
  const out = [...diag.findings, ...diag.effects.map(formatFailureEffect)];
  for (const d of m.k.domains) for (const f of diag.pgtableFindingsOf(d)) out.push(`${d}: ${f}`);
  return out;
}

/** What the snapshot's sections are made from; the shared lookups are made on first use. */
class SnapSource {
  private names: Map<string, string> | null = null;
  constructor(
    readonly m: Machine,
    readonly boot: readonly EventRecord[],
    readonly violations: readonly string[],
  ) {}
  get fwnodeNames(): Map<string, string> {
    return (this.names ??= instanceNames(this.m));
  }
}

/** Each key of the snapshot, in its order, and how it is made. */
const SECTIONS: { readonly [K in keyof Snapshot]: (s: SnapSource) => Snapshot[K] } = {
  name: ({ m }) => m.scenario.name,
  strategy: ({ m }) => strategyNames(m.k.strategy),
  kernel: ({ m }) => m.scenario.boot?.kernel ?? null,
  iommus: ({ m }) =>
    [...m.instances.values()].map((rec) => ({
      name: rec.spec.name,
      driver: rec.spec.driver,
      registered: rec.iommu.listed,
      ready: rec.iommu.ready,
      fwnode: rec.iommu.fwnode?.name ?? null,
      devices: [...rec.iommu.devices].sort((a, b) => a.busSeq - b.busSeq).map((d) => d.name),
    })),
  bus_ops: ({ m }) => Object.fromEntries([...m.k.busIommuOps].map(([bus, ops]) => [bus.name, ops.name] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  devices: (s) => [...s.m.devices.values()].map((r) => deviceSnap(s.fwnodeNames, r.dev)),
  groups: ({ m }) =>
    [...m.k.groups]
      .filter((g) => g.devices.length > 0)
      .sort((a, b) => a.id - b.id)
      .map(groupSnap),
  domains: ({ m }) => {
    const userName = new Map([...m.userDomains].map(([n, d]) => [d, n] as const));
    // A driver's static domain is a global of the driver: listed while a group uses it.
    const inUse = new Set<IommuDomain>();
    for (const g of m.k.groups) {
      for (const d of [g.domain, g.defaultDomain, g.blockingDomain]) if (d !== null) inUse.add(d);
      if (g.hasPasids) for (const e of g.pasidArray.values()) inUse.add(e.domain);
    }
    return [...m.k.domains]
      .filter((d) => !d.freed && (!d.isStatic || inUse.has(d)))
      .sort((a, b) => a.id - b.id)
      .map((d) => domainSnap(d, userName.get(d) ?? null));
  },
  user_domains: ({ m }) => Object.fromEntries([...m.userDomains].map(([n, d]) => [n, { ...domainSnap(d, n), live: !d.freed }])),
  deferred: ({ m }) => m.dc.deferred.devices().map((d) => d.name),
  boot: ({ boot }) => boot.map((e) => ({ ...e })),
  events: ({ m }) => m.events.map((e) => ({ ...e })),
  warnings: ({ m }) => m.ctx.diag.warnings.map((w) => `${w.fn}: ${w.subject}: ${w.message}`),
  bugs: ({ m }) => m.ctx.diag.bugs.map((b) => `${b.fn}: ${b.subject}: ${b.message}`),
  cmdline: ({ m }) => m.cmdline.map((n) => ({ ...n })),
  findings: ({ m }) => findings(m),
  dma_handles: ({ m }) => Object.fromEntries([...m.dmaHandles].map(([n, h]) => [n, { device: h.device, dma: h.dma, size: h.size, live: h.live, sg: h.sg }])),
  iommufd: ({ m }) => Object.fromEntries([...iommufdContexts(m)].map(([n, c]) => [n, iommufdCtxSnap(c)])),
  violations: ({ violations }) => [...violations],
};

const KEYS = Object.keys(SECTIONS) as (keyof Snapshot)[];

/** The machine's state as plain data; the violations are those the run recorded unless given. */
export function takeSnapshot(m: Machine, boot: readonly EventRecord[], violations: readonly string[] = m.ctx.diag.violations): Snapshot {
  const src = new SnapSource(m, boot, violations);
  const out: Record<string, unknown> = {};
  for (const k of KEYS) out[k] = SECTIONS[k](src);
  return out as unknown as Snapshot;
}

/**
 * The same snapshot, each key made when first read: an expectation reads a
 * few keys, once per schedule in a search (the explorer's hot path). Read
 * it before the machine changes.
 */
export function lazySnapshot(m: Machine, boot: readonly EventRecord[], violations: readonly string[] = m.ctx.diag.violations): Snapshot {
  const src = new SnapSource(m, boot, violations);
  const out = {} as Record<string, unknown>;
  for (const k of KEYS) {
    Object.defineProperty(out, k, {
      enumerable: true,
      configurable: true,
      get() {
        const v = SECTIONS[k](src);
        Object.defineProperty(out, k, { value: v, enumerable: true, writable: false, configurable: false });
        return v;
      },
    });
  }
  return out as unknown as Snapshot;
}
