/** The trace as text: kernel calls nested under the step that made them. */
import type { TraceRecord } from "../lib/trace.ts";

/** One record as a line of the text trace (`multiTask`: prefix the task, as a run with several tasks does). */
export function renderTraceLine(r: TraceRecord, multiTask = false): string {
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

export function renderTrace(records: readonly TraceRecord[]): string {
  const multiTask = records.some((r) => r.task !== 0);
  return records.map((r) => renderTraceLine(r, multiTask)).join("\n");
}
