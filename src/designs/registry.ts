/**
 * Every design axis, by the name scenarios use (`boot.strategy.<axis>`):
 * the registry the scenario schema, the command line and the machine read.
 * A new axis is a file of this folder exporting its `axis(...)`, listed
 * here; a new strategy is an implementation in its axis's file.
 */
import type { IommuStrategies } from "../iommu/strategy-types.ts";
import type { Axis } from "./axis.ts";
import { DMA_OWNERSHIP } from "./dma-ownership.ts";
import { DOMAIN_ALLOC } from "./domain-alloc.ts";
import { FWSPEC_OWNER } from "./fwspec-owner.ts";
import { FWSPEC_OPS } from "./fwspec-ops.ts";
import { OPS_RESOLUTION } from "./ops-resolution.ts";
import { PROBE_SERIALISATION } from "./probe-serialisation.ts";

/** The axes, in the order the schema, the snapshot and the docs list them: a device's life, from its ops to its domains. */
export const AXES = {
  ops_resolution: OPS_RESOLUTION,
  fwspec_ops: FWSPEC_OPS,
  fwspec_owner: FWSPEC_OWNER,
  probe_serialisation: PROBE_SERIALISATION,
  dma_ownership: DMA_OWNERSHIP,
  domain_alloc: DOMAIN_ALLOC,
} as const;

export type AxisName = keyof typeof AXES;
export const AXIS_NAMES = Object.keys(AXES) as AxisName[];

/** The strategies an axis offers, by name. */
export type StrategyName<A extends AxisName> = (typeof AXES)[A]["names"][number];

/** A choice of strategy per axis; an axis left out takes its default. */
export type StrategyChoice = { [A in AxisName]?: StrategyName<A> };

/** The strategies a choice stands for, every axis filled (the default where the choice is silent). */
export function strategiesFor(choice: StrategyChoice): IommuStrategies {
  const out: Partial<Record<keyof IommuStrategies, unknown>> = {};
  for (const a of AXIS_NAMES) {
    const ax = AXES[a] as Axis;
    const name = choice[a] ?? ax.default;
    out[ax.field] = (ax.implementations as Record<string, unknown>)[name];
  }
  return out as IommuStrategies;
}

/** The names of the strategies in force, per axis (the snapshot's `strategy`). */
export function strategyNames(s: IommuStrategies): Record<AxisName, string> {
  const out = {} as Record<AxisName, string>;
  for (const a of AXIS_NAMES) out[a] = s[AXES[a].field].name;
  return out;
}
