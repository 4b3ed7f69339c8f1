/**
 * The page `iommu-sim view` writes: one HTML file holding the runs' data
 * and the page's script, that loads nothing else (its Content-Security-Policy
 * forbids it) and so works offline, from a file.
 */
import type { StepsRun } from "./steps.ts";

/** The data the page reads (src/view-page/types.ts ViewData). */
export interface ViewData {
  title: string;
  runs: { design: string; doc: unknown }[];
  divergence: { step: number; what: string } | null;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

export function viewHtml(data: ViewData, script: string, version: string): string {
  // Inside <script>, only "</script" (and "<!--") can end the element early: escape every "<" of the JSON, and "</script" of the code.
  const json = JSON.stringify(data).replace(/</g, "\\u003c");
  const code = script.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:">`,
    `<meta name="generator" content="iommu-sim ${escapeHtml(version)}">`,
    `<title>${escapeHtml(data.title)}</title>`,
    "</head>",
    "<body>",
    "<noscript>This page draws the run with JavaScript: allow scripts for this file.</noscript>",
    `<script type="application/json" id="iommu-sim-data">${json}</script>`,
    `<script>${code}</script>`,
    "</body>",
    "</html>",
    "",
  ].join("\n");
}

/**
 * Where two runs stepped together first part: the first step whose label,
 * trace or state differs, or where one run has ended; null when alike.
 * States are compared by their deltas (equal deltas from equal states give
 * equal states), the first step's without the design's own keys.
 */
export function firstDivergence(a: StepsRun, b: StepsRun): { step: number; what: string } | null {
  const n = Math.max(a.steps.length, b.steps.length);
  for (let i = 0; i < n; i++) {
    const x = a.steps[i];
    const y = b.steps[i];
    if (x === undefined || y === undefined) return { step: i, what: `the ${x === undefined ? "first" : "second"} run has ended, the other goes on with ${(x ?? y)!.label}` };
    if (x.label !== y.label) return { step: i, what: `one runs ${x.label}, the other ${y.label}` };
    const state = (s: (typeof x)) => {
      if (s.snapshot === undefined) return s.delta ?? {};
      const { strategy: _s, kernel: _k, ...rest } = s.snapshot;
      return rest;
    };
    const sx = state(x) as Record<string, unknown>;
    const sy = state(y) as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(sx), ...Object.keys(sy)])].filter((k) => JSON.stringify(sx[k]) !== JSON.stringify(sy[k]));
    if (keys.length > 0) return { step: i, what: `after ${x.label} the state differs (${keys.join(", ")})` };
    if (JSON.stringify(x.trace) !== JSON.stringify(y.trace)) return { step: i, what: `${x.label} makes different kernel calls (the same state after it)` };
  }
  return null;
}
