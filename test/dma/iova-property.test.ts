import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IOVA_RANGE_CACHE_MAX_SIZE, type IovaDomain, type IovaNode } from "../../src/dma/iova.ts";
import { roundupPowOfTwo } from "../../src/dma/iova/log2.ts";
import { isErr } from "../../src/lib/errno.ts";
import { domain, expectConsistent, ok, span } from "./iova-helpers.ts";

// A small IOVA space that straddles 4 GiB: 256 pfns below it, 256 above.
const START = 0xf_ff00;
const TOP = 0x10_00ff;
/** Limits anywhere in the space; often 4 GiB - 1, the top, or just under 4 GiB - 1 (cutting cached ranges). */
const limitArb = fc.oneof(
  fc.integer({ min: START, max: TOP }),
  fc.constantFrom(0xf_ffff, TOP),
  fc.integer({ min: 0xf_fff0, max: 0xf_ffff }),
);

type Op =
  | { op: "alloc"; size: number; limit: number; aligned: boolean }
  | { op: "allocFast"; size: number; limit: number; flush: boolean; cpu: number }
  | { op: "free"; pick: number; interior: boolean }
  | { op: "drain"; cls: number }
  | { op: "hotplug"; online: boolean }
  | { op: "flush" };

const sizeArb = fc.integer({ min: 1, max: 40 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant("alloc" as const), size: sizeArb, limit: limitArb, aligned: fc.boolean() }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("allocFast" as const),
      size: sizeArb,
      limit: limitArb,
      flush: fc.boolean(),
      cpu: fc.integer({ min: 0, max: 1 }),
    }),
  },
  { weight: 8, arbitrary: fc.record({ op: fc.constant("free" as const), pick: fc.nat(), interior: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("drain" as const), cls: fc.integer({ min: 0, max: IOVA_RANGE_CACHE_MAX_SIZE - 1 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("hotplug" as const), online: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("flush" as const) }) },
);

interface Held {
  pfn: number;
  len: number;
  /** Set for tree allocations; fast ones are freed with freeIovaFast(pfn, size). */
  node: IovaNode | null;
  size: number;
}

/** Whether the tree has a free, suitably aligned run of `size` pfns in [START, limit]. */
function treeHasRoom(d: IovaDomain, size: number, limit: number, align: number): boolean {
  for (let lo = Math.ceil(START / align) * align; lo + size - 1 <= limit; lo += align) {
    let free = true;
    for (let p = lo; p < lo + size && free; p++) free = d.findIova(p) === null;
    if (free) return true;
  }
  return false;
}

class Model {
  readonly held: Held[] = [];
  private readonly used = new Uint8Array(TOP - START + 1);

  take(d: IovaDomain, pfn: number, len: number, size: number, limit: number, align: number, node: IovaNode | null): void {
    expect(pfn).toBeGreaterThanOrEqual(START);
    expect(pfn + len - 1).toBeLessThanOrEqual(limit);
    expect(pfn % align).toBe(0);
    expect(span(d, d.findIova(pfn)!)).toEqual([pfn, pfn + len - 1]);
    for (let p = pfn; p < pfn + len; p++) {
      expect(this.used[p - START], `pfn ${p} handed out twice`).toBe(0);
      this.used[p - START] = 1;
    }
    this.held.push({ pfn, len, node, size });
  }

  release(i: number): Held {
    const h = this.held.splice(i, 1)[0]!;
    this.used.fill(0, h.pfn - START, h.pfn - START + h.len);
    return h;
  }
}

function step(d: IovaDomain, m: Model, o: Op): void {
  switch (o.op) {
    case "alloc": {
      const before = d.max32AllocSize;
      const r = d.allocIova(o.size, o.limit, o.aligned);
      const align = o.aligned ? roundupPowOfTwo(o.size) : 1;
      if (!isErr(r)) {
        m.take(d, d.pfnLo(r), o.size, o.size, o.limit, align, r);
      } else if (o.limit >= d.dma32bitPfn || o.size < before) {
        // Only the 32-bit fail-fast may refuse a request the tree has room for.
        expect(treeHasRoom(d, o.size, o.limit, align)).toBe(false);
      }
      return;
    }
    case "allocFast": {
      const cpu = d.cpuIsOnline(o.cpu) ? o.cpu : 0;
      const before = d.max32AllocSize;
      const pfn = d.allocIovaFast(o.size, o.limit, o.flush, cpu);
      const len = o.size < 32 ? roundupPowOfTwo(o.size) : o.size;
      if (pfn !== 0) {
        m.take(d, pfn, len, o.size, o.limit, roundupPowOfTwo(len), null);
      } else if (o.limit >= d.dma32bitPfn || len < before) {
        expect(treeHasRoom(d, len, o.limit, roundupPowOfTwo(len))).toBe(false);
      }
      return;
    }
    case "free": {
      if (m.held.length === 0) return;
      const h = m.release(o.pick % m.held.length);
      if (h.node === null) d.freeIovaFast(h.pfn, h.size, d.currentCpu);
      else if (o.interior) d.freeIova(h.pfn + h.len - 1);
      else d.__freeIova(h.node);
      return;
    }
    case "drain":
      d.drainDepotWork(o.cls);
      return;
    case "hotplug":
      expect(o.online ? d.cpuOnline(1) : d.cpuOffline(1)).toBeUndefined();
      return;
    case "flush":
      d.flushRcaches();
      return;
  }
}

describe("IOVA allocator properties", () => {
  it("never hands out overlapping ranges, keeps limits and alignment, and fails only when it must", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), fc.integer({ min: 0, max: 1 }), (ops, cpu) => {
        const d = domain(START, { nrCpus: 2 });
        d.currentCpu = cpu;
        const m = new Model();
        for (const o of ops) {
          step(d, m, o);
          expectConsistent(d);
        }
        // Everything freed and the caches flushed: the tree is empty again...
        let below4G = false;
        for (let p = START; p <= 0xf_ffff && !below4G; p++) below4G = d.findIova(p) !== null;
        while (m.held.length > 0) step(d, m, { op: "free", pick: 0, interior: false });
        d.flushRcaches();
        expect(d.treeNodesLive).toBe(0);
        // ...freeing below 4 GiB has reset the fail-fast size, and each side of 4 GiB is one free range.
        if (below4G) expect(d.max32AllocSize).toBe(d.dma32bitPfn);
        if (d.max32AllocSize > 0x100) expect(span(d, d.allocIova(0x100, 0xf_ffff, false))).toEqual([START, 0xf_ffff]);
        expect(span(d, d.allocIova(0x100, TOP, false))).toEqual([0x10_0000, TOP]);
        expect(d.warnings).toEqual([]);
      }),
      { numRuns: 120 },
    );
  });

  it("never allocates over reserved pfns, and every reserved pfn stays in a range", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.tuple(fc.constant("reserve" as const), fc.integer({ min: START, max: TOP }), fc.integer({ min: 0, max: 40 })),
            fc.tuple(fc.constant("alloc" as const), fc.integer({ min: 1, max: 24 }), limitArb),
          ),
          { maxLength: 120 },
        ),
        (ops) => {
          const d = domain(START);
          const reserved = new Set<number>();
          for (const [op, a, b] of ops) {
            if (op === "reserve") {
              const hi = Math.min(a + b, TOP);
              const r = ok(d.reserveIova(a, hi));
              expect(d.pfnLo(r) <= hi && d.pfnHi(r) >= hi).toBe(true);
              for (let p = a; p <= hi; p++) reserved.add(p);
            } else {
              const r = d.allocIova(a, b, true);
              if (isErr(r)) continue;
              for (let p = d.pfnLo(r); p <= d.pfnHi(r); p++) expect(reserved.has(p)).toBe(false);
            }
            expectConsistent(d);
          }
          for (const p of reserved) expect(d.findIova(p)).not.toBeNull();
        },
      ),
      { numRuns: 150 },
    );
  });
});
