/**
 * struct bus_type: its devices in add order (the klist the kernel walks),
 * its drivers, a notifier chain, and the `dma_configure` / `dma_cleanup`
 * hooks that really_probe calls around a driver's probe. The hooks are
 * installed by the layers that implement them (firmware + IOMMU), as bus
 * code in the kernel calls into of/acpi/iommu.
 */
import type { KError } from "../lib/errno.ts";
import type { Device } from "./device.ts";
import type { DeviceDriver } from "./driver.ts";
import { NO_POINT, type Path } from "./path.ts";

// include/linux/device/bus.h
export const BUS_NOTIFY_ADD_DEVICE = 0x1;
export const BUS_NOTIFY_DEL_DEVICE = 0x2;
export const BUS_NOTIFY_REMOVED_DEVICE = 0x3;
export const BUS_NOTIFY_BIND_DRIVER = 0x4;
export const BUS_NOTIFY_BOUND_DRIVER = 0x5;
export const BUS_NOTIFY_UNBIND_DRIVER = 0x6;
export const BUS_NOTIFY_UNBOUND_DRIVER = 0x7;
export const BUS_NOTIFY_DRIVER_NOT_BOUND = 0x8;

export type BusNotifyAction = number;

/** A notifier block on a bus's chain. */
export interface NotifierBlock {
  readonly name: string;
  /**
   * The actions its callback acts on, as a bit per action (`1 << action`); the
   * kernel calls it for every action and it returns NOTIFY_DONE for the others,
   * which the model skips without making a path.
   */
  readonly actions: number;
  call(action: BusNotifyAction, dev: Device): Path<void>;
}

export class BusType {
  /** Devices on the bus in klist order (add order). */
  readonly devices: Device[] = [];
  readonly drivers: DeviceDriver[] = [];
  readonly notifiers: NotifierBlock[] = [];
  /** `bus->dma_configure`: firmware IOMMU setup, then DMA ownership for a bound driver. */
  dmaConfigure: ((dev: Device) => Path<0 | KError>) | null = null;
  /** `bus->dma_cleanup`: undoes the ownership part of dma_configure. */
  dmaCleanup: ((dev: Device) => Path<void>) | null = null;

  constructor(readonly name: string) {}

  toString(): string {
    return this.name;
  }
}

// @kernel: bus_register_notifier
export function busRegisterNotifier(bus: BusType, nb: NotifierBlock): void {
  bus.notifiers.push(nb);
}

// @kernel: bus_unregister_notifier
export function busUnregisterNotifier(bus: BusType, nb: NotifierBlock): void {
  const i = bus.notifiers.indexOf(nb);
  if (i >= 0) bus.notifiers.splice(i, 1);
}

// @kernel: bus_notify (blocking_notifier_call_chain on the bus)
export function busNotify(bus: BusType, action: BusNotifyAction, dev: Device): Path {
  const bit = 1 << action;
  let only: NotifierBlock | null = null;
  let count = 0;
  for (const nb of bus.notifiers) {
    if ((nb.actions & bit) === 0) continue;
    only = nb;
    count++;
  }
  // Nothing to call, or one callback: no path of its own around it.
  if (count === 0) return NO_POINT;
  if (count === 1) return only!.call(action, dev);
  return notifyEach(bus, action, dev, bit);
}

function* notifyEach(bus: BusType, action: BusNotifyAction, dev: Device, bit: number): Path {
  for (const nb of [...bus.notifiers]) if ((nb.actions & bit) !== 0) yield* nb.call(action, dev);
}
