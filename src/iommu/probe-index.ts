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

/**
 * Buckets are plain arrays; membership lives in `keyOf`, indexed by the
 * device's bus position (busSeq, unique per device_add), so add and remove
 * are O(1) with no hashing. Entries of removed (or re-keyed) devices stay in
 * their bucket until the next walk over it drops them.
 */
export class ProbeIndex {
  private readonly byBus = new Map<BusType, Map<ProbeKey, Device[]>>();
  /** keyOf[busSeq]: the key a device is indexed under; undefined when it is not indexed. */
  private readonly keyOf: (ProbeKey | undefined)[] = [];
  /** Per busSeq, the last select() pass that emitted the device (drops duplicate bucket entries). */
  private readonly seen: number[] = [];
  private pass = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(dev: Device): boolean {
    return dev.busSeq >= 0 && this.keyOf[dev.busSeq] !== undefined;
  }

  add(dev: Device, key: ProbeKey): void {
    if (dev.busSeq < 0) return;
    const cur = this.keyOf[dev.busSeq];
    if (cur === key) return;
    if (cur === undefined) this.count++;
    this.keyOf[dev.busSeq] = key;
    let m = this.byBus.get(dev.bus);
    if (m === undefined) {
      m = new Map();
      this.byBus.set(dev.bus, m);
    }
    let bucket = m.get(key);
    if (bucket === undefined) {
      bucket = [];
      m.set(key, bucket);
    }
    bucket.push(dev);
  }

  remove(dev: Device): void {
    if (!this.has(dev)) return;
    this.keyOf[dev.busSeq] = undefined;
    this.count--;
  }

  /** Indexed devices on `bus` whose key passes `want` (or all of them), in bus order. */
  select(bus: BusType, want: ((key: ProbeKey) => boolean) | null): Device[] {
    const m = this.byBus.get(bus);
    if (m === undefined) return [];
    const out: Device[] = [];
    const pass = ++this.pass;
    for (const [key, bucket] of m) {
      if (want !== null && !want(key)) continue;
      // Compact: keep entries still indexed under this key, each device once.
      let w = 0;
      for (let r = 0; r < bucket.length; r++) {
        const d = bucket[r]!;
        const seq = d.busSeq;
        if (seq < 0 || this.keyOf[seq] !== key || this.seen[seq] === pass) continue;
        this.seen[seq] = pass;
        bucket[w++] = d;
        out.push(d);
      }
      bucket.length = w;
    }
    out.sort((a, b) => a.busSeq - b.busSeq);
    return out;
  }
}
