/**
 * Tracing helper for paths: records a call by its kernel name, nested under
 * its caller, and fills in its result when it returns. With tracing off it
 * adds nothing but one branch.
 */
import { KError } from "../lib/errno.ts";
import type { Trace } from "../lib/trace.ts";
import type { Path, Sched } from "./path.ts";

export interface TraceCtx {
  readonly sched: Sched;
  readonly trace: Trace;
}

export function resultName(r: unknown): string {
  if (r instanceof KError) return r.errno;
  if (r === undefined) return "";
  // A wrapped failure (e.g. the driver core's ProbeFailure) names its errno.
  if (typeof r === "object" && r !== null && "err" in r && r.err instanceof KError) return r.err.errno;
  return String(r);
}

export function traced<T>(ctx: TraceCtx, fn: string, subject: string, body: Path<T>, detail = ""): Path<T> {
  return ctx.trace.enabled ? tracedBody(ctx, fn, subject, body, detail) : body;
}

function* tracedBody<T>(ctx: TraceCtx, fn: string, subject: string, body: Path<T>, detail: string): Path<T> {
  const task = ctx.sched.current.id;
  const rec = ctx.trace.enter(task, fn, subject, detail);
  let result = "exception";
  try {
    const r = yield* body;
    result = resultName(r);
    return r;
  } finally {
    ctx.trace.exit(task, rec, result);
  }
}
