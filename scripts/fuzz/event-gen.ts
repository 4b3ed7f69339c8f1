/**
 * Random events for a running machine: every event kind the runner knows
 * (src/sim/runner.ts eventPath), with arguments that are often valid (picked
 * from the machine's state: live domains, bound devices, earlier mappings
 * and handles) and often not (unaligned sizes, IOVAs and physical addresses
 * beyond the table, unknown and freed domains, devices in the wrong state,
 * double operations). Every event it makes passes the scenario checks, so a
 * sequence written out as YAML replays with `iommu-sim run`.
 */
import { devGroup, devIommu } from "../../src/iommu/dev-iommu.ts";
import type { Machine } from "../../src/sim/machine.ts";
import type { EventKey, EventSpec } from "../../src/sim/scenario/schema.ts";
import type { Rng } from "./rng.ts";

/** The event kinds the fuzzer does not make yet: vfio_bind needs a vfio-pci driver in the machine, iommufd a context's names. */
type NotFuzzed = "vfio_bind" | "iommufd";

/** Every event kind but `expect` and those not fuzzed, with how often the fuzzer picks it. */
export const EVENT_WEIGHTS: Readonly<Record<Exclude<EventKey, "expect" | "concurrently" | NotFuzzed>, number>> = {
  iommu_register: 3,
  iommu_unregister: 3,
  device_add: 3,
  device_del: 3,
  driver_register: 2,
  driver_unregister: 2,
  driver_bind: 4,
  driver_unbind: 3,
  domain_alloc: 6,
  domain_free: 4,
  attach_group: 6,
  attach_device: 4,
  detach: 4,
  attach_pasid: 3,
  detach_pasid: 2,
  replace_pasid: 2,
  claim_dma_owner: 5,
  release_dma_owner: 4,
  group_type: 3,
  map: 12,
  unmap: 6,
  dma_map: 10,
  dma_unmap: 5,
  device_dma: 8,
  advance_time: 2,
};

const DOMAIN_NAMES = ["d0", "d1", "d2", "d3", "d4"];
const HANDLE_NAMES = ["h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7"];
const OWNERS = ["vfio", "iommufd"];
const K4 = 0x1000;
const M2 = 0x20_0000;
const G1 = 0x4000_0000;

interface Range {
  iova: number;
  size: number;
}

/** What the generator remembers about the sequence so far. */
export class EventGen {
  /** Domain names some domain_alloc event of the sequence uses (only those may be referenced by name). */
  readonly declaredDomains = new Set<string>();
  readonly declaredHandles = new Set<string>();
  /** Recent map ranges per domain reference, for unmaps and device DMA. */
  private readonly ranges = new Map<string | number, Range[]>();
  private readonly devNames: string[];
  private readonly drvNames: string[];
  private readonly instNames: string[];

  constructor(
    private readonly r: Rng,
    private readonly m: Machine,
  ) {
    this.devNames = [...m.devices.keys()];
    this.drvNames = [...m.drivers.keys()];
    this.instNames = [...m.instances.keys()];
  }

  next(): EventSpec {
    const kind = this.r.weighted(EVENT_WEIGHTS);
    return this.make(kind);
  }

  private device(pred?: (name: string) => boolean): string {
    const r = this.r;
    if (pred !== undefined && r.chance(0.8)) {
      const ok = this.devNames.filter(pred);
      if (ok.length > 0) return r.pick(ok);
    }
    return r.pick(this.devNames);
  }

  private withGroup = (n: string): boolean => devGroup(this.m.devices.get(n)!.dev) !== null;

  /** A domain reference: a declared name, a live domain's id, or one that names nothing. */
  private domainRef(): string | number {
    const r = this.r;
    const live = [...this.m.k.domains].filter((d) => !d.freed);
    const names = [...this.declaredDomains];
    const roll = r.next();
    if (roll < 0.55 && names.length > 0) return r.pick(names);
    if (roll < 0.9 && live.length > 0) return r.pick(live).id;
    if (roll < 0.95 && names.length > 0) return r.pick(names);
    return r.pick([999, 4242, 1]);
  }

  private pgsizesOf(ref: string | number): readonly number[] {
    const d = typeof ref === "string" ? this.m.userDomains.get(ref) : [...this.m.k.domains].find((x) => x.id === ref);
    return d !== undefined && d.pgsizes.length > 0 ? d.pgsizes : [K4];
  }

  private iasOf(ref: string | number): number {
    const d = typeof ref === "string" ? this.m.userDomains.get(ref) : [...this.m.k.domains].find((x) => x.id === ref);
    const end = d?.geometry.apertureEnd ?? 2 ** 48 - 1;
    return end > 0 ? end + 1 : 2 ** 48;
  }

  /** An IOVA, physical address and size for a map of domain `ref`: usually valid, sometimes not. */
  private mapArgs(ref: string | number): { iova: number; paddr: number; size: number } {
    const r = this.r;
    const sizes = this.pgsizesOf(ref);
    const min = sizes[0]!;
    const big = sizes.length > 1 ? sizes[1]! : min * 512;
    const kind = r.weighted({ small: 8, block: 4, mixed: 3, known: 4, unaligned: 2, zero: 1, topIas: 2, bigPa: 2, huge: 1 });
    const base = () => r.int(0, 63) * big + (r.chance(0.5) ? 0 : r.int(0, 511) * min);
    switch (kind) {
      case "small":
        return { iova: base(), paddr: r.int(0, 4095) * min, size: r.int(1, 8) * min };
      case "block":
        return { iova: r.int(0, 63) * big, paddr: r.int(0, 255) * big, size: r.int(1, 3) * big };
      case "mixed": {
        const iova = r.int(0, 63) * big - r.int(0, 4) * min;
        return { iova: Math.max(0, iova), paddr: Math.max(0, iova) + r.int(0, 8) * big, size: big + r.int(1, 8) * min };
      }
      case "known": {
        const known = this.ranges.get(ref) ?? [];
        if (known.length === 0) return { iova: base(), paddr: base(), size: min };
        const k = r.pick(known);
        // Over, inside or around an earlier mapping (EEXIST, or a block over a table).
        const iova = r.chance(0.5) ? k.iova - (k.iova % big) : k.iova;
        return { iova, paddr: r.int(0, 255) * big, size: r.chance(0.5) ? big : k.size };
      }
      case "unaligned":
        return { iova: base() + r.pick([1, 0x800, min / 2]), paddr: r.int(0, 100) * min + (r.chance(0.5) ? 0x10 : 0), size: r.int(1, 4) * min + r.pick([0, 1, 0x200]) };
      case "zero":
        return { iova: base(), paddr: base(), size: 0 };
      case "topIas": {
        // The last pages below the input size, running past it: ERANGE after some pages mapped.
        const top = this.iasOf(ref);
        const before = r.int(1, 4);
        return { iova: top - before * min, paddr: r.int(0, 100) * min, size: (before + r.int(0, 3)) * min };
      }
      case "bigPa":
        return { iova: base(), paddr: r.pick([2 ** 48, 2 ** 50, 2 ** 52 - min, 2 ** 44]), size: r.int(1, 3) * min };
      case "huge":
        return { iova: r.pick([2 ** 48, 2 ** 50, 2 ** 52]), paddr: 0, size: min };
    }
  }

  private rememberMap(ref: string | number, iova: number, size: number): void {
    let l = this.ranges.get(ref);
    if (l === undefined) {
      l = [];
      this.ranges.set(ref, l);
    }
    l.push({ iova, size });
    if (l.length > 16) l.shift();
  }

  /** IOVA ranges the device's domain or handles may cover. */
  private dmaTarget(): { iova: number; size: number } {
    const r = this.r;
    const all = [...this.ranges.values()].flat();
    if (all.length > 0 && r.chance(0.7)) {
      const k = r.pick(all);
      return { iova: k.iova + r.int(0, 3) * K4, size: r.pick([1, 8, K4, 2 * K4, k.size]) };
    }
    return { iova: r.int(0, 1 << 20) * K4, size: r.pick([1, 64, K4]) };
  }

  private pasid(dev: string): number {
    const r = this.r;
    const max = devIommu(this.m.devices.get(dev)!.dev)?.maxPasids ?? 0;
    if (max > 1 && r.chance(0.8)) return r.int(1, Math.min(max - 1, 8));
    return r.pick([0, 1, 2, 5, 1 << 20]);
  }

  private make(kind: Exclude<EventKey, "expect" | "concurrently" | NotFuzzed>): EventSpec {
    const r = this.r;
    const m = this.m;
    switch (kind) {
      case "iommu_register": {
        const unreg = this.instNames.filter((n) => !m.instances.get(n)!.iommu.listed);
        return { iommu_register: unreg.length > 0 && r.chance(0.8) ? r.pick(unreg) : r.pick(this.instNames) };
      }
      case "iommu_unregister":
        return { iommu_unregister: r.pick(this.instNames) };
      case "device_add":
        return { device_add: this.device((n) => !m.devices.get(n)!.dev.registered) };
      case "device_del":
        return { device_del: this.device((n) => m.devices.get(n)!.dev.registered) };
      case "driver_register":
        return { driver_register: r.pick(this.drvNames.length > 0 ? this.drvNames : ["none"]) } as EventSpec;
      case "driver_unregister":
        return { driver_unregister: r.pick(this.drvNames.length > 0 ? this.drvNames : ["none"]) } as EventSpec;
      case "driver_bind": {
        const device = this.device((n) => m.devices.get(n)!.dev.driver === null);
        const bus = m.devices.get(device)!.dev.bus;
        const matching = this.drvNames.filter((d) => m.drivers.get(d)!.bus === bus);
        const driver = matching.length > 0 && r.chance(0.85) ? r.pick(matching) : r.pick(this.drvNames);
        return { driver_bind: { device, driver } };
      }
      case "driver_unbind":
        return { driver_unbind: this.device((n) => m.devices.get(n)!.dev.driver !== null) };
      case "domain_alloc": {
        const name = r.pick(DOMAIN_NAMES);
        this.declaredDomains.add(name);
        return { domain_alloc: { name, device: this.device(this.withGroup) } };
      }
      case "domain_free":
        return { domain_free: this.domainRef() };
      case "attach_group":
        return { attach_group: { domain: this.domainRef(), device: this.device(this.withGroup) } };
      case "attach_device":
        return { attach_device: { domain: this.domainRef(), device: this.device(this.withGroup) } };
      case "detach": {
        const device = this.device(this.withGroup);
        return r.chance(0.5) ? { detach: { device } } : { detach: { device, domain: this.domainRef() } };
      }
      case "attach_pasid":
      case "detach_pasid":
      case "replace_pasid": {
        const device = this.device((n) => (devIommu(m.devices.get(n)!.dev)?.maxPasids ?? 0) > 0);
        const a = { domain: this.domainRef(), device, pasid: this.pasid(device) };
        return kind === "attach_pasid" ? { attach_pasid: a } : kind === "detach_pasid" ? { detach_pasid: a } : { replace_pasid: a };
      }
      case "claim_dma_owner": {
        const c: { device: string; owner: string; group?: boolean } = { device: this.device(this.withGroup), owner: r.pick(OWNERS) };
        if (r.chance(0.4)) c.group = true;
        return { claim_dma_owner: c };
      }
      case "release_dma_owner": {
        const c: { device: string; group?: boolean } = { device: this.device((n) => devGroup(m.devices.get(n)!.dev)?.owner != null) };
        if (r.chance(0.4)) c.group = true;
        return { release_dma_owner: c };
      }
      case "group_type":
        return { group_type: { device: this.device(this.withGroup), type: r.pick(["identity", "DMA", "DMA-FQ", "auto"] as const) } };
      case "map": {
        const domain = this.domainRef();
        const a = this.mapArgs(domain);
        this.rememberMap(domain, a.iova, a.size);
        const e: NonNullable<EventSpec["map"]> = { domain, iova: a.iova, paddr: a.paddr, size: a.size };
        if (r.chance(0.25)) e.prot = r.pick(["r", "w", "rw"] as const);
        return { map: e };
      }
      case "unmap": {
        const domain = this.domainRef();
        const known = this.ranges.get(domain) ?? [];
        const min = this.pgsizesOf(domain)[0]!;
        if (known.length > 0 && r.chance(0.75)) {
          const k = r.pick(known);
          const part = r.weighted({ whole: 5, head: 2, sub: 1, bad: 1 });
          const size = part === "whole" ? k.size : part === "head" ? Math.max(min, k.size - min) : part === "sub" ? min : k.size + 0x10;
          return { unmap: { domain, iova: part === "sub" ? k.iova + min : k.iova, size } };
        }
        return { unmap: { domain, iova: r.int(0, 4096) * min + (r.chance(0.1) ? 0x100 : 0), size: r.int(0, 8) * min } };
      }
      case "dma_map": {
        const device = this.device(this.withGroup);
        const name = r.pick(HANDLE_NAMES);
        this.declaredHandles.add(name);
        const e: NonNullable<EventSpec["dma_map"]> = { device, name };
        if (r.chance(0.3)) {
          const n = r.int(1, 4);
          const sg: [number, number][] = [];
          for (let i = 0; i < n; i++) {
            const pa = r.chance(0.1) ? r.pick([2 ** 48, 2 ** 50, 2 ** 44]) : r.int(0, 1 << 20) * K4 + (r.chance(0.3) ? r.int(0, K4 - 1) : 0);
            sg.push([pa, r.chance(0.05) ? 0 : r.pick([512, K4, 3 * K4, 64 * K4, M2])]);
          }
          e.sg = sg;
        } else {
          e.paddr = r.chance(0.08) ? r.pick([2 ** 48, 2 ** 50, 2 ** 36, 2 ** 40]) : r.int(0, 1 << 20) * K4 + (r.chance(0.3) ? r.int(0, K4 - 1) : 0);
          // 1 GiB exhausts a 32-bit IOVA space; rare, as a table of 4K pages mapping it is slow to walk for every snapshot.
          // 16 MiB fills a 24-bit DMA mask's IOVA space (the allocator flushes its caches, then fails).
          e.size = r.chance(0.04) ? 0 : r.chance(0.01) ? G1 : r.pick([1, 64, K4, K4 + 1, 8 * K4, M2, 8 * M2]);
        }
        if (r.chance(0.3)) e.dir = r.pick(["bidirectional", "to_device", "from_device"] as const);
        return { dma_map: e };
      }
      case "dma_unmap": {
        const handles = [...this.declaredHandles];
        if (handles.length === 0) return this.make("dma_map");
        const name = r.pick(handles);
        const h = m.dmaHandles.get(name);
        const device = h !== undefined && r.chance(0.85) ? h.device : this.device(this.withGroup);
        return { dma_unmap: { device, name } };
      }
      case "device_dma": {
        const handles = [...this.declaredHandles];
        const e: NonNullable<EventSpec["device_dma"]> = { device: this.device(this.withGroup) };
        if (handles.length > 0 && r.chance(0.4)) {
          const name = r.pick(handles);
          const h = m.dmaHandles.get(name);
          if (h !== undefined && r.chance(0.85)) e.device = h.device;
          e.handle = name;
          if (r.chance(0.3)) e.size = r.pick([1, K4, 4 * K4]);
        } else {
          const t = this.dmaTarget();
          e.iova = t.iova;
          e.size = t.size;
        }
        if (r.chance(0.5)) e.dir = r.pick(["read", "write"] as const);
        return { device_dma: e };
      }
      case "advance_time":
        return { advance_time: r.pick([1, 5, 10, 11, 50]) };
    }
  }
}
