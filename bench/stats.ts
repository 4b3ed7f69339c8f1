/**
 * Summary statistics shared by the benchmarks. On a shared machine, noise
 * only ever adds time, so each figure is printed as the median of the timed
 * runs with the best run beside it.
 */
import { PerformanceObserver } from "node:perf_hooks";

/**
 * CPU time this process has used, in ms (user + system, all its threads).
 * The machine is shared: wall-clock time also counts the time the process
 * waited for a CPU another process held, CPU time does not. Resolution 1 us,
 * and each reading is a system call (about 1 us): time whole loops with it.
 */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

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
