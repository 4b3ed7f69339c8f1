/**
 * The split of the systematic search (dfs.ts) into items: prefixes of
 * choices whose subtrees can be searched in any order, by any worker
 * (docs/explore.md). Each prefix's node is probed by one run that replays
 * it as the search would and lists the node's children.
 */
import type { Scenario } from "../scenario/schema.ts";
import type { RunOptions } from "../runner.ts";
import type { BlockState } from "./block.ts";
import { DfsPolicy, effectOf, playOnce, type DfsItem } from "./dfs.ts";

/** How many more times the split divides its first item (the default schedule's subtree) into its children. */
export const LEFT_SPLITS = 8;

/**
 * Splits the search tree into items, in DFS order: the frontier is widened
 * a level at a time until it holds `target` prefixes (or cannot widen).
 * Each prefix costs one run, which lists its node's children and tells
 * whether its last step touched something, and each item one more, which
 * estimates its size (DfsItem.size).
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
    return { prefix, eff, size: estimateSize(s, opts, bound, prefix, eff) };
  });
}

/**
 * DfsItem.size: one run of the item's first schedule as its search would run it (the prefix with its sleep
 * sets, then the continuation), counting each task's steps after the prefix; 0 when the run gives up at the
 * prefix's node (every child asleep: the item is most likely empty).
 */
function estimateSize(s: Scenario, opts: RunOptions, bound: number, prefix: readonly number[], eff: readonly number[]): number {
  const pol = new ProbePolicy(bound, prefix, true, eff);
  pol.begin();
  playOnce(s, { ...opts, checkBoot: false }, pol);
  return pol.kids === null ? 0 : pol.logInterleavings();
}

/** The children of the node a prefix reaches (null: the schedule ends there, or the prefix is pruned), and whether its last step touched something. */
function childrenOf(s: Scenario, opts: RunOptions, bound: number, prefix: readonly number[]): { kids: number[] | null; eff: boolean } {
  const pol = new ProbePolicy(bound, prefix, false);
  pol.begin();
  playOnce(s, { ...opts, checkBoot: false }, pol);
  return { kids: pol.kids, eff: pol.lastEffect };
}

/** ln(n!) */
function logFactorial(n: number): number {
  let r = 0;
  for (let i = 2; i <= n; i++) r += Math.log(i);
  return r;
}

/**
 * Replays a prefix as the search would, then lists the children of the node it reaches and gives up the run; or,
 * `sized`, goes on as the search's first schedule below it would, counting each task's steps per block.
 */
class ProbePolicy extends DfsPolicy {
  kids: number[] | null = null;
  lastEffect = true;
  private at = 0;
  /** Per block, the steps each task took after the prefix. */
  private readonly counts: number[][] = [];
  constructor(
    bound: number,
    prefix: readonly number[],
    private readonly sized: boolean,
    eff: readonly number[] = [],
  ) {
    super(bound);
    this.reset(prefix, eff);
  }
  override blockStart(): void {
    super.blockStart();
    this.counts.push([]);
  }
  /** ln of the interleavings of the steps counted: per block, (n1 + n2 + ...)! / (n1! n2! ...). */
  logInterleavings(): number {
    let r = 0;
    for (const c of this.counts) {
      let total = 0;
      for (const n of c) {
        total += n ?? 0;
        r -= logFactorial(n ?? 0);
      }
      r += logFactorial(total);
    }
    return r;
  }
  override begin(): void {
    super.begin();
    this.at = 0;
  }
  override choose(st: BlockState): number {
    const d = this.at++;
    if (d < this.floor) return super.choose(st);
    const u = super.choose(st);
    if (u < 0) return -1;
    if (d === this.floor) {
      // One more node, as the search would create it, then its children (every child open).
      const done = this.done[d]!;
      const bt = this.bt[d]!;
      this.done[d] = 0;
      this.bt[d] = -1;
      this.kids = this.children(d);
      if (!this.sized) return -1;
      this.done[d] = done;
      this.bt[d] = bt;
    }
    const c = this.counts[this.counts.length - 1];
    if (c !== undefined) c[u] = (c[u] ?? 0) + 1;
    return u;
  }
  override stepped(st: BlockState, touched: readonly object[] | null): void {
    if (this.at === this.floor) this.lastEffect = effectOf(touched);
    super.stepped(st, touched);
  }
}
