/**
 * A design axis: the named implementations of one interface the IOMMU core
 * calls where designs differ (iommu/strategy-types.ts), which of them is
 * the default (current upstream), and which field of the core's strategies
 * it fills. Each axis is one file of this folder; registry.ts lists them.
 */
import type { IommuStrategies } from "../iommu/strategy-types.ts";

export interface Axis<F extends keyof IommuStrategies = keyof IommuStrategies, N extends string = string> {
  /** The field of IommuStrategies the axis fills. */
  readonly field: F;
  /** What the scenario schema says of the axis (boot.strategy.<axis>). */
  readonly doc: string;
  /** The implementations by name. */
  readonly implementations: Readonly<Record<N, IommuStrategies[F]>>;
  /** The implementation current upstream uses. */
  readonly default: N;
  /** The names, in the implementations' order (for the schema and the command line). */
  readonly names: readonly [N, ...N[]];
}

export function axis<F extends keyof IommuStrategies, N extends string>(a: {
  field: F;
  doc: string;
  implementations: Record<N, IommuStrategies[F]>;
  default: NoInfer<N>;
}): Axis<F, N> {
  const names = Object.keys(a.implementations) as N[];
  for (const n of names) {
    if (a.implementations[n].name !== n) throw new Error(`axis ${a.field}: implementation '${n}' calls itself '${a.implementations[n].name}'`);
  }
  return Object.freeze({ ...a, names: names as [N, ...N[]] });
}
