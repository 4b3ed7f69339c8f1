/**
 * Summary statistics shared by the benchmarks. On a shared machine, noise
 * only ever adds time, so each figure is printed as the median of the timed
 * runs with the best run beside it.
 */
import { PerformanceObserver } from "node:perf_hooks";

/** The middle value (upper middle for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** The fastest run. */
export function best(xs: readonly number[]): number {
  return Math.min(...xs);
}

/** Counts garbage collections reported by perf_hooks (delivered asynchronously). */
export class GcCounter {
  private seen = 0;
  private constructor(private readonly obs: PerformanceObserver) {}

  static async start(): Promise<GcCounter> {
    let counter: GcCounter | null = null;
    const obs = new PerformanceObserver((list) => {
      if (counter !== null) counter.seen += list.getEntries().length;
    });
    counter = new GcCounter(obs);
    obs.observe({ entryTypes: ["gc"] });
    await settle();
    return counter;
  }

  async count(): Promise<number> {
    await settle();
    return this.seen;
  }

  stop(): void {
    this.obs.disconnect();
  }
}

function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}
