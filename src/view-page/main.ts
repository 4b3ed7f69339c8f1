/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The page `iommu-sim view` writes: reads the data embedded in it
 * (types.ts), draws each run (graph.ts) with its panes (panes.ts), and
 * steps through the runs together with the slider, the buttons and the
 * arrow keys (Home and End for the first and last step).
 */
import { expandSteps } from "./delta.ts";
import { Graph, type Selection } from "./graph.ts";
import { el, renderGroups, renderSelection, renderTrace } from "./panes.ts";
import { CSS } from "./style.ts";
import type { Snapshot, StepsDoc, TopoNode, TraceRecord, ViewData } from "./types.ts";

interface RunView {
  design: string;
  steps: StepsDoc["steps"];
  snaps: Snapshot[];
  topo: Map<string, TopoNode>;
  graph: Graph;
  trace: HTMLElement;
  selection: HTMLElement;
  groups: HTMLElement;
}

/** What the page exposes for tests and the curious (window.iommuSim). */
export interface PageApi {
  steps: number;
  current: () => number;
  drawn: () => { groups: number; devices: number }[];
  layoutMs: number[];
  lastStepMs: () => number;
  /** The last step's time from its key press (or click, or go()) to the frame after the pictures repainted (ms). */
  painted: () => Promise<number>;
  /** Zooms every picture out to its whole machine (the "Whole" button). */
  fit: () => void;
  /** Zooms every picture to `zoom` about its centre, as the wheel would. */
  zoom: (zoom: number) => void;
  /** Whether each picture is zoomed out far enough to be painted on its own canvas (far.ts), not by cytoscape. */
  far: () => boolean[];
  go: (i: number) => void;
  classes: (run: number, id: string) => string[];
  centre: (run: number, id: string) => { x: number; y: number } | null;
}

function button(label: string, aria: string, onClick: (e: MouseEvent) => void): HTMLButtonElement {
  const b = el("button", { type: "button", "aria-label": aria, title: aria }, label);
  b.addEventListener("click", onClick);
  return b;
}

function start(data: ViewData): void {
  const style = el("style");
  style.textContent = CSS;
  document.head.append(style);
  document.title = data.title;

  const count = Math.max(...data.runs.map((r) => r.doc.steps.length));
  let at = 0;
  let sel: Selection = null;
  let lastStepMs = 0;
  let painted: Promise<number> = Promise.resolve(0);

  const header = el("header");
  header.append(el("h1", {}, data.title));
  const controls = el("div", { class: "controls", role: "group", "aria-label": "steps" });
  const slider = el("input", { type: "range", min: "0", max: String(count - 1), value: "0", "aria-label": "step", id: "step-slider" });
  const label = el("span", { id: "step-label", "aria-live": "polite" });
  const sliderBox = el("div", { class: "slider" });
  sliderBox.append(slider);
  controls.append(
    button("« First", "first step (Home)", (e) => go(0, e.timeStamp)),
    button("‹ Prev", "previous step (Left arrow)", (e) => go(at - 1, e.timeStamp)),
    sliderBox,
    button("Next ›", "next step (Right arrow)", (e) => go(at + 1, e.timeStamp)),
    button("Last »", "last step (End)", (e) => go(count - 1, e.timeStamp)),
    button("Whole", "zoom the pictures out to the whole machine", () => fitAll()),
    label,
  );
  header.append(controls);
  const legend = el(
    "div",
    { class: "legend" },
    "Coloured regions: IOMMU groups (id, default domain type, owner). Border colour and → : the serving instance. Orange dashed: probe deferred. Red outline: ACS missing. Pink halo: changed at this step.",
  );
  header.append(legend);
  const divergence = el("div", { id: "divergence", role: "status" });
  if (data.divergence !== null) {
    const d = data.divergence;
    const mark = el("div", { class: "mark", "aria-hidden": "true" });
    mark.style.left = `calc(${count <= 1 ? 0 : (d.step / (count - 1)) * 100}% - 1px)`;
    sliderBox.append(mark);
    divergence.dataset.step = String(d.step);
    divergence.append(el("span", {}, `The designs part at step ${d.step + 1}: ${d.what}. `), button("Go there", "go to the first divergence", () => go(d.step)));
  } else if (data.runs.length === 2) {
    divergence.textContent = "The two designs do not part: every step is alike.";
  }
  header.append(divergence);
  document.body.append(header);

  const main = el("main", { class: `runs-${data.runs.length}` });
  document.body.append(main);
  // Every run's section is laid out before any picture is drawn, so each fits the width it ends with.
  const made = data.runs.map((r) => {
    const section = el("section", { class: "run", "aria-label": `design ${r.design}`, "data-design": r.design });
    if (data.runs.length > 1) section.append(el("h2", {}, r.design));
    const graphBox = el("div", { class: "graph", role: "img", "aria-label": `picture of the machine under ${r.design}; the list of groups says what it draws` });
    const side = el("div", { class: "side" });
    const tracePane = el("section", { class: "trace", "aria-label": "trace of this step" });
    const trace = el("pre", { tabindex: "0" });
    tracePane.append(el("h3", {}, "Trace of this step"), trace);
    const selPane = el("section", { class: "selection", "aria-label": "selection" });
    const selection = el("div", { "aria-live": "polite" });
    selPane.append(el("h3", {}, "Selection"), selection);
    const groupsPane = el("section", { class: "groups", "aria-label": "groups and devices" });
    const groups = el("ul", { class: "group-list" });
    groupsPane.append(el("h3", {}, "Groups and devices"), groups);
    side.append(tracePane, selPane, groupsPane);
    section.append(graphBox, side);
    main.append(section);
    return { r, graphBox, trace, selection, groups };
  });
  const runs: RunView[] = made.map(({ r, graphBox, trace, selection, groups }) => {
    const snaps = expandSteps(r.doc.steps);
    const topo = new Map(r.doc.topology.nodes.map((n) => [n.id, n]));
    const graph = new Graph(graphBox, r.doc.topology.nodes, snaps[snaps.length - 1]!, (s) => choose(s));
    return { design: r.design, steps: r.doc.steps, snaps, topo, graph, trace, selection, groups };
  });

  function fitAll(): void {
    for (const r of runs) r.graph.fit();
  }

  function choose(s: Selection): void {
    sel = s;
    for (const r of runs) {
      const i = Math.min(at, r.snaps.length - 1);
      r.graph.select(s === null ? null : s.kind === "group" ? `group:${s.id}` : s.id);
      renderSelection(r.selection, s, r.snaps[i]!, r.topo);
      for (const li of r.groups.querySelectorAll("li.selected")) li.classList.remove("selected");
      if (s !== null) r.groups.querySelector(s.kind === "group" ? `li[data-group="${CSS_escape(s.id)}"]` : `li[data-device="${CSS_escape(s.id)}"]`)?.classList.add("selected");
    }
  }

  /** Shows step i; `since` is when the user asked for it (the event's time stamp), for the painted time. */
  function go(i: number, since?: number): void {
    const t0 = performance.now();
    const redrawn: Graph[] = [];
    at = Math.max(0, Math.min(count - 1, i));
    slider.value = String(at);
    const labels: string[] = [];
    for (const r of runs) {
      const k = Math.min(at, r.snaps.length - 1);
      const snap = r.snaps[k]!;
      const before = k === 0 ? null : r.snaps[k - 1]!;
      if (r.graph.show(snap, before)) redrawn.push(r.graph);
      renderTrace(r.trace, k === at ? (JSON.parse(r.steps[k]!.trace) as TraceRecord[]) : []);
      renderGroups(r.groups, snap, before, r.topo, sel, choose);
      renderSelection(r.selection, sel, snap, r.topo);
      labels.push(k === at ? r.steps[k]!.label : "(ended)");
    }
    const same = labels.every((l) => l === labels[0]);
    label.textContent = `step ${at + 1} of ${count}: ${same ? labels[0] : labels.join(" | ")}`;
    if (data.divergence !== null) divergence.classList.toggle("here", at === data.divergence.step);
    document.body.dataset.step = String(at);
    lastStepMs = performance.now() - t0;
    painted = paintedAfter(redrawn, since ?? t0);
  }

  /**
   * When the step can be seen: each changed picture has drawn its canvas (cytoscape's "render"), and
   * the frame after that has begun, so the one with the new canvas went out (two frames if no picture changed).
   */
  function paintedAfter(redrawn: Graph[], since: number): Promise<number> {
    return new Promise<number>((res) => {
      // Asked for inside the last "render" handler, this frame callback comes before cytoscape's next
      // render loop's, so the time is not that of whatever cytoscape draws next (chunks drawn after the step).
      const done = () => requestAnimationFrame(() => res(performance.now() - since));
      if (redrawn.length === 0) {
        requestAnimationFrame(done);
        return;
      }
      let left = redrawn.length;
      for (const g of redrawn) g.cy.one("render", () => --left === 0 && done());
    });
  }

  slider.addEventListener("input", (e) => go(Number(slider.value), e.timeStamp));
  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    // On the slider too: the keys step once, whatever the slider would do.
    const k = e.key;
    if (k === "ArrowRight" || k === "ArrowLeft" || k === "Home" || k === "End") {
      e.preventDefault();
      go(k === "ArrowRight" ? at + 1 : k === "ArrowLeft" ? at - 1 : k === "Home" ? 0 : count - 1, e.timeStamp);
    }
  });

  go(0);
  choose(null);
  const api: PageApi = {
    steps: count,
    current: () => at,
    drawn: () => runs.map((r) => r.graph.drawn()),
    layoutMs: runs.map((r) => r.graph.layoutMs),
    lastStepMs: () => lastStepMs,
    painted: () => painted,
    fit: fitAll,
    zoom: (z) => {
      for (const r of runs) r.graph.zoomTo(z);
    },
    far: () => runs.map((r) => r.graph.farShown()),
    go: (i) => go(i),
    classes: (run, id) => runs[run]?.graph.classes(id) ?? [],
    centre: (run, id) => runs[run]?.graph.centre(id) ?? null,
  };
  (window as unknown as { iommuSim: PageApi }).iommuSim = api;
  document.body.dataset.ready = "true";
}

/** An attribute value for a selector (device names have colons and dots). */
function CSS_escape(s: string): string {
  return s.replace(/["\\]/g, "\\$&");
}

const dataEl = document.getElementById("iommu-sim-data");
if (dataEl === null || dataEl.textContent === null) throw new Error("iommu-sim view: the page has no data (a script element with id iommu-sim-data)");
start(JSON.parse(dataEl.textContent) as ViewData);
