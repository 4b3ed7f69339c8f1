/**
 * What the event table (event-table.ts) holds for each kind of scenario
 * event: the schema of its argument, what the event log calls it, how it
 * runs (a path for an event that can block, a plain function otherwise),
 * what it returns, and the cross-reference checks a schema cannot express.
 */
import type { z } from "zod";
import type { Path } from "../base/path.ts";
import type { KError } from "../lib/errno.ts";
import type { Machine } from "./machine.ts";

/**
 * Where an event's cross-reference checks report (sim/scenario/check.ts
 * implements it). Each takes the key path of the value it checks, below the
 * event's key (none: the key itself).
 */
export interface EventRefs {
  /** An IOMMU instance the scenario describes. */
  iommu(name: string, ...at: (string | number)[]): void;
  device(name: string, ...at: (string | number)[]): void;
  driver(name: string, ...at: (string | number)[]): void;
  /** A domain a domain_alloc event names (a number is a model id, checked at run time). */
  domain(ref: string | number, ...at: (string | number)[]): void;
  /** A DMA handle a dma_map event names. */
  handle(name: string, ...at: (string | number)[]): void;
  /** An object name of iommufd context `ctx`: some call of the scenario in that context binds it (`as`). */
  iommufdName(ctx: string, name: string, ...at: (string | number)[]): void;
  /** The context an iommufd event runs in (none may name it after the event that closed it); `closes`: this event closes it. */
  iommufdCtx(ctx: string, closes: boolean, ...at: (string | number)[]): void;
  /** Any other problem. */
  bad(message: string, ...at: (string | number)[]): void;
}

interface EventBase<S extends z.ZodType> {
  /** The schema of the event's argument (the value under its key). */
  readonly schema: S;
  /** What scenarios/schema.json says of the event, if anything. */
  readonly doc?: string;
  /** What the event acts on, as the event log and the trace write it. */
  label(a: z.infer<S>): string;
  /** The checks of the argument against the rest of the file (unknown names, exclusive fields). */
  check?(a: z.infer<S>, refs: EventRefs): void;
}

/** An event that can block (it takes a lock, or calls a path that does): it runs as a path a scheduler can interleave. */
export interface PathEvent<S extends z.ZodType> extends EventBase<S> {
  readonly blocks: true;
  readonly returnsValue: false;
  run(m: Machine, a: z.infer<S>): Path<0 | KError>;
}

/** An event that cannot block: a plain function returning 0 or an errno. */
export interface CallEvent<S extends z.ZodType> extends EventBase<S> {
  readonly blocks: false;
  readonly returnsValue: false;
  run(m: Machine, a: z.infer<S>): 0 | KError;
}

/** An event that cannot block and returns a value (bytes unmapped, an address): the value, or an errno. */
export interface ValueEvent<S extends z.ZodType> extends EventBase<S> {
  readonly blocks: false;
  readonly returnsValue: true;
  run(m: Machine, a: z.infer<S>): number | KError;
}

export type EventDef<S extends z.ZodType = z.ZodType> = PathEvent<S> | CallEvent<S> | ValueEvent<S>;

type Fields<D> = Omit<D, "blocks" | "returnsValue">;

export function pathEvent<S extends z.ZodType>(d: Fields<PathEvent<S>>): PathEvent<S> {
  return { ...d, blocks: true, returnsValue: false };
}

export function callEvent<S extends z.ZodType>(d: Fields<CallEvent<S>>): CallEvent<S> {
  return { ...d, blocks: false, returnsValue: false };
}

export function valueEvent<S extends z.ZodType>(d: Fields<ValueEvent<S>>): ValueEvent<S> {
  return { ...d, blocks: false, returnsValue: true };
}
