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
 * DPOR (dpor.ts; Flanagan and Godefroid's, with vector clocks): a node
 * first explores one child; each step taken is checked against the block's earlier steps of
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
 * The search tree is split into items (split.ts: a prefix of choices and
 * the subtree below it); the prefix's nodes explore every child (each in an
 * item), so races found below never need a child of a prefix node; an item's sleep
 * sets follow from the prefix alone, since the siblings before a child in
 * the fixed order are explored before it wherever they are explored. So
 * items can be searched in any order, by any worker, and give one result
 * whatever the number of workers.
 */
import type { Scenario } from "../scenario/schema.ts";
import { playScenario, type Failure, type PlayResult, type RunOptions } from "../runner.ts";
import { independentOps, OP_LOCAL, type BlockState, type SchedulePolicy } from "./block.ts";
import { Dpor } from "./dpor.ts";
import { CHUNK, grow } from "./node-arrays.ts";

/**
 * Whether a step touched something, for the sleep sets: anything it touched, the lock it took included
 * (a lock is touched by the step that takes it, which may change what the lock guards). Not tracked
 * (invariants off): it may have touched anything, as DPOR assumes (dpor.ts).
 */
export function effectOf(touched: readonly object[] | null): boolean {
  return touched === null || touched.length > 0;
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
  /** DPOR's footprints, clocks and races (dpor.ts). */
  readonly dporState = new Dpor(this);
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
    this.dporState.racesFound = 0;
  }

  /** Before each run. */
  begin(): void {
    this.depth = 0;
    this.pre[0] = 0;
    this.sleep[0] = 0;
    this.sleepEff[0] = 0;
    this.pendD = -1;
    this.dporState.runStart();
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

  /** The continuation choice at node d (BlockState.next, derived again: it is not kept per node). */
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
      this.dporState.blockStart(d);
      if (d >= this.len) {
        this.sleep[d] = 0;
        this.sleepEff[d] = 0;
      }
    }
    let u: number;
    let isNew: boolean;
    if (d < this.replay) {
      u = this.chosen[d]!;
      isNew = d === this.replay - 1;
      if (isNew) this.childSleep(d, u, st);
    } else if (d < this.floor) {
      // The prefix: the siblings before its choice in the fixed order count as explored.
      this.newNode(d, st);
      u = this.prefix[d]!;
      if ((st.enabled & (1 << u)) === 0 || (this.sleep[d]! & (1 << u)) !== 0) return this.giveUp(d);
      for (;;) {
        const c = this.nextChild(d, st.next);
        if (c < 0 || c === u) break;
        this.done[d]! |= 1 << c;
      }
      this.done[d]! |= 1 << u;
      this.effDone[d] = this.prefixEff[d] ?? -1;
      isNew = true;
      this.chosen[d] = u;
      this.len = d + 1;
      this.replay = d + 1;
      this.childSleep(d, u, st);
    } else {
      this.newNode(d, st);
      u = this.nextChild(d, st.next);
      if (u < 0) {
        this.sleepBlocked++;
        return this.giveUp(d);
      }
      if (this.dpor) this.bt[d] = 1 << u;
      this.done[d]! |= 1 << u;
      this.chosen[d] = u;
      isNew = true;
      this.len = d + 1;
      this.replay = d + 1;
      this.childSleep(d, u, st);
    }
    const t = st.tasks[u]!;
    this.dporState.point(d, u, t.op, t.key, isNew);
    return u;
  }

  /** Gives the run up at node d: no step is taken from it, so the block's end (DPOR) sees the steps before it alone. */
  private giveUp(d: number): number {
    this.depth = d;
    return -1;
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
    this.dporState.ensure(n);
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

  /** What the step touched decides (effectOf), the lock it took included. */
  stepped(st: BlockState, touched: readonly object[] | null): void {
    if (this.dpor) this.dporState.step(st, touched);
    this.sleepStep(st, effectOf(touched));
  }

  /** At a block's end (or where the run stops in it): the next steps of the tasks that did not end race with the steps taken (touching something, for all we know). */
  blockEnd(st: BlockState): void {
    if (!this.dpor) return;
    const end = this.depth;
    this.ensure(end + 1);
    this.dporState.blockEnd(st, end);
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

/** A part of the search: the subtree below a prefix of choices. */
export interface DfsItem {
  readonly prefix: readonly number[];
  /** Per prefix node: the children before the prefix's choice whose step touched something (their sleep sets need it). */
  readonly eff: readonly number[];
  /**
   * An estimate of the subtree's size, for the order threads take items in (pool.ts): ln of the interleavings of
   * the steps left to each task on the item's first schedule, per block, ignoring locks and the reduction (0 where
   * unknown). Crude, but on the fwspec race the three items it ranks first are the three that hold 90% of the search.
   */
  readonly size?: number;
}

/** How searchItem searches; every field has its default. */
export interface SearchOptions {
  /** Asked between runs: true stops the search (a worker whose item comes after a failure another found). Default: never. */
  stop?: () => boolean;
  /** Sees every complete run (tests). */
  onRun?: (r: PlayResult) => void;
  /** Sleep sets on (off: every interleaving within the bound, for tests and the benchmark's naive count). Default true. */
  reduce?: boolean;
  /** Stop at the first failing schedule (tests may want every schedule). Default true. */
  stopAtFailure?: boolean;
  /** Check the invariants after boot in the first schedule (the search's first item does; the boot is the same in every schedule). Default true. */
  checkBoot?: boolean;
  /** DPOR on (with the sleep sets; off: sleep sets alone). Default: as `reduce`. */
  dpor?: boolean;
}

/**
 * Searches the subtree below `prefix`, in DFS order, up to the first
 * failing schedule. `stop()` is asked between runs (a worker whose item
 * comes after a failure another found).
 */
export function searchItem(s: Scenario, opts: RunOptions, bound: number, item: DfsItem | readonly number[], o: SearchOptions = {}): ItemResult {
  const { stop = () => false, onRun, reduce = true, stopAtFailure = true, checkBoot = true, dpor = reduce } = o;
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

