/**
 * The IOMMU core's global state for one machine (the statics of
 * drivers/iommu/iommu.c): the instance list, the probe lock, group and
 * domain id allocators, the default-domain knobs, the design strategies in
 * force, and the buses the core watches.
 */
import type { BusType } from "../base/bus.ts";
import type { MachineContext } from "../base/context.ts";
import type { DriverCore } from "../base/driver-core.ts";
import type { FwnodeHandle } from "../base/fwnode.ts";
import { Mutex } from "../base/mutex.ts";
import type { Sched } from "../base/path.ts";
import type { TraceCtx } from "../base/traced.ts";
import { Ida } from "../lib/ida.ts";
import type { KError } from "../lib/errno.ts";
import type { FailureEffectId, FailureEffectSink } from "../lib/failure-effects.ts";
import { IOMMU_DOMAIN_DMA, type IommuDomain } from "./domain.ts";
import type { IommuGroup } from "./group.ts";
import type { IommuDevice } from "./iommu-device.ts";
import type { IommuOps } from "./ops.ts";
import { ProbeIndex } from "./probe-index.ts";
import type { IommuStrategies } from "./strategy-types.ts";

// iommu_cmd_line bits
export const IOMMU_CMD_LINE_DMA_API = 1 << 0;
export const IOMMU_CMD_LINE_STRICT = 1 << 1;

export class IommuCore implements TraceCtx, FailureEffectSink {
  /** iommu_device_list, in registration order. */
  readonly deviceList: IommuDevice[] = [];
  /** iommu_probe_device_lock */
  readonly probeLock = new Mutex("iommu_probe_device_lock");
  /** iommu_group_ida */
  readonly groupIda = new Ida(0);
  /** Model ids for domains, as snapshots show them. */
  readonly domainIda = new Ida(1);
  /** Live groups and domains (what /sys/kernel/iommu_groups and the snapshot list). */
  readonly groups = new Set<IommuGroup>();
  readonly domains = new Set<IommuDomain>();
  /** iommu_def_domain_type */
  defDomainType = IOMMU_DOMAIN_DMA;
  /** iommu_dma_strict */
  dmaStrict = true;
  /** iommu_cmd_line */
  cmdLine = 0;
  /**
   * `bus->iommu_ops` (struct bus_type's member up to v6.7, kept here since
   * base/ knows no IOMMU types): the ops each bus carries under
   * ops_resolution bus-set-iommu and bus-ops; empty under the others.
   */
  readonly busIommuOps = new Map<BusType, IommuOps>();
  /** Model only: fwspec-only dev_iommus that registration walks' refused probes freed (what a failed registration compares). */
  walkFreedDevIommus = 0;
  /** Unprobed devices indexed by the IOMMU their firmware names (a model speed-up, exact). */
  readonly probeIndex = new ProbeIndex();
  /** How bus_iommu_probe picks devices: via the index, or every device on the bus as the kernel does. */
  probeWalk: "indexed" | "literal" = "indexed";
  /**
   * iommu_dma_init_fq, which the DMA layer (above this one) provides: the
   * sysfs switch of a DMA domain to DMA-FQ brings its flush queue up first.
   * Null when no DMA layer is wired in: the switch then only changes the type.
   */
  dmaInitFq: ((domain: IommuDomain) => 0 | KError) | null = null;

  private fwnodeCache: Map<FwnodeHandle | null, IommuDevice> | null = null;
  /** The machine's context (scheduling, trace, diagnostics), the driver core's. */
  readonly ctx: MachineContext;
  readonly sched: Sched;

  constructor(
    readonly dc: DriverCore,
    /** iommu_buses[]: the buses the core registers its notifier on, in walk order. */
    readonly iommuBuses: readonly BusType[],
    /** The design strategies in force, one per axis (src/designs/ implements them; the machine chooses). */
    public strategy: IommuStrategies,
  ) {
    this.ctx = dc.ctx;
    this.sched = dc.ctx.sched;
  }

  /** A kernel WARN (the machine's diagnostics, and the trace). */
  warn(fn: string, subject: string, message: string): void {
    this.ctx.warn(fn, subject, message);
  }

  /** A failure left state behind as the kernel's does (lib/failure-effects.ts). */
  effect(id: FailureEffectId, subject: string, message: string): void {
    this.ctx.effect(id, subject, message);
  }

  /** Whether the trace records; build note strings only then. */
  get tracing(): boolean {
    return this.ctx.trace.enabled;
  }

  note(fn: string, subject: string, detail: string): void {
    this.ctx.note(fn, subject, detail);
  }

  /** The first listed instance per fwnode (what iommu_from_fwnode finds), cached until the list changes. */
  firstByFwnode(fwnode: FwnodeHandle | null): IommuDevice | null {
    let c = this.fwnodeCache;
    if (c === null) {
      c = new Map();
      for (const it of this.deviceList) if (!c.has(it.fwnode)) c.set(it.fwnode, it);
      this.fwnodeCache = c;
    }
    return c.get(fwnode) ?? null;
  }

  listChanged(): void {
    this.fwnodeCache = null;
  }
}
