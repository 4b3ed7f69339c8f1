/**
 * A model speed-up with no kernel counterpart. The kernel's
 * bus_iommu_probe visits every device on every IOMMU bus each time an
 * instance registers (instances x devices). Most visits end in -ENODEV
 * without touching any state: the device's firmware names an IOMMU that is
 * not registered, so ops resolve to NULL. This index keeps the devices the
 * bus notifier saw and could not probe, keyed by the fwnode their firmware
 * names first (their fwspec's, or null for none). A registration walk then
 * visits only devices whose key resolves to a listed instance, or every
 * unprobed device while an instance without a fwnode is listed (those
 * catch devices whatever their firmware says) — in bus order, so the
 * trace shows the same probes the kernel makes that change anything.
 * `IommuCore.probeWalk = "literal"` walks like the kernel; tests check both
 * reach the same states.
 */
import type { BusType } from "../base/bus.ts";
import type { Device } from "../base/device.ts";
import type { FwnodeHandle } from "../base/fwnode.ts";

export type ProbeKey = FwnodeHandle | null;

export class ProbeIndex {
  private readonly byBus = new Map<BusType, Map<ProbeKey, Set<Device>>>();
  private readonly keyOf = new Map<Device, ProbeKey>();

  get size(): number {
    return this.keyOf.size;
  }

  has(dev: Device): boolean {
    return this.keyOf.has(dev);
  }

  add(dev: Device, key: ProbeKey): void {
    if (this.keyOf.has(dev)) this.remove(dev);
    this.keyOf.set(dev, key);
    let m = this.byBus.get(dev.bus);
    if (m === undefined) {
      m = new Map();
      this.byBus.set(dev.bus, m);
    }
    let s = m.get(key);
    if (s === undefined) {
      s = new Set();
      m.set(key, s);
    }
    s.add(dev);
  }

  remove(dev: Device): void {
    if (!this.keyOf.has(dev)) return;
    const key = this.keyOf.get(dev)!;
    this.keyOf.delete(dev);
    this.byBus.get(dev.bus)?.get(key)?.delete(dev);
  }

  /** Indexed devices on `bus` whose key passes `want` (or all of them), in bus order. */
  select(bus: BusType, want: ((key: ProbeKey) => boolean) | null): Device[] {
    const m = this.byBus.get(bus);
    if (m === undefined) return [];
    const out: Device[] = [];
    for (const [key, set] of m) {
      if (want !== null && !want(key)) continue;
      for (const d of set) out.push(d);
    }
    out.sort((a, b) => a.busSeq - b.busSeq);
    return out;
  }
}
