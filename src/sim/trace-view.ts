/** The trace as text: kernel calls nested under the step that made them. */
import type { TraceRecord } from "../lib/trace.ts";

export function renderTrace(records: readonly TraceRecord[]): string {
  const L: string[] = [];
  const multiTask = records.some((r) => r.task !== 0);
  for (const r of records) {
    if (r.kind === "event") {
      L.push(`== ${r.fn}: ${r.detail}`);
      continue;
    }
    const ind = "  ".repeat(r.depth + 1);
    const t = multiTask ? `[T${r.task}] ` : "";
    if (r.kind === "call") {
      const args = [r.subject, r.detail].filter((x) => x !== "").join(", ");
      const res = r.result === null || r.result === "" ? "" : ` = ${r.result}`;
      L.push(`${ind}${t}${r.fn}(${args})${res}`);
    } else if (r.kind === "note") {
      L.push(`${ind}${t}${r.fn}: ${r.subject}${r.detail ? ": " + r.detail : ""}`);
    } else {
      L.push(`${ind}${t}WARN ${r.fn}: ${r.subject}: ${r.detail}`);
    }
  }
  return L.join("\n");
}
