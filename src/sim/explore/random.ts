/**
 * Random schedules (`explore --random N --seed S`): schedule i picks each
 * step uniformly among the runnable tasks, from a generator seeded by
 * (S, i) alone, so any worker can run any i and the first failing i is the
 * same however the work is split. The preemption bound does not apply.
 */
import type { Scenario } from "../scenario/schema.ts";
import type { RunOptions } from "../runner.ts";
import type { BlockState, SchedulePolicy } from "./block.ts";
import { playOnce, type ItemResult } from "./dfs.ts";

/** mulberry32's state step: a 32-bit generator, seeded per schedule. */
export class RandomPolicy implements SchedulePolicy {
  private s = 0;

  /** Seeds the generator for schedule `index` of the run seeded `seed`. */
  seed(seed: number, index: number): void {
    let h = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
    this.s = h;
  }

  private next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  choose(st: BlockState): number {
    let n = 0;
    for (let m = st.enabled; m !== 0; m &= m - 1) n++;
    let k = Math.floor(this.next() * n);
    for (let m = st.enabled; m !== 0; m &= m - 1) {
      if (k-- === 0) return 31 - Math.clz32(m & -m);
    }
    return st.next;
  }
}

/** Runs random schedules `from` to `to` (exclusive) of seed `seed`, up to the first failing one. */
export function searchRandom(s: Scenario, opts: RunOptions, seed: number, from: number, to: number, stop: () => boolean = () => false): ItemResult {
  const pol = new RandomPolicy();
  const out: ItemResult = { schedules: 0, steps: 0, boundCuts: 0, sleepBlocked: 0, found: null };
  for (let i = from; i < to; i++) {
    pol.seed(seed, i);
    // The boot is the same in every schedule: its invariants are checked in the first.
    const r = playOnce(s, i === 0 ? opts : { ...opts, checkBoot: false }, pol);
    out.steps += r.steps;
    out.schedules++;
    if (r.failures.length > 0) {
      out.found = { schedule: r.schedule, failure: r.failures[0]!, index: out.schedules };
      break;
    }
    if (stop()) break;
  }
  return out;
}
