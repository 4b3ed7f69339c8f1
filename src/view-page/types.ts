/**
 * The data `iommu-sim view` embeds in the page: one or two runs, each a
 * steps document (`run --steps --json`, docs/view.md), and where the two
 * part. The page reads only these fields.
 */
// The shapes the CLI writes, taken from where it defines them (type-only imports: the bundle gets none of that code).
import type { TraceRecord } from "../lib/trace.ts";
import type { DeviceSnap, DomainSnap, GroupSnap, IommuSnap, Snapshot } from "../sim/snapshot.ts";
import type { Step } from "../cli/steps.ts";
import type { TopoNode } from "../cli/topology.ts";

export type { DeviceSnap, DomainSnap, GroupSnap, IommuSnap, Snapshot, Step, TopoNode, TraceRecord };

export interface StepsDoc {
  schema_version: number;
  steps_format: number;
  file: string;
  name: string;
  schedule: string;
  result: "pass" | "fail";
  topology: { nodes: TopoNode[] };
  /** Each step with its trace as the JSON text of its records (parsed when the step is shown). */
  steps: (Omit<Step, "trace"> & { trace: string })[];
}

export interface ViewData {
  title: string;
  /** One run, or two (--a, --b) stepped together. */
  runs: { design: string; doc: StepsDoc }[];
  /** With two runs: the first step where their labels, traces or states differ (null: alike), and what differs there. */
  divergence: { step: number; what: string } | null;
}
