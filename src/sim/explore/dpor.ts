/**
 * DPOR for the systematic search (dfs.ts; docs/explore.md): the footprint
 * of each step taken, the vector clocks, and the races they reveal, each
 * adding a child to try at the racing step's node (Flanagan and
 * Godefroid's rule) and at the node where that step's run of steps began
 * (the bound's conservative point, Coons et al. 2013). See dfs.ts for the
 * rules in words.
 */
import { Device } from "../../base/device.ts";
import { devGroup } from "../../iommu/dev-iommu.ts";
import { OP_ACQUIRE, OP_LOCAL, OP_READ, OP_WRITE, type BlockState } from "./block.ts";
import { CHUNK, grow } from "./node-arrays.ts";

/** Entries of a vector clock: a block has at most 31 tasks (bit masks). */
const CLOCK = 32;

/** What DPOR reads of the search tree's current path, and the backtrack sets it adds to. */
export interface DporTree {
  /** Per node: the task chosen. */
  readonly chosen: Int8Array;
  /** Per node: its runnable tasks (a mask). */
  readonly enabled: Int32Array;
  /** Per node: the children to explore (the backtrack set; -1: every child). */
  readonly bt: Int32Array;
  /** The first `floor` nodes are the item's prefix: never backtracked. */
  readonly floor: number;
}

/** The footprints, clocks and races of the steps of the current path: one entry per node, typed arrays so a step allocates nothing. */
export class Dpor {
  /** Per node: the footprint of the step taken from it (op, key id, whether it touched something). */
  fop = new Int8Array(CHUNK);
  fkey = new Int32Array(CHUNK);
  feff = new Int8Array(CHUNK);
  /** Per node: the lock the step released (its key id; 0: none), an order between critical sections, not a race. */
  frel = new Int32Array(CHUNK);
  ftOff = new Int32Array(CHUNK);
  ftLen = new Int32Array(CHUNK);
  ftPool = new Int32Array(CHUNK * 4);
  /** Per node: the object the step's point names (its instance: the device of `dev->iommu a`), 0 for none. */
  fobj = new Int32Array(CHUNK);
  /** Per node: the vector clock of the step taken from it (CLOCK entries: the last step of each task that happens before it, -1 for none). */
  clk = new Int32Array(CHUNK * CLOCK);
  /** Per task of the running block: the node of its last step (-1 before its first). */
  private lastEv = new Int32Array(CLOCK).fill(-1);
  /** The node where the running block starts. */
  private blockBase = 0;
  /** The step being taken: its node, task, op and key (as the point it starts at announced them), and whether it is new (not a replay). */
  private curD = -1;
  private curU = 0;
  private curOp = OP_LOCAL;
  private curKey = 0;
  private curNew = false;
  private curObj = 0;
  /** Key ids: the names of state are the same in every run; a lock is numbered in the order the run first meets it (the same in a replayed prefix). */
  private readonly nameIds = new Map<string, number>();
  private lockIds = new Map<object, number>();
  /** Instances (devices, by name) and the instance each point's name ends with, as ids (cached: no allocation per step). */
  private readonly instIds = new Map<string, number>();
  private readonly pointIds = new Map<string, number>();
  /** Backtrack points DPOR added (including the bound's conservative ones). */
  racesFound = 0;

  constructor(private readonly tree: DporTree) {}

  /** Before each run. */
  runStart(): void {
    this.curD = -1;
    this.lockIds = new Map();
  }

  /** A block starts at node d. */
  blockStart(d: number): void {
    this.blockBase = d;
    this.lastEv.fill(-1);
  }

  /** The step task u takes from node d starts at the point (op, key); `isNew`: not a replay. */
  point(d: number, u: number, op: number, key: unknown, isNew: boolean): void {
    this.curNew = isNew;
    this.curD = d;
    this.curU = u;
    this.curOp = op;
    this.curKey = this.keyId(op, key);
    this.curObj = this.pointObj(op, key);
  }

  /** Room for n nodes (DfsPolicy.ensure calls it as its own arrays grow: grown alike, these stay as long as them). */
  ensure(n: number): void {
    this.fop = grow(this.fop, n);
    this.fkey = grow(this.fkey, n);
    this.feff = grow(this.feff, n);
    this.frel = grow(this.frel, n);
    this.ftOff = grow(this.ftOff, n);
    this.ftLen = grow(this.ftLen, n);
    this.fobj = grow(this.fobj, n);
    // A clock row for every node the arrays above hold, not just n: the tree skips this call until they are full.
    this.clk = grow(this.clk, this.fop.length * CLOCK - 1);
  }

  /** An object a step touched, as a number: a device by its name (the instance its points name), anything else by identity. */
  private objId(o: object): number {
    if (!(o instanceof Device)) return this.keyId(OP_ACQUIRE, o);
    let id = this.instIds.get(o.name);
    if (id === undefined) this.instIds.set(o.name, (id = this.keyId(OP_READ, `@${o.name}`)));
    return id;
  }

  /** The instance a read or write point names (`dev->iommu a`: a), as an object id; 0 for none. */
  private pointObj(op: number, key: unknown): number {
    if ((op !== OP_READ && op !== OP_WRITE) || typeof key !== "string") return 0;
    let id = this.pointIds.get(key);
    if (id === undefined) {
      const sp = key.lastIndexOf(" ");
      const inst = key.slice(sp + 1);
      id = sp < 0 ? 0 : (this.instIds.get(inst) ?? this.keyId(OP_READ, `@${inst}`));
      if (sp >= 0) this.instIds.set(inst, id);
      this.pointIds.set(key, id);
    }
    return id;
  }

  /** Whether node j's touched objects include id o. */
  private touches(j: number, o: number): boolean {
    const a = this.ftOff[j]!;
    const n = this.ftLen[j]!;
    if (n < 0) return true;
    for (let x = 0; x < n; x++) if (this.ftPool[a + x] === o) return true;
    return false;
  }

  /** A footprint key as a number: names of state by name (positive), locks by identity (negative). */
  private keyId(op: number, key: unknown): number {
    if (op === OP_LOCAL || key === null) return 0;
    if (typeof key === "string") {
      let id = this.nameIds.get(key);
      if (id === undefined) this.nameIds.set(key, (id = this.nameIds.size + 1));
      return id;
    }
    let id = this.lockIds.get(key as object);
    if (id === undefined) this.lockIds.set(key as object, (id = -(this.lockIds.size + 1)));
    return id;
  }

  /** Whether the steps from nodes j and (op, key, eff) conflict: both touched something, or the same key with a write or a lock taken. */
  private dependent(j: number, op: number, key: number, eff: boolean, d = -1): boolean {
    const oj = this.fop[j]!;
    if (oj !== OP_LOCAL && op !== OP_LOCAL && this.fkey[j] === key && !(oj === OP_READ && op === OP_READ)) return true;
    // A pending step (d < 0) may touch anything: it conflicts with every step that touched or accessed something.
    if (d < 0) return eff && (this.feff[j] !== 0 || oj !== OP_LOCAL);
    // What a step touched it may have changed: it conflicts with what the other touched, and with the instance its point names.
    const od = this.fobj[d]!;
    const ob = this.fobj[j]!;
    if (od !== 0 && this.feff[j] !== 0 && this.touches(j, od)) return true;
    if (ob !== 0 && this.feff[d] !== 0 && this.touches(d, ob)) return true;
    if (this.feff[j] === 0 || this.feff[d] === 0) return false;
    const a = this.ftOff[j]!;
    const an = this.ftLen[j]!;
    for (let x = 0; x < an; x++) if (this.touches(d, this.ftPool[a + x]!)) return true;
    return an < 0;
  }

  /**
   * The races of a step of task u (from node d, or its next step if d < 0)
   * with the block's earlier steps: each step j of another task that
   * conflicts with it and does not happen before u's previous step nor
   * before a later conflicting step (its vector clock) is a race, and j's
   * node gets u as a child to try (all of its runnable tasks if u could
   * not run there: FG's rule). `row` gets the step's clock (d >= 0).
   */
  private races(d: number, u: number, op: number, key: number, eff: boolean, from: number): void {
    const W = CLOCK;
    const c = this.clk;
    const chosen = this.tree.chosen;
    const prev = this.lastEv[u]!;
    // The clock of u's state so far, in a scratch row when the step is a pending one (d < 0).
    const row = (d >= 0 ? d : from) * W;
    if (prev >= 0) c.copyWithin(row, prev * W, prev * W + W);
    else c.fill(-1, row, row + W);
    const acq = op === OP_ACQUIRE;
    if (acq) {
      // Taking a lock races with the last time another task took it, unless that happens before (the critical sections' order is the choice).
      for (let j = from - 1; j >= this.blockBase; j--) {
        if (this.fop[j] !== OP_ACQUIRE || this.fkey[j] !== key) continue;
        const q = chosen[j]!;
        if (q !== u && j > c[row + q]!) this.backtrackAt(j, u);
        break;
      }
    }
    for (let j = from - 1; j >= this.blockBase; j--) {
      const q = chosen[j]!;
      if (q === u || j <= c[row + q]!) continue;
      // The release of the lock it takes: an order (the clock), not a race (it could not take the lock before).
      const released = acq && this.frel[j] === key;
      const dep = this.dependent(j, op, key, eff, d);
      if (!released && !dep) continue;
      // Taking the same lock: the race is the one found above.
      const sameLock = acq && this.fop[j] === OP_ACQUIRE && this.fkey[j] === key && !(eff && this.feff[j] !== 0);
      if (!released && !sameLock) {
        this.backtrackAt(j, u);
      }
      for (let k = 0; k < W; k++) if (c[j * W + k]! > c[row + k]!) c[row + k] = c[j * W + k]!;
    }
    if (d >= 0) c[row + u] = d;
  }

  /** Adds u as a child to try at node j (FG's rule), and at the node where the run of the task stepping at j began (the bound's conservative point). */
  private backtrackAt(j: number, u: number): void {
    this.racesFound++;
    this.addChild(j, u);
    let k = j;
    const chosen = this.tree.chosen;
    while (k > this.blockBase && chosen[k - 1] === chosen[k]) k--;
    if (k !== j) this.addChild(k, u);
  }

  private addChild(j: number, u: number): void {
    const t = this.tree;
    if (j < t.floor) return; // the prefix explores every child (other items)
    const en = t.enabled[j]!;
    t.bt[j]! |= (en & (1 << u)) !== 0 ? 1 << u : en;
  }

  /** DPOR's bookkeeping after a step: a new step's footprint, clock and races; a replayed one's only its place. */
  step(st: BlockState, touched: readonly object[] | null): void {
    if (this.curD < 0) return;
    const d = this.curD;
    const u = this.curU;
    this.curD = -1;
    if (this.curNew) {
      // The objects it touched (devices, groups, the locks it took), as key ids.
      const off = d > this.blockBase ? this.ftOff[d - 1]! + Math.max(this.ftLen[d - 1]!, 0) : 0;
      // Not tracked (invariants off): it may have touched anything.
      let n = touched === null ? -1 : 0;
      if (touched !== null) {
        for (const o of touched) {
          if (off + n + 2 >= this.ftPool.length) this.ftPool = grow(this.ftPool, off + n + 2);
          this.ftPool[off + n++] = this.objId(o);
          // A device stands for its group too (a group's state is its members' state: ownership, domains).
          const g = o instanceof Device ? devGroup(o) : null;
          if (g !== null) this.ftPool[off + n++] = this.objId(g);
        }
      }
      this.ftOff[d] = off;
      this.ftLen[d] = n;
      const eff = n !== 0;
      this.fop[d] = this.curOp;
      this.fkey[d] = this.curKey;
      this.fobj[d] = this.curObj;
      this.feff[d] = eff ? 1 : 0;
      // A lock is released before the point that says so (mutexUnlock): the step that ends there released it.
      const at = st.tasks[u]!.last;
      this.frel[d] = at !== null && at.op === "unlock" ? this.keyId(OP_ACQUIRE, at.lock) : 0;
      this.races(d, u, this.curOp, this.curKey, eff, d);
    }
    this.lastEv[u] = d;
  }

  /** At a block's end (node `end`, or where the run stops in it): the next steps of the tasks that did not end race with the steps taken (touching something, for all we know). */
  blockEnd(st: BlockState, end: number): void {
    this.curD = -1;
    for (const t of st.tasks) {
      if (t.done) continue;
      this.races(-1, t.index, t.op, this.keyId(t.op, t.key), true, end);
    }
  }
}
