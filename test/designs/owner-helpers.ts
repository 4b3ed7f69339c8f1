/**
 * Shared by the fwspec_owner and probe_serialisation tests: a DT SoC with
 * two SMMUv3 instances (the second registering late), and a way to ask who
 * called a traced kernel function.
 */
import type { TraceRecord } from "../../src/lib/trace.ts";

export type OwnerName = "probe-path" | "driver-probe-time" | "bus-code";
export const OWNERS: readonly OwnerName[] = ["probe-path", "driver-probe-time", "bus-code"];

/**
 * smmu0 registered at boot, smmu1 late; a, b, x behind smmu0 (a and b with
 * drivers registered by events, x with none); `extra` goes into the device list.
 */
export function soc(owner: OwnerName, extra = ""): string {
  return `
name: soc
boot: {strategy: {fwspec_owner: ${owner}}}
iommus:
  - {name: smmu0, driver: arm-smmu-v3, fwnode: /soc/smmu0}
  - {name: smmu1, driver: arm-smmu-v3, fwnode: /soc/smmu1, registered: false}
devices:
  - {name: a, bus: platform, fwnode: /soc/a, iommus: [[smmu0, 1]]}
  - {name: b, bus: platform, fwnode: /soc/b, iommus: [[smmu0, 2]]}
  - {name: x, bus: platform, fwnode: /soc/x, iommus: [[smmu0, 3]]}
${extra}
drivers:
  - {name: da, bus: platform, match: [a], registered: false}
  - {name: db, bus: platform, match: [b], registered: false}
`;
}

/** The kernel functions that called trace record `i`, innermost first (its ancestors on the same task). */
export function callers(records: readonly TraceRecord[], i: number): string[] {
  const out: string[] = [];
  const r = records[i]!;
  let depth = r.depth;
  for (let j = i - 1; j >= 0 && depth > 0; j--) {
    const p = records[j]!;
    if (p.task !== r.task || p.kind !== "call" || p.depth >= depth) continue;
    out.push(p.fn);
    depth = p.depth;
  }
  return out;
}

/** The index of the first call record of `fn` on `subject` that returned `result`. */
export function findCall(records: readonly TraceRecord[], fn: string, subject: string, result: string): number {
  const i = records.findIndex((r) => r.kind === "call" && r.fn === fn && r.subject === subject && r.result === result);
  if (i < 0) throw new Error(`no ${fn}(${subject}) = ${result} in the trace`);
  return i;
}
