/**
 * The driver core's global state for one machine: registered buses and the
 * deferred-probe lists (drivers/base/dd.c). It is handed the machine's
 * context (scheduling, trace, diagnostics), which every path shares.
 */
import { BusType } from "./bus.ts";
import { MachineContext } from "./context.ts";
import { IndexedDeferredLists } from "./deferred-index.ts";
import { LiteralDeferredLists, type DeferredLists, type DeferredProbeMode } from "./deferred-lists.ts";
import { Mutex } from "./mutex.ts";
import type { Sched } from "./path.ts";

export class DriverCore {
  /** The context's scheduling state, which the driver core's paths use at every lock. */
  readonly sched: Sched;
  readonly buses = new Map<string, BusType>();

  /**
   * deferred_probe_pending_list and deferred_probe_active_list: the kernel's
   * own lists, or the index that retries only devices whose wait may have
   * ended (deferred-index.ts), with the same outcome.
   */
  readonly deferred: DeferredLists;
  readonly deferredProbeMutex = new Mutex("deferred_probe_mutex");
  /** deferred_trigger_count */
  deferredTriggerCount = 0;
  /**
   * Model only: how many times a supplier's wait ended (deferredProbeSupplierReady, and every driver
   * unregistering). A probe that defers after one happened while it ran is filed as woken: its
   * supplier's wake may have come before the deferral was filed (the kernel retries the whole list).
   */
  supplierWakes = 0;
  /** deferred_probe_work is queued on deferred_wq. */
  deferredWorkQueued = false;
  /** driver_deferred_probe_enable: false until late_initcall (deferred_probe_initcall). */
  driverDeferredProbeEnable = false;
  /** Model time in milliseconds (jiffies): scenarios advance it; timers fire when it passes them. */
  now = 0;

  private busSeq = 0;

  constructor(
    readonly ctx: MachineContext = new MachineContext(),
    deferredProbe: DeferredProbeMode = "indexed",
  ) {
    this.sched = ctx.sched;
    this.deferred = deferredProbe === "indexed" ? new IndexedDeferredLists() : new LiteralDeferredLists();
  }

  nextBusSeq(): number {
    return this.busSeq++;
  }
}

// @kernel: bus_register
export function busRegister(dc: DriverCore, name: string): BusType {
  const existing = dc.buses.get(name);
  if (existing !== undefined) return existing;
  const bus = new BusType(name);
  dc.buses.set(name, bus);
  return bus;
}
