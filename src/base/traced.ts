/**
 * Traced kernel paths: `kernelPath` defines a path once, by its kernel
 * name, how to name what it acts on, and its generator body. A call
 * records the kernel function in the trace, nested under its caller, and
 * fills in its result when it returns. With tracing off a call returns the
 * body's generator itself: no closure, no generator of its own.
 */
import { KError } from "../lib/errno.ts";
import type { MachineContext } from "./context.ts";
import type { Path } from "./path.ts";

/** What a traced path's first argument carries (the driver core, the IOMMU core): the machine's context. */
export interface TraceCtx {
  readonly ctx: MachineContext;
}

export function resultName(r: unknown): string {
  if (r instanceof KError) return r.errno;
  if (r === undefined) return "";
  // A wrapped failure (e.g. the driver core's ProbeFailure) names its errno.
  if (typeof r === "object" && r !== null && "err" in r && r.err instanceof KError) return r.err.errno;
  return String(r);
}

/** How a traced path names the object it acts on (a device, an instance, a bus, a group), and optionally a detail. */
export type PathNames<C, A extends unknown[]> =
  | ((ctx: C, ...args: A) => string)
  | { readonly subject: (ctx: C, ...args: A) => string; readonly detail: (ctx: C, ...args: A) => string };

/** The most arguments a traced path takes after its context (the wrapper passes them on one by one, without a rest array). */
const MAX_ARGS = 4;

type Fixed<R> = (ctx: TraceCtx, a: unknown, b: unknown, c: unknown, d: unknown) => R;

/**
 * A kernel function modelled as a path: `fn` is its kernel name (the
 * coverage table reads it from here, as from a `// @kernel:` comment),
 * `body` is the path, `names` says what the trace records it acting on.
 * The body comes before the names so that they take its parameter types.
 *
 *     export const iommuProbeDevice = kernelPath("iommu_probe_device", function* (k: IommuCore, dev: Device): Path<0 | KError> {
 *       ...
 *     }, (_k, dev) => dev.name);
 */
export function kernelPath<C extends TraceCtx, A extends unknown[], T>(
  fn: string,
  body: (ctx: C, ...args: A) => Path<T>,
  names: PathNames<C, A>,
): (ctx: C, ...args: A) => Path<T> {
  if (body.length > MAX_ARGS + 1) throw new Error(`kernelPath ${fn}: at most ${MAX_ARGS} arguments after the context`);
  const run = body as unknown as Fixed<Path<T>>;
  const subject = (typeof names === "function" ? names : names.subject) as unknown as Fixed<string>;
  const detail = (typeof names === "function" ? null : names.detail) as unknown as Fixed<string> | null;
  const path: Fixed<Path<T>> = (ctx, a, b, c, d) =>
    ctx.ctx.trace.enabled ? tracedBody(ctx.ctx, fn, subject(ctx, a, b, c, d), run(ctx, a, b, c, d), detail === null ? "" : detail(ctx, a, b, c, d)) : run(ctx, a, b, c, d);
  return path as unknown as (ctx: C, ...args: A) => Path<T>;
}

function* tracedBody<T>(ctx: MachineContext, fn: string, subject: string, body: Path<T>, detail: string): Path<T> {
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
