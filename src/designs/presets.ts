/**
 * Kernel presets: the strategy of every axis as a release had it
 * (`--kernel v6.8`, `boot.kernel: v6.8`). The table is docs/design-axes.md's;
 * each release's choices come from the commits named there. "Release" means
 * the release tag: a stable branch may carry later fixes (6.1.2 has the
 * v6.2 probe lock, 6.6.5 the v6.7 one, 6.15.1 the v6.16 `ready` flag).
 */
import { AXES, AXIS_NAMES, type StrategyChoice } from "./registry.ts";

export interface KernelPreset {
  /** The release, e.g. "v6.8", or "current". */
  readonly name: string;
  /** What the release changed on the axes, in a sentence. */
  readonly note: string;
  /** The strategy of each axis, by axis name (every registered axis named: presetProblems checks). */
  readonly strategy: Readonly<Record<string, string>>;
}

const PRESET_TABLE = [
  {
    name: "v5.15",
    note: "bus_set_iommu per bus; VFIO learns of kernel drivers from its group notifier; iommu_domain_alloc(bus)",
    strategy: { ops_resolution: "bus-set-iommu", fwspec_ops: "fwspec-carries-ops", fwspec_owner: "driver-probe-time", probe_serialisation: "none", dma_ownership: "notifier", domain_alloc: "bus-null-device" },
  },
  {
    name: "v6.1",
    note: "bus ops installed by iommu_device_register (57365a04c921); DMA ownership through the driver core since v5.19",
    strategy: { ops_resolution: "bus-ops", fwspec_ops: "fwspec-carries-ops", fwspec_owner: "driver-probe-time", probe_serialisation: "none", dma_ownership: "driver-core", domain_alloc: "bus-null-device" },
  },
  {
    name: "v6.6",
    note: "iommu_probe_device_lock around __iommu_probe_device only (01657bc14a39, v6.2)",
    strategy: { ops_resolution: "bus-ops", fwspec_ops: "fwspec-carries-ops", fwspec_owner: "driver-probe-time", probe_serialisation: "probe-lock", dma_ownership: "driver-core", domain_alloc: "bus-null-device" },
  },
  {
    name: "v6.7",
    note: "the probe lock global, also around fwspec creation (a2e7e59a9426)",
    strategy: { ops_resolution: "bus-ops", fwspec_ops: "fwspec-carries-ops", fwspec_owner: "driver-probe-time", probe_serialisation: "global-lock", dma_ownership: "driver-core", domain_alloc: "bus-null-device" },
  },
  {
    name: "v6.8",
    note: "bus ops retired (17de3f5fdd35): ops from the fwspec, else the first instance without a fwnode",
    strategy: { ops_resolution: "upstream", fwspec_ops: "fwspec-carries-ops", fwspec_owner: "driver-probe-time", probe_serialisation: "global-lock", dma_ownership: "driver-core", domain_alloc: "bus-null-device" },
  },
  {
    name: "v6.12",
    note: "fwspec ops resolved from the fwnode (3e36c15fc1cc, v6.11); iommu_paging_domain_alloc (a27bf2743cb8, v6.11)",
    strategy: { ops_resolution: "upstream", fwspec_ops: "from-fwnode", fwspec_owner: "driver-probe-time", probe_serialisation: "global-lock", dma_ownership: "driver-core", domain_alloc: "device-ops" },
  },
  {
    name: "v6.15",
    note: "firmware parsed in the probe path (bcb81ac6ae3c)",
    strategy: { ops_resolution: "upstream", fwspec_ops: "from-fwnode", fwspec_owner: "probe-path", probe_serialisation: "global-lock", dma_ownership: "driver-core", domain_alloc: "device-ops" },
  },
  {
    name: "v6.16",
    note: "an instance serves client binds only once ready (da33e87bd2bf)",
    strategy: { ops_resolution: "upstream", fwspec_ops: "from-fwnode", fwspec_owner: "probe-path", probe_serialisation: "global-lock+ready", dma_ownership: "driver-core", domain_alloc: "device-ops" },
  },
  {
    name: "current",
    note: "as v6.16 on these axes (v6.18 gave the iommufd mock a software fwnode: a scenario's wiring, not an axis)",
    strategy: { ops_resolution: "upstream", fwspec_ops: "from-fwnode", fwspec_owner: "probe-path", probe_serialisation: "global-lock+ready", dma_ownership: "driver-core", domain_alloc: "device-ops" },
  },
] as const satisfies readonly { name: string; note: string; strategy: Record<string, string> }[];

export type PresetName = (typeof PRESET_TABLE)[number]["name"];
export const PRESET_NAMES = PRESET_TABLE.map((p) => p.name) as [PresetName, ...PresetName[]];
export const DEFAULT_PRESET: PresetName = "current";

export const PRESETS: Readonly<Record<PresetName, KernelPreset>> = Object.fromEntries(PRESET_TABLE.map((p) => [p.name, p as KernelPreset])) as Record<PresetName, KernelPreset>;

/** What is wrong with the table: a preset that leaves an axis out or names a strategy its axis lacks (a test asserts none). */
export function presetProblems(): string[] {
  const out: string[] = [];
  for (const p of PRESET_TABLE) {
    for (const a of AXIS_NAMES) {
      const n = (p.strategy as Record<string, string>)[a];
      if (n === undefined || !(AXES[a].names as readonly string[]).includes(n)) out.push(`kernel preset ${p.name}: no strategy '${n}' on axis ${a}`);
    }
    for (const a of Object.keys(p.strategy)) if (!(AXIS_NAMES as readonly string[]).includes(a)) out.push(`kernel preset ${p.name}: no axis ${a}`);
  }
  return out;
}

/** The strategies of a preset, overridden per axis by `over`. */
export function designChoice(kernel: PresetName | undefined, over: StrategyChoice | undefined): StrategyChoice {
  return { ...(PRESETS[kernel ?? DEFAULT_PRESET].strategy as StrategyChoice), ...over };
}
