/**
 * struct device_driver: a name, a bus, which devices it matches, its probe
 * and remove, and `driver_managed_dma` (a driver that does no kernel DMA or
 * hands the device to user space: VFIO, pci-stub).
 */
import type { KError } from "../lib/errno.ts";
import type { BusType } from "./bus.ts";
import type { Device } from "./device.ts";

export interface DeviceDriverSpec {
  name: string;
  /** Device names this driver's id table matches, or "*" for every device on the bus. */
  match: readonly string[] | "*";
  driverManagedDma?: boolean;
  /** What `probe()` returns per device (default 0). */
  probeResult?: (dev: Device) => 0 | KError;
}

export class DeviceDriver {
  readonly name: string;
  readonly driverManagedDma: boolean;
  readonly devices = new Set<Device>();
  registered = false;
  private readonly matchSet: ReadonlySet<string> | null;
  private readonly probeResult: ((dev: Device) => 0 | KError) | null;

  constructor(
    readonly bus: BusType,
    spec: DeviceDriverSpec,
  ) {
    this.name = spec.name;
    this.driverManagedDma = spec.driverManagedDma ?? false;
    this.matchSet = spec.match === "*" ? null : new Set(spec.match);
    this.probeResult = spec.probeResult ?? null;
  }

  // @kernel: driver_match_device (bus->match against the id table)
  matches(dev: Device): boolean {
    return dev.bus === this.bus && (this.matchSet === null || this.matchSet.has(dev.name));
  }

  // @kernel: call_driver_probe (drv->probe)
  probe(dev: Device): 0 | KError {
    return this.probeResult === null ? 0 : this.probeResult(dev);
  }

  toString(): string {
    return this.name;
  }
}
