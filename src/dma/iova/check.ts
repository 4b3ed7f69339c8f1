/**
 * Invariants of an IOVA domain, checked from outside the allocator: the
 * range tree is a valid red-black tree ordered by pfn_lo, its ranges do not
 * overlap, every pool slot in use is linked (nothing leaked), the anchor is
 * the last range, the cached nodes are in the tree, and every cached pfn
 * starts a distinct range of its class's size. Returns one sentence per
 * broken rule; an empty list means the domain is consistent.
 */
import type { IovaDomain } from "../iova.ts";
import { IOVA_ANCHOR, IOVA_RANGE_CACHE_MAX_SIZE } from "../iova.ts";
import { orderBase2 } from "./log2.ts";
import { RB_NIL, type RangeTree } from "./rbtree.ts";

export function checkIovaDomain(iovad: IovaDomain): string[] {
  const out = checkRangeTree(iovad.tree);
  const t = iovad.tree;
  const last = t.root === RB_NIL ? RB_NIL : lastNode(t);
  if (last !== iovad.anchor || t.pfnLo[last] !== IOVA_ANCHOR || t.pfnHi[last] !== IOVA_ANCHOR) {
    out.push("the anchor is not the last range of the tree");
  }
  for (const [name, node] of [
    ["cached_node", iovad.cachedNode],
    ["cached32_node", iovad.cached32Node],
  ] as const) {
    if (!t.isNode(node) || t.find(t.pfnLo[node]!) !== node) out.push(`${name} (${node}) is not in the tree`);
  }
  checkRcaches(iovad, out);
  return out;
}

/** Red-black and ordering rules of a range tree, and that no node slot leaked. */
export function checkRangeTree(t: RangeTree): string[] {
  const out: string[] = [];
  if (t.root === RB_NIL) {
    if (t.nodesLive !== 0 || t.slotsInUse !== 0) out.push("the tree is empty but nodes are counted");
    return out;
  }
  if (t.parent[t.root] !== RB_NIL) out.push(`root ${t.root} has a parent`);
  if (t.red[t.root] === 1) out.push("the root is red");
  if (t.red[RB_NIL] === 1) out.push("the nil sentinel is red");

  // In-order walk with an explicit stack, checking links, colours and order.
  let reachable = 0;
  let last = RB_NIL;
  const stack: number[] = [];
  let n = t.root;
  while (n !== RB_NIL || stack.length > 0) {
    while (n !== RB_NIL) {
      stack.push(n);
      n = t.left[n]!;
    }
    n = stack.pop()!;
    reachable++;
    for (const c of [t.left[n]!, t.right[n]!]) {
      if (c !== RB_NIL && t.parent[c] !== n) out.push(`node ${c} does not point back to its parent ${n}`);
      if (c !== RB_NIL && t.red[n] === 1 && t.red[c] === 1) out.push(`red node ${n} has a red child ${c}`);
    }
    if (t.pfnLo[n]! > t.pfnHi[n]!) out.push(`range ${t.pfnLo[n]}..${t.pfnHi[n]} is empty`);
    if (last !== RB_NIL && t.pfnHi[last]! >= t.pfnLo[n]!) {
      out.push(`ranges ${t.pfnLo[last]}..${t.pfnHi[last]} and ${t.pfnLo[n]}..${t.pfnHi[n]} are out of order or overlap`);
    }
    last = n;
    n = t.right[n]!;
  }
  if (blackHeight(t, t.root) < 0) out.push("paths from the root have different black heights");
  if (reachable !== t.nodesLive) out.push(`${reachable} nodes reachable but ${t.nodesLive} counted live`);
  if (t.slotsInUse !== reachable) out.push(`${t.slotsInUse} node slots in use but ${reachable} in the tree (leaked nodes)`);
  return out;
}

function lastNode(t: RangeTree): number {
  let n = t.root;
  while (t.right[n] !== RB_NIL) n = t.right[n]!;
  return n;
}

/** The black height of the subtree at n, or -1 when its paths disagree. */
function blackHeight(t: RangeTree, n: number): number {
  if (n === RB_NIL) return 1;
  const l = blackHeight(t, t.left[n]!);
  const r = blackHeight(t, t.right[n]!);
  if (l < 0 || r < 0 || l !== r) return -1;
  return l + (t.red[n] === 1 ? 0 : 1);
}

function checkRcaches(iovad: IovaDomain, out: string[]): void {
  const seen = new Set<number>();
  for (let cls = 0; cls < IOVA_RANGE_CACHE_MAX_SIZE; cls++) {
    const mags: number[][] = [...iovad.rcaches.depotMagazines(cls)];
    for (let cpu = 0; cpu < iovad.nrCpuIds; cpu++) {
      const { loaded, prev } = iovad.rcaches.cpuMagazines(cpu, cls);
      if (!iovad.cpuIsOnline(cpu) && loaded.length + prev.length > 0) {
        out.push(`offline CPU ${cpu} still caches ${loaded.length + prev.length} ranges of class ${cls}`);
      }
      mags.push(loaded, prev);
    }
    for (const pfn of mags.flat()) {
      if (seen.has(pfn)) out.push(`pfn ${pfn} is cached twice`);
      seen.add(pfn);
      const node = iovad.findIova(pfn);
      if (node === null || iovad.pfnLo(node) !== pfn) {
        out.push(`cached pfn ${pfn} does not start a range in the tree`);
      } else if (orderBase2(iovad.iovaSize(node)) !== cls) {
        out.push(`cached pfn ${pfn} starts a ${iovad.iovaSize(node)}-granule range, not one of class ${cls}`);
      }
    }
  }
}
