/**
 * The systematic search (docs/explore.md): depth-first over the scheduling
 * choices of every concurrently block, by stateless re-execution (each
 * schedule boots the machine afresh and replays the choices down to the
 * branch it tries next), with a bound on preemptions and sleep sets as the
 * partial-order reduction.
 *
 * A node is a scheduling point, numbered by the steps taken before it over
 * all blocks. Its children are its runnable tasks, in a fixed order: the one
 * the continuation rule picks first (so the first schedule is the default
 * one), then the others by letter. A child that switches away from a task
 * that could go on costs a preemption; children over the bound are cut. The
 * sleep set of a node holds the tasks whose next step was explored from an
 * ancestor and commutes with every step since: running one of them first
 * would only reorder independent steps of a schedule already explored.
 * Two steps commute when the points they start at do (the contract: no
 * common lock, no common state with a write) and not both of them touched
 * a device, a group or a lock (the model's touch tracking): a step does
 * more than its point names, and the model's state outside the points
 * (group and domain ids, the bus and deferred lists) is changed by steps
 * that touch something.
 *
 * The search tree is split into items (a prefix of choices and the subtree
 * below it); an item's sleep sets follow from the prefix alone, since the
 * siblings before a child in the fixed order are explored before it
 * wherever they are explored. So items can be searched in any order, by
 * any worker, and give the result of one search in DFS order.
 */
import type { Scenario } from "../scenario/schema.ts";
import { playScenario, type Failure, type PlayResult, type RunOptions } from "../runner.ts";
import { independentOps, OP_LOCAL, type BlockState, type SchedulePolicy } from "./block.ts";

/** The node arrays grow by this many entries at a time. */
const CHUNK = 256;

function grow<T extends Int32Array | Int8Array>(a: T, n: number): T {
  if (n < a.length) return a;
  const b = new (a.constructor as new (n: number) => T)(Math.max(a.length * 2, n + CHUNK));
  b.set(a);
  return b;
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
  }

  /** Before each run. */
  begin(): void {
    this.depth = 0;
    this.pre[0] = 0;
    this.sleep[0] = 0;
    this.sleepEff[0] = 0;
    this.pendD = -1;
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
    const open = this.enabled[d]! & ~this.done[d]! & ~this.sleep[d]!;
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
      if (d >= this.len) {
        this.sleep[d] = 0;
        this.sleepEff[d] = 0;
      }
    }
    let u: number;
    if (d < this.replay) {
      u = this.chosen[d]!;
      if (d === this.replay - 1) this.childSleep(d, u, st);
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
      this.done[d]! |= 1 << u;
      this.chosen[d] = u;
      this.len = d + 1;
      this.replay = d + 1;
      this.childSleep(d, u, st);
    }
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
  }

  private newNode(d: number, st: BlockState): void {
    this.enabled[d] = st.enabled;
    this.last[d] = st.last;
    this.done[d] = 0;
    this.effDone[d] = 0;
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

  stepped(st: BlockState, effect: boolean): void {
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
      const open = this.enabled[d]! & ~this.done[d]! & ~this.sleep[d]!;
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
): ItemResult {
  const pol = new DfsPolicy(bound, reduce);
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
export function splitItems(s: Scenario, opts: RunOptions, bound: number, target: number, maxDepth = 24): DfsItem[] {
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
    this.kids = this.children(d);
    return -1;
  }
  override stepped(st: BlockState, effect: boolean): void {
    if (this.at === this.floor) this.lastEffect = effect;
    super.stepped(st, effect);
  }
}
