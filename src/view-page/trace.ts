/** A step's trace records as `run --trace` prints them (src/sim/trace-view.ts): kernel calls nested under the step. */
import type { TraceRecord } from "./types.ts";

export function traceLine(r: TraceRecord, multiTask: boolean): string {
  if (r.kind === "event") return `== ${r.fn}: ${r.detail}`;
  if (r.kind === "sched") return `-- ${r.detail}`;
  const ind = "  ".repeat(r.depth + 1);
  const t = multiTask ? `[T${r.task}] ` : "";
  if (r.kind === "call") {
    const args = [r.subject, r.detail].filter((x) => x !== "").join(", ");
    const res = r.result === null || r.result === "" ? "" : ` = ${r.result}`;
    return `${ind}${t}${r.fn}(${args})${res}`;
  }
  if (r.kind === "note") return `${ind}${t}${r.fn}: ${r.subject}${r.detail ? ": " + r.detail : ""}`;
  if (r.kind === "bug") return `${ind}${t}BUG ${r.fn}: ${r.subject}: ${r.detail}`;
  return `${ind}${t}WARN ${r.fn}: ${r.subject}: ${r.detail}`;
}
