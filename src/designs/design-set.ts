/**
 * A design named on the command line: a kernel preset (`v6.8`), or strategy
 * choices `AXIS=NAME` (several, comma-separated or flag by flag). Bad names
 * come back as a sentence listing what there is.
 */
import { didYouMean } from "../lib/did-you-mean.ts";
import { PRESET_NAMES, type PresetName } from "./presets.ts";
import { AXES, AXIS_NAMES, type AxisName, type StrategyChoice } from "./registry.ts";

export interface DesignSet {
  /** A kernel preset, when the set names one. */
  kernel?: PresetName;
  /** Strategy choices, each axis at most once. */
  strategy: StrategyChoice;
}

/** One `AXIS=NAME`: the axis and the strategy, or a sentence saying what is wrong. */
export function parseAssignment(text: string): { axis: AxisName; name: string } | string {
  const eq = text.indexOf("=");
  if (eq < 0) return `'${text.slice(0, 80)}' is not AXIS=NAME (axes: ${AXIS_NAMES.join(", ")})`;
  const axis = text.slice(0, eq).trim();
  const name = text.slice(eq + 1).trim();
  if (!(AXIS_NAMES as readonly string[]).includes(axis)) {
    return `unknown axis '${axis.slice(0, 80)}' (one of ${AXIS_NAMES.join(", ")})${didYouMean(axis, AXIS_NAMES)}`;
  }
  const names = AXES[axis as AxisName].names as readonly string[];
  if (!names.includes(name)) return `${axis}: unknown strategy '${name.slice(0, 80)}' (one of ${names.join(", ")})${didYouMean(name, names)}`;
  return { axis: axis as AxisName, name };
}

/** Strategy choices from `AXIS=NAME` items; an axis named twice is an error. */
export function parseAssignments(items: readonly string[]): StrategyChoice | string {
  const out: Record<string, string> = {};
  for (const item of items) {
    const a = parseAssignment(item);
    if (typeof a === "string") return a;
    if (out[a.axis] !== undefined && out[a.axis] !== a.name) return `${a.axis} is named twice (${out[a.axis]} and ${a.name})`;
    out[a.axis] = a.name;
  }
  return out as StrategyChoice;
}

/** A kernel preset, or a sentence listing the presets. */
export function parsePreset(text: string): { preset: PresetName } | string {
  if ((PRESET_NAMES as readonly string[]).includes(text)) return { preset: text as PresetName };
  return `unknown kernel preset '${text.slice(0, 80)}' (one of ${PRESET_NAMES.join(", ")})${didYouMean(text, PRESET_NAMES)}`;
}

/** A design set: a preset name, or `AXIS=NAME[,AXIS=NAME...]`. */
export function parseDesignSet(text: string): DesignSet | string {
  const t = text.trim();
  if (t === "") return `an empty design: give a kernel preset (${PRESET_NAMES.join(", ")}) or AXIS=NAME[,AXIS=NAME]`;
  if (!t.includes("=")) {
    const kernel = parsePreset(t);
    return typeof kernel === "string" ? kernel : { kernel: kernel.preset, strategy: {} };
  }
  const strategy = parseAssignments(t.split(",").map((x) => x.trim()).filter((x) => x !== ""));
  return typeof strategy === "string" ? strategy : { strategy };
}

/** How a design set reads in messages and headers. */
export function designSetName(d: DesignSet): string {
  const parts = Object.entries(d.strategy).map(([a, n]) => `${a}=${n}`);
  return [d.kernel ?? "", ...parts].filter((x) => x !== "").join(",") || "current";
}
