/**
 * The deferred-probe lists of drivers/base/dd.c, behind one interface with
 * two implementations: the kernel's own two lists (`literal`, this file's
 * LiteralDeferredLists), and an index that reaches the same states and bind
 * order while retrying only devices whose wait may have ended
 * (deferred-index.ts). dd.ts drives either the same way.
 */
import type { Device } from "./device.ts";
import type { FwnodeHandle } from "./fwnode.ts";

export type DeferredProbeMode = "indexed" | "literal";

/** What one run of the work item skipped, for the trace's summary line (indexed lists only). */
export interface SkipSummary {
  /** Devices that stayed on the lists without a retry. */
  skipped: number;
  /** How many of them wait for each supplier (by fwnode name); keyless waits are always retried. */
  bySupplier: Map<string, number>;
}

export interface DeferredLists {
  readonly mode: DeferredProbeMode;
  /** driver_deferred_probe_add: onto the tail of the pending list, unless already on a list. */
  add(dev: Device): void;
  /** driver_deferred_probe_del: off whichever list holds it. */
  del(dev: Device): void;
  /** driver_deferred_probe_trigger's splice: the pending list moves to the tail of the active list. */
  splice(): void;
  /** deferred_probe_work_func: takes the next device to retry off the active list (null: the active list is done). */
  next(): Device | null;
  /** The devices on the lists, pending list first, each in list order. */
  devices(): Device[];
  /** A supplier (an IOMMU instance's fwnode) appeared or became ready: devices waiting for it may probe now. */
  wake(supplier: FwnodeHandle): void;
  /** Devices on `bus`'s driver list changed in a way that can change their retry (a driver went away). */
  wakeAll(): void;
  /** Called when the work item starts and ends; returns what the run skipped (null for the literal lists). */
  beginRun(): void;
  endRun(): SkipSummary | null;
}

/** The kernel's deferred_probe_pending_list and deferred_probe_active_list, as insertion-ordered sets. */
export class LiteralDeferredLists implements DeferredLists {
  readonly mode = "literal" as const;
  /** deferred_probe_pending_list */
  readonly pending = new Set<Device>();
  /** deferred_probe_active_list */
  readonly active = new Set<Device>();

  add(dev: Device): void {
    if (dev.deferredProbe) return;
    this.pending.add(dev);
    dev.deferredProbe = true;
  }

  del(dev: Device): void {
    if (!dev.deferredProbe) return;
    this.pending.delete(dev);
    this.active.delete(dev);
    dev.deferredProbe = false;
  }

  splice(): void {
    for (const dev of this.pending) this.active.add(dev);
    this.pending.clear();
  }

  next(): Device | null {
    const first = this.active.values().next();
    if (first.done) return null;
    const dev = first.value;
    this.active.delete(dev);
    dev.deferredProbe = false;
    return dev;
  }

  devices(): Device[] {
    return [...this.pending, ...this.active];
  }

  wake(): void {}
  wakeAll(): void {}
  beginRun(): void {}
  endRun(): null {
    return null;
  }
}
