/**
 * A model speed-up with no kernel counterpart: deferred probe at a cost
 * linear in the devices, with the kernel's outcome.
 *
 * The kernel retries every deferred device on every trigger, and every
 * successful bind triggers: a machine whose IOMMU driver loads late retries
 * devices x binds times. Most retries change nothing: the device defers
 * again for the reason it deferred before (its IOMMU is still not
 * registered). This index files each deferred device under what it waits
 * for — the firmware node of the supplier it needs (an IOMMU instance that
 * is not registered, or registered but not ready), as fw_devlink keys its
 * suppliers — and retries a device only when its wait may have ended: its
 * supplier appeared, a driver went away, or its deferral named no supplier
 * (a driver deferring on its own, a group without a default domain: those
 * are retried on every trigger, as the kernel does).
 *
 * Skipping a retry must not change what the kernel's lists would hold, nor
 * the order in which devices bind later. The kernel's two lists behave as
 * one queue (the active list, then the pending list): the work item pops
 * the head, and a device that defers again goes to the tail. A retry that
 * changes nothing therefore only rotates the queue; the queue's cyclic order
 * changes only where devices are added (at the tail) or removed. So the
 * index keeps the deferred devices on a circle in queue order with a head,
 * and the trigger's active list as the stretch from the head to a window end.
 * The work item jumps the head from one device whose wait may have ended to
 * the next, in circle order, and past the window end when none is left in
 * it: exactly where the kernel's loop would be after retrying everything in
 * between. Positions are compared through labels on the circle (modulo 2^52),
 * so moving the head costs nothing; a device that defers again keeps its
 * place and its label. `DriverCore.deferredProbe = "literal"` runs the
 * kernel's lists instead; a property test checks both reach the same states
 * and bind in the same order.
 */
import type { DeferredLists, SkipSummary } from "./deferred-lists.ts";
import type { Device } from "./device.ts";
import type { FwnodeHandle } from "./fwnode.ts";

/** Labels live on a circle of this many positions. */
const L = 2 ** 52;
/** The gap left between labels of devices added one after another. */
const GAP = 2 ** 16;

class Node {
  prev: Node = this;
  next: Node = this;
  label = 0;
  /** The label it had when the work item took it off the lists: its place, if it defers again. */
  lastLabel = -1;
  /** The supplier it waits for (null: it is retried on every trigger). */
  supplier: FwnodeHandle | null = null;
  woken = false;
  /** The run of the work item that last retried it. */
  retriedRun = -1;
  constructor(readonly dev: Device) {}
}

function mod(x: number): number {
  return x < 0 ? x + L : x;
}

export class IndexedDeferredLists implements DeferredLists {
  readonly mode = "indexed" as const;
  private readonly nodes = new Map<Device, Node>();
  /** The queue's head: the next device the work item would retry. */
  private head: Node | null = null;
  private size = 0;
  /** The last device of the active list (the trigger's window), or null when the active list is empty. */
  private windowEnd: Node | null = null;
  /** Listed devices waiting for a supplier. */
  private readonly waiting = new Map<FwnodeHandle, Set<Node>>();
  /** Listed devices whose wait may have ended: retried when the work item reaches them. */
  private readonly woken = new Set<Node>();
  /** The woken devices in circle order from the head, for the current run (null: to be sorted). */
  private order: Node[] | null = null;
  private orderPos = 0;
  private run = 0;
  private running = false;
  /** Devices retried in this run that deferred again (they are not counted as skipped). */
  private redeferred = 0;
  /** Whether this run found an active list to work through (a run that finds none skips nothing). */
  private hadWindow = false;

  add(dev: Device): void {
    if (dev.deferredProbe) return;
    let n = this.nodes.get(dev);
    if (n === undefined) {
      n = new Node(dev);
      this.nodes.set(dev, n);
    }
    this.insertAtTail(n);
    dev.deferredProbe = true;
    n.supplier = dev.deferredProbeSupplier;
    if (n.supplier === null) {
      this.markWoken(n);
      // At the tail it comes after every woken device still ahead in this run's order.
      if (this.order !== null) this.order.push(n);
    } else {
      let set = this.waiting.get(n.supplier);
      if (set === undefined) {
        set = new Set();
        this.waiting.set(n.supplier, set);
      }
      set.add(n);
    }
    if (this.running && n.retriedRun === this.run) this.redeferred++;
  }

  del(dev: Device): void {
    if (!dev.deferredProbe) return;
    const n = this.nodes.get(dev)!;
    this.forget(n);
    this.unlink(n);
    dev.deferredProbe = false;
  }

  splice(): void {
    if (this.head !== null) this.windowEnd = this.head.prev;
  }

  next(): Device | null {
    const end = this.windowEnd;
    if (end === null || this.head === null) return null;
    this.hadWindow = true;
    if (this.order === null) {
      const h = this.head.label;
      this.order = [...this.woken].sort((a, b) => mod(a.label - h) - mod(b.label - h));
      this.orderPos = 0;
    }
    const order = this.order;
    while (this.orderPos < order.length) {
      const n = order[this.orderPos]!;
      if (!n.woken || !n.dev.deferredProbe) {
        this.orderPos++;
        continue;
      }
      const h = this.head.label;
      if (mod(n.label - h) > mod(end.label - h)) break;
      this.orderPos++;
      // Every device between the head and this one would defer again unchanged: the queue rotates past them.
      this.head = n;
      this.forget(n);
      n.lastLabel = n.label;
      n.retriedRun = this.run;
      this.unlink(n);
      n.dev.deferredProbe = false;
      return n.dev;
    }
    // No device in the window can probe: the kernel retries them all and they end where they were.
    this.head = end.next;
    this.windowEnd = null;
    return null;
  }

  devices(): Device[] {
    const out: Device[] = [];
    const h = this.head;
    if (h === null) return out;
    let n = h;
    do {
      out.push(n.dev);
      n = n.next;
    } while (n !== h);
    return out;
  }

  wake(supplier: FwnodeHandle): void {
    const set = this.waiting.get(supplier);
    if (set === undefined) return;
    this.waiting.delete(supplier);
    for (const n of set) this.markWoken(n);
    this.order = null;
  }

  wakeAll(): void {
    for (const set of this.waiting.values()) for (const n of set) this.markWoken(n);
    this.waiting.clear();
    this.order = null;
  }

  beginRun(): void {
    this.run++;
    this.running = true;
    this.redeferred = 0;
    this.hadWindow = false;
    this.order = null;
  }

  endRun(): SkipSummary {
    this.running = false;
    this.order = null;
    const bySupplier = new Map<string, number>();
    for (const [fw, set] of this.waiting) bySupplier.set(fw.name, set.size);
    return { skipped: this.hadWindow ? this.size - this.redeferred : 0, bySupplier };
  }

  private markWoken(n: Node): void {
    n.woken = true;
    this.woken.add(n);
  }

  /** Takes a device out of the wait index (it leaves the lists, or is being retried). */
  private forget(n: Node): void {
    if (n.woken) {
      n.woken = false;
      this.woken.delete(n);
    } else if (n.supplier !== null) {
      const set = this.waiting.get(n.supplier);
      set?.delete(n);
      if (set?.size === 0) this.waiting.delete(n.supplier);
    }
  }

  /** Inserts at the queue's tail, just before the head (the kernel's list_add_tail on the pending list). */
  private insertAtTail(n: Node): void {
    const head = this.head;
    if (head === null) {
      n.prev = n.next = n;
      n.label = n.lastLabel >= 0 ? n.lastLabel : 0;
      this.head = n;
      this.size = 1;
      return;
    }
    const tail = head.prev;
    n.label = this.labelBetween(tail, head, n.lastLabel);
    n.prev = tail;
    n.next = head;
    tail.next = n;
    head.prev = n;
    this.size++;
  }

  /** A label strictly between `a` and `b` (circle order), relabelling the circle when they are adjacent. */
  private labelBetween(a: Node, b: Node, hint: number): number {
    const room = a === b ? L : mod(b.label - a.label);
    // A device the work item retried goes back to its own place when nothing was added there meanwhile.
    if (hint >= 0) {
      const off = mod(hint - a.label);
      if (off > 0 && off < room) return hint;
    }
    if (room > 2 * GAP) return mod(a.label + GAP);
    if (room >= 2) return mod(a.label + Math.floor(room / 2));
    this.relabel();
    return mod(a.label + GAP);
  }

  /** Spreads the labels out again, in circle order from the head (a and b keep their order). */
  private relabel(): void {
    const h = this.head!;
    let n = h;
    let label = 0;
    do {
      n.label = label;
      label += GAP;
      n = n.next;
    } while (n !== h);
  }

  private unlink(n: Node): void {
    if (this.size === 1) {
      this.head = null;
      this.windowEnd = null;
    } else {
      if (n === this.windowEnd) this.windowEnd = n === this.head ? null : n.prev;
      if (n === this.head) this.head = n.next;
      n.prev.next = n.next;
      n.next.prev = n.prev;
    }
    n.prev = n.next = n;
    this.size--;
  }
}
