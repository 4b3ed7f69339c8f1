/**
 * The data `iommu-sim view` embeds in the page: one or two runs, each a
 * steps document (`run --steps --json`, docs/view.md), and where the two
 * part. The page reads only these fields.
 */
import type { Delta } from "./delta.ts";

export interface TraceRecord {
  task: number;
  depth: number;
  kind: "call" | "note" | "warn" | "bug" | "event" | "sched";
  fn: string;
  subject: string;
  detail: string;
  result: string | null;
}

export interface DeviceSnap {
  name: string;
  bus: string;
  registered: boolean;
  iommu: string | null;
  ops: string | null;
  fwspec: { iommu: string | null; ids: number[] } | null;
  dev_iommu: string;
  group: number | null;
  domain: number | null;
  driver: string | null;
  probe: "none" | "bound" | "deferred" | "failed";
  probe_error: string | null;
}

export interface GroupSnap {
  id: number;
  devices: string[];
  type: string;
  domain: number | null;
  default_domain: number | null;
  owner: "none" | "kernel" | "user";
  owner_cnt: number;
  pasids: number[];
  reserved_regions: string[];
}

export interface DomainSnap {
  id: number;
  name: string | null;
  type: string;
  iommu: string | null;
}

export interface IommuSnap {
  name: string;
  driver: string;
  registered: boolean;
  devices: string[];
}

export interface Snapshot {
  name: string;
  iommus: IommuSnap[];
  devices: DeviceSnap[];
  groups: GroupSnap[];
  domains: DomainSnap[];
  deferred: string[];
  warnings: string[];
  bugs: string[];
  violations: string[];
}

export interface TopoNode {
  id: string;
  label: string;
  kind: "iommu" | "bus" | "host" | "bridge" | "endpoint" | "platform";
  parent: string | null;
  pci_type: string | null;
  acs_missing: string | null;
}

export interface Step {
  label: string;
  kind: "boot" | "event" | "step" | "end";
  trace: TraceRecord[];
  snapshot?: Snapshot;
  delta?: Delta;
}

export interface StepsDoc {
  schema_version: number;
  steps_format: number;
  file: string;
  name: string;
  schedule: string;
  result: "pass" | "fail";
  topology: { nodes: TopoNode[] };
  steps: Step[];
}

export interface ViewData {
  title: string;
  /** One run, or two (--a, --b) stepped together. */
  runs: { design: string; doc: StepsDoc }[];
  /** With two runs: the first step where their labels, traces or states differ (null: alike), and what differs there. */
  divergence: { step: number; what: string } | null;
}
