/**
 * The systematic search (docs/explore.md): depth-first over the scheduling
 * choices of every concurrently block, by stateless re-execution (each
 * schedule boots the machine afresh and replays the choices down to the
 * branch it tries next), with a bound on preemptions, and DPOR with sleep
 * sets as the partial-order reduction.
 *
 * A node is a scheduling point, numbered by the steps taken before it over
 * all blocks. Its children are its runnable tasks, in a fixed order: the one
 * the continuation rule picks first (so the first schedule is the default
 * one), then the others by letter. A child that switches away from a task
 * that could go on costs a preemption; children over the bound are cut.
 *
 * DPOR (Flanagan and Godefroid's, with vector clocks): a node first explores
 * one child; each step taken is checked against the block's earlier steps of
 * other tasks, and a conflicting step that does not happen before it (a
 * race) gets the stepping task added to its node's children to try (all the
 * node's runnable tasks if that task could not run there). A step's
 * footprint is the point it starts at (the contract: the lock it takes, the
 * state it reads or writes with its instance) and the objects it touched
 * (the model's touch tracking: devices, each standing for its group too,
 * groups, and the locks it took). Two steps conflict when their points name
 * the same state and one writes, or when one touched what the other touched
 * or what the other's point names. Taking a lock races with the last time
 * another task took it; the release before is an order, not a race. At a
 * block's end, tasks that did not end (a deadlock, a run given up) race as
 * if their next step touched everything. With the bound, a race also adds
 * its task where the racing step's run of steps began (the bounded variant's
 * conservative point, Coons et al. 2013), so that the reversal can be
 * reached with no more preemptions. The sleep set of a node holds the tasks
 * whose next step was explored from an ancestor and commutes with every
 * step since (the points' rule, and not both steps touching something).
 *
 * The search tree is split into items (a prefix of choices and the subtree
 * below it); the prefix's nodes explore every child (each in an item), so
 * races found below never need a child of a prefix node; an item's sleep
 * sets follow from the prefix alone, since the siblings before a child in
 * the fixed order are explored before it wherever they are explored. So
 * items can be searched in any order, by any worker, and give one result
 * whatever the number of workers.
 */
import { Device } from "../../base/device.ts";
import { devGroup } from "../../iommu/dev-iommu.ts";
import type { Scenario } from "../scenario/schema.ts";
import { playScenario, type Failure, type PlayResult, type RunOptions } from "../runner.ts";
import { independentOps, OP_ACQUIRE, OP_LOCAL, OP_READ, OP_WRITE, type BlockState, type SchedulePolicy } from "./block.ts";

/** The node arrays grow by this many entries at a time. */
const CHUNK = 256;
/** Entries of a vector clock: a block has at most 31 tasks (bit masks). */
const CLOCK = 32;

function grow<T extends Int32Array | Int8Array>(a: T, n: number): T {
  if (n < a.length) return a;
  const b = new (a.constructor as new (n: number) => T)(Math.max(a.length * 2, n + CHUNK));
  b.set(a);
  return b;
}

/**
 * Whether a step touched something, for the sleep sets: anything it touched, the lock it took included
 * (a lock is touched by the step that takes it, which may change what the lock guards).
 */
function effectOf(effect: boolean, touched: readonly object[] | null | undefined): boolean {
  return touched === undefined || touched === null ? effect : touched.length > 0;
}

/** The search state: one entry per node of the current path, typed arrays so a step allocates nothing. */
export class DfsPolicy implements SchedulePolicy {
  enabled = new Int32Array(CHUNK);
  sleep = new Int32Array(CHUNK);
  done = new Int32Array(CHUNK);
  chosen = new Int8Array(CHUNK);
  last = new Int8Array(CHUNK);
  pre = new Int32Array(CHUNK);
  /** Per node: the tried children whose step touched something. */
  effDone = new Int32Array(CHUNK);
  /** Per node: the sleeping tasks whose step (when it was tried) touched something. */
  sleepEff = new Int32Array(CHUNK);
  /** Per node: the children to explore (DPOR's backtrack set; -1: every child, as in the prefix and without DPOR). */
  bt = new Int32Array(CHUNK);
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
  /** The step just chosen, whose child sleep set waits for its effect. */
  private pendD = -1;
  private pendU = 0;
  private pendOp = OP_LOCAL;
  private pendKey: unknown = null;
  /** Per prefix node: the children before its choice that touched something (from the split). */
  prefixEff: readonly number[] = [];
  /** Nodes on the current path (created by the runs so far). */
  len = 0;
  /** Nodes whose choice the next run replays. */
  replay = 0;
  /** The first `floor` nodes are the item's prefix: never backtracked. */
  floor = 0;
  /** Choices of the prefix (the item), replayed as DFS order would have reached them. */
  prefix: readonly number[] = [];
  /** The node the running schedule stands at. */
  private depth = 0;
  private blockStarted = false;
  /** Children cut by the bound, over the whole search. */
  boundCuts = 0;
  /** Runs abandoned because every runnable task slept (equivalent to a schedule explored). */
  sleepBlocked = 0;

  constructor(
    readonly bound: number,
    /** Sleep sets on (off: every interleaving within the bound, for tests and the benchmark's naive count). */
    readonly reduce = true,
    /** DPOR on (with sleep sets): a node explores only the children its races ask for. */
    readonly dpor = reduce,
  ) {}

  /** Starts the search of the subtree below `prefix`. */
  reset(prefix: readonly number[], prefixEff: readonly number[] = []): void {
    this.prefix = prefix;
    this.prefixEff = prefixEff;
    this.floor = prefix.length;
    this.len = 0;
    this.replay = 0;
    this.boundCuts = 0;
    this.sleepBlocked = 0;
    this.racesFound = 0;
  }

  /** Before each run. */
  begin(): void {
    this.depth = 0;
    this.pre[0] = 0;
    this.sleep[0] = 0;
    this.sleepEff[0] = 0;
    this.pendD = -1;
    this.curD = -1;
    this.lockIds = new Map();
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

  blockStart(): void {
    this.blockStarted = true;
  }

  /** Whether choosing `u` at node `d` preempts the task that ran last. */
  private cost(d: number, u: number): number {
    const l = this.last[d]!;
    return l >= 0 && (this.enabled[d]! & (1 << l)) !== 0 && u !== l ? 1 : 0;
  }

  /** The children of node `d` not yet tried and not asleep, within the bound, first in the fixed order; -1 if none. */
  private nextChild(d: number, next: number): number {
    const open = this.enabled[d]! & this.bt[d]! & ~this.done[d]! & ~this.sleep[d]!;
    if (open === 0) return -1;
    if ((open & (1 << next)) !== 0 && this.pre[d]! + this.cost(d, next) <= this.bound) return next;
    for (let m = open; m !== 0; m &= m - 1) {
      const u = 31 - Math.clz32(m & -m);
      if (this.pre[d]! + this.cost(d, u) <= this.bound) return u;
    }
    return -1;
  }

  /** The continuation choice at node d (stored apart as `next` is not kept per node). */
  private nextOf(d: number): number {
    const l = this.last[d]!;
    const en = this.enabled[d]!;
    return l >= 0 && (en & (1 << l)) !== 0 ? l : 31 - Math.clz32(en & -en);
  }

  choose(st: BlockState): number {
    const d = this.depth++;
    this.ensure(d + 1);
    if (this.blockStarted) {
      this.blockStarted = false;
      this.blockBase = d;
      this.lastEv.fill(-1);
      if (d >= this.len) {
        this.sleep[d] = 0;
        this.sleepEff[d] = 0;
      }
    }
    let u: number;
    if (d < this.replay) {
      u = this.chosen[d]!;
      this.curNew = d === this.replay - 1;
      if (this.curNew) this.childSleep(d, u, st);
    } else if (d < this.floor) {
      // The prefix: the siblings before its choice in the fixed order count as explored.
      this.newNode(d, st);
      u = this.prefix[d]!;
      if ((st.enabled & (1 << u)) === 0 || (this.sleep[d]! & (1 << u)) !== 0) return -1;
      for (;;) {
        const c = this.nextChild(d, st.next);
        if (c < 0 || c === u) break;
        this.done[d]! |= 1 << c;
      }
      this.done[d]! |= 1 << u;
      this.effDone[d] = this.prefixEff[d] ?? -1;
      this.curNew = true;
      this.chosen[d] = u;
      this.len = d + 1;
      this.replay = d + 1;
      this.childSleep(d, u, st);
    } else {
      this.newNode(d, st);
      u = this.nextChild(d, st.next);
      if (u < 0) {
        this.sleepBlocked++;
        return -1;
      }
      if (this.dpor) this.bt[d] = 1 << u;
      this.done[d]! |= 1 << u;
      this.chosen[d] = u;
      this.curNew = true;
      this.len = d + 1;
      this.replay = d + 1;
      this.childSleep(d, u, st);
    }
    const t = st.tasks[u]!;
    this.curD = d;
    this.curU = u;
    this.curOp = t.op;
    this.curKey = this.keyId(t.op, t.key);
    this.curObj = this.pointObj(t.op, t.key);
    return u;
  }

  private ensure(n: number): void {
    if (n < this.enabled.length) return;
    this.enabled = grow(this.enabled, n);
    this.sleep = grow(this.sleep, n);
    this.done = grow(this.done, n);
    this.chosen = grow(this.chosen, n);
    this.last = grow(this.last, n);
    this.pre = grow(this.pre, n);
    this.effDone = grow(this.effDone, n);
    this.sleepEff = grow(this.sleepEff, n);
    this.bt = grow(this.bt, n);
    this.fop = grow(this.fop, n);
    this.fkey = grow(this.fkey, n);
    this.feff = grow(this.feff, n);
    this.frel = grow(this.frel, n);
    this.ftOff = grow(this.ftOff, n);
    this.ftLen = grow(this.ftLen, n);
    this.fobj = grow(this.fobj, n);
    this.clk = grow(this.clk, n * CLOCK);
  }

  private newNode(d: number, st: BlockState): void {
    this.enabled[d] = st.enabled;
    this.last[d] = st.last;
    this.done[d] = 0;
    this.effDone[d] = 0;
    this.bt[d] = -1;
  }

  /** Notes the step `u` takes from node d; its child's sleep set follows once its effect is known (`stepped`). */
  private childSleep(d: number, u: number, st: BlockState): void {
    const t = st.tasks[u]!;
    this.pendD = d;
    this.pendU = u;
    this.pendOp = t.op;
    this.pendKey = t.key;
    this.pre[d + 1] = this.pre[d]! + this.cost(d, u);
  }

  stepped(st: BlockState, effect: boolean, touched?: readonly object[] | null): void {
    if (this.dpor && this.curD >= 0) this.dporStep(st, touched ?? null);
    this.sleepStep(st, effectOf(effect, touched));
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
        const q = this.chosen[j]!;
        if (q !== u && j > c[row + q]!) this.backtrackAt(j, u);
        break;
      }
    }
    for (let j = from - 1; j >= this.blockBase; j--) {
      const q = this.chosen[j]!;
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
    while (k > this.blockBase && this.chosen[k - 1] === this.chosen[k]) k--;
    if (k !== j) this.addChild(k, u);
  }

  private addChild(j: number, u: number): void {
    if (j < this.floor) return; // the prefix explores every child (other items)
    const en = this.enabled[j]!;
    this.bt[j]! |= (en & (1 << u)) !== 0 ? 1 << u : en;
  }

  /** DPOR's bookkeeping after a step: a new step's footprint, clock and races; a replayed one's only its place. */
  private dporStep(st: BlockState, touched: readonly object[] | null): void {
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

  /** At a block's end (or where the run stops in it): the next steps of the tasks that did not end race with the steps taken (touching something, for all we know). */
  blockEnd(st: BlockState): void {
    if (!this.dpor) return;
    this.curD = -1;
    const end = this.depth;
    this.ensure(end + 1);
    for (const t of st.tasks) {
      if (t.done) continue;
      this.races(-1, t.index, t.op, this.keyId(t.op, t.key), true, end);
    }
  }

  private sleepStep(st: BlockState, effect: boolean): void {
    const d = this.pendD;
    if (d < 0) return;
    this.pendD = -1;
    const u = this.pendU;
    if (effect) this.effDone[d]! |= 1 << u;
    else this.effDone[d]! &= ~(1 << u);
    if (!this.reduce) {
      this.sleep[d + 1] = 0;
      this.sleepEff[d + 1] = 0;
      return;
    }
    const done = this.done[d]! & ~(1 << u);
    const cand = this.sleep[d]! | done;
    const effs = (this.sleepEff[d]! & this.sleep[d]!) | (this.effDone[d]! & done);
    let res = 0;
    for (let m = cand; m !== 0; m &= m - 1) {
      const b = m & -m;
      const t = st.tasks[31 - Math.clz32(b)]!;
      if (effect && (effs & b) !== 0) continue;
      if (independentOps(t.op, t.key, this.pendOp, this.pendKey)) res |= b;
    }
    this.sleep[d + 1] = res;
    this.sleepEff[d + 1] = res & effs;
  }

  /** After a run: moves to the next branch; false when the subtree is exhausted. */
  backtrack(): boolean {
    for (let d = this.len - 1; d >= this.floor; d--) {
      const u = this.nextChild(d, this.nextOf(d));
      if (u >= 0) {
        this.done[d]! |= 1 << u;
        this.chosen[d] = u;
        this.len = d + 1;
        this.replay = d + 1;
        return true;
      }
      // Count what the bound cut here.
      const open = this.enabled[d]! & this.bt[d]! & ~this.done[d]! & ~this.sleep[d]!;
      for (let m = open; m !== 0; m &= m - 1) this.boundCuts++;
    }
    return false;
  }

  /** The children of the node at the end of the prefix (after a run with `floor` = prefix length that stopped there). */
  children(d: number): number[] {
    const out: number[] = [];
    const saveDone = this.done[d]!;
    for (;;) {
      const c = this.nextChild(d, this.nextOf(d));
      if (c < 0) break;
      out.push(c);
      this.done[d]! |= 1 << c;
    }
    this.done[d] = saveDone;
    return out;
  }
}

/** A schedule that failed: its string, the failure, and its number in the search (1-based, DFS order). */
export interface Found {
  schedule: string;
  failure: Failure;
  /** Schedules run in the item up to and including this one. */
  index: number;
}

export interface ItemResult {
  /** Complete schedules run (sleep-blocked runs not counted). */
  schedules: number;
  /** Scheduler steps taken, replays included. */
  steps: number;
  boundCuts: number;
  sleepBlocked: number;
  found: Found | null;
}

/** Plays the scenario once on `policy` (no trace, no snapshot). */
export function playOnce(s: Scenario, opts: RunOptions, policy: SchedulePolicy): PlayResult {
  return playScenario(s, { ...opts, trace: false, policy });
}

/**
 * Searches the subtree below `prefix`, in DFS order, up to the first
 * failing schedule. `stop()` is asked between runs (a worker whose item
 * comes after a failure another found).
 */
export function searchItem(
  s: Scenario,
  opts: RunOptions,
  bound: number,
  item: DfsItem | readonly number[],
  stop: () => boolean = () => false,
  /** Sees every complete run (tests). */
  onRun?: (r: PlayResult) => void,
  reduce = true,
  /** Stop at the first failing schedule (tests may want every schedule). */
  stopAtFailure = true,
  /** Check the invariants after boot in the first schedule (the search's first item does; the boot is the same in every schedule). */
  checkBoot = true,
  /** DPOR on (with the sleep sets; off: sleep sets alone). */
  dpor = reduce,
): ItemResult {
  const pol = new DfsPolicy(bound, reduce, dpor);
  if ("prefix" in item) pol.reset(item.prefix, item.eff);
  else pol.reset(item);
  const out: ItemResult = { schedules: 0, steps: 0, boundCuts: 0, sleepBlocked: 0, found: null };
  let first = checkBoot;
  do {
    pol.begin();
    const r = playOnce(s, first ? opts : { ...opts, checkBoot: false }, pol);
    first = false;
    out.steps += r.steps;
    if (!r.abandoned) {
      out.schedules++;
      onRun?.(r);
      if (r.failures.length > 0 && out.found === null) {
        out.found = { schedule: r.schedule, failure: r.failures[0]!, index: out.schedules };
        if (stopAtFailure) break;
      }
    }
    if (stop()) break;
  } while (pol.backtrack());
  out.boundCuts = pol.boundCuts;
  out.sleepBlocked = pol.sleepBlocked;
  return out;
}

/** How many more times the split divides its first item (the default schedule's subtree) into its children. */
export const LEFT_SPLITS = 8;

/** A part of the search: the subtree below a prefix of choices. */
export interface DfsItem {
  readonly prefix: readonly number[];
  /** Per prefix node: the children before the prefix's choice whose step touched something (their sleep sets need it). */
  readonly eff: readonly number[];
}

/**
 * Splits the search tree into items, in DFS order: the frontier is widened
 * a level at a time until it holds `target` prefixes (or cannot widen).
 * Each prefix costs one run, which lists its node's children and tells
 * whether its last step touched something.
 */
export function splitItems(s: Scenario, opts: RunOptions, bound: number, target: number, maxDepth = 24, leftSplits = LEFT_SPLITS): DfsItem[] {
  const effOf = new Map<string, boolean>();
  const kidsOf = new Map<string, number[] | null>();
  const probe = (p: readonly number[]) => {
    const key = p.join(",");
    if (!kidsOf.has(key)) {
      const r = childrenOf(s, opts, bound, p);
      kidsOf.set(key, r.kids);
      effOf.set(key, r.eff);
    }
    return kidsOf.get(key)!;
  };
  let frontier: number[][] = [[]];
  for (let depth = 0; depth < maxDepth && frontier.length < target; depth++) {
    const next: number[][] = [];
    let widened = false;
    for (const p of frontier) {
      const kids = p.length < depth ? null : probe(p);
      if (kids === null) next.push(p);
      else {
        widened = true;
        for (const k of kids) next.push([...p, k]);
      }
    }
    frontier = next;
    if (!widened) break;
  }
  // The first item holds the default schedule's subtree, where the continuation keeps going: the largest, as a rule.
  // Split it further so that it does not keep one worker busy alone at the end.
  for (let k = 0; k < leftSplits; k++) {
    const kids = probe(frontier[0]!);
    if (kids === null || kids.length < 2) break;
    frontier = [...kids.map((c) => [...frontier[0]!, c]), ...frontier.slice(1)];
  }
  for (const p of frontier) probe(p);
  return frontier.map((prefix) => {
    const eff = prefix.map((u, d) => {
      const up = prefix.slice(0, d);
      let mask = 0;
      for (const k of kidsOf.get(up.join(",")) ?? []) {
        if (k === u) break;
        if (effOf.get([...up, k].join(",")) !== false) mask |= 1 << k;
      }
      return mask;
    });
    return { prefix, eff };
  });
}

/** The children of the node a prefix reaches (null: the schedule ends there, or the prefix is pruned), and whether its last step touched something. */
function childrenOf(s: Scenario, opts: RunOptions, bound: number, prefix: readonly number[]): { kids: number[] | null; eff: boolean } {
  const pol = new ProbePolicy(bound, prefix);
  pol.begin();
  playOnce(s, { ...opts, checkBoot: false }, pol);
  return { kids: pol.kids, eff: pol.lastEffect };
}

/** Replays a prefix as the search would, then lists the children of the node it reaches and gives up the run. */
class ProbePolicy extends DfsPolicy {
  kids: number[] | null = null;
  lastEffect = true;
  private at = 0;
  constructor(bound: number, prefix: readonly number[]) {
    super(bound);
    this.reset(prefix);
  }
  override begin(): void {
    super.begin();
    this.at = 0;
  }
  override choose(st: BlockState): number {
    const d = this.at++;
    if (d < this.floor) return super.choose(st);
    // One more node, as the search would create it, then its children.
    const u = super.choose(st);
    if (u < 0) return -1;
    this.done[d] = 0;
    this.bt[d] = -1;
    this.kids = this.children(d);
    return -1;
  }
  override stepped(st: BlockState, effect: boolean, touched?: readonly object[] | null): void {
    if (this.at === this.floor) this.lastEffect = effectOf(effect, touched);
    super.stepped(st, effect, touched);
  }
}
