/// <reference lib="dom" />
/**
 * The picture of one run: the topology tree laid out once in layers
 * (layout.ts), each IOMMU group a coloured region drawn under its devices
 * (a node sized to their bounding box: the devices never move, so a step
 * only resizes the regions of the groups it changed; cytoscape's compound
 * nodes cost seconds to re-parent 2,000 devices). Showing a step changes only what differs from the step shown
 * before (rows of the snapshot are shared between steps, so a changed row
 * is a different object) and marks what the step itself changed. Zoomed
 * out below the zoom where labels are drawn, a canvas of its own paints
 * the picture (far.ts) and cytoscape's boxes wait for the zoom to come back.
 */
import cytoscape from "cytoscape";
import { FarPicture, stateClasses, type FarScene } from "./far.ts";
import { NODE_H, NODE_W, treePositions } from "./layout.ts";
import { LOOK } from "./look.ts";
import { devicesOf, groupsOf, iommusOf } from "./rows.ts";
import type { DeviceSnap, GroupSnap, Snapshot, TopoNode } from "./types.ts";

const GROUP_FILL = ["#cfe8fc", "#d7f5d0", "#fde2c8", "#eadcf8", "#fdf3b5", "#d0f0ef", "#f9d3e0", "#e3e3e3"];
const INSTANCE_COLOUR = ["#1f5fbf", "#2e7d32", "#b3541e", "#6a3d9a", "#00838f", "#8d6e00", "#ad1457", "#455a64"];

export type Selection = { kind: "device" | "group"; id: string } | null;

function stateLine(d: DeviceSnap): string {
  if (!d.registered) return "not added";
  if (d.probe === "bound") return `driver: ${d.driver}`;
  if (d.probe === "deferred") return "probe deferred";
  if (d.probe === "failed") return `probe failed: ${d.probe_error}`;
  return "no driver";
}

export function groupLabel(g: GroupSnap): string {
  return `group ${g.id} · ${g.type} · owner ${g.owner}`;
}

/** A group's label on the canvas: two short lines, to fit over a one-device region. */
function groupCanvasLabel(g: GroupSnap): string {
  return `group ${g.id} · ${g.type}\nowner ${g.owner}`;
}

/** The zoom under which labels are too small to draw (min-zoomed-font-size over font-size). */
const READABLE_ZOOM = 5 / 9;
/** Devices drawn per task after a step on a machine shown in part (a boot phase changes thousands). */
const FLUSH_CHUNK = 100;

const STYLE: cytoscape.StylesheetJson = [
  {
    selector: "node",
    style: {
      label: "data(label)",
      "text-wrap": "wrap",
      "text-valign": "center",
      "font-size": 9,
      // Labels too small to read are not drawn: a whole 2,000-device machine redraws several times faster.
      "min-zoomed-font-size": 5,
      "font-family": "system-ui, sans-serif",
      width: NODE_W,
      height: NODE_H,
      shape: "round-rectangle",
      "background-color": LOOK.boxFill,
      "border-width": 2,
      "border-color": "data(colour)",
      "z-index": 10,
    },
  },
  { selector: "node.iommu", style: { shape: "hexagon", "background-color": "data(colour)", color: "#fff", "font-weight": "bold", width: LOOK.iommuWidth } },
  { selector: "node.iommu.unregistered", style: { "background-opacity": LOOK.unregisteredOpacity, color: "#000", "border-style": "dashed" } },
  { selector: "node.bus", style: { shape: "ellipse", "background-color": LOOK.busFill, "border-color": LOOK.grey, width: LOOK.busWidth } },
  { selector: "node.host", style: { shape: "rectangle", "background-color": LOOK.hostFill } },
  { selector: "node.bridge", style: { shape: "cut-rectangle" } },
  { selector: "node.deferred", style: { "background-color": LOOK.deferredFill, "border-style": "dashed" } },
  { selector: "node.failed", style: { "background-color": LOOK.failedFill } },
  { selector: "node.absent", style: { opacity: LOOK.absentOpacity, "border-style": "dotted" } },
  { selector: "node.no-acs", style: { "outline-width": 3, "outline-color": LOOK.acs, "outline-offset": 2 } },
  {
    selector: "node.group",
    style: {
      shape: "round-rectangle",
      width: "data(w)",
      height: "data(h)",
      "z-index": 0,
      "background-color": "data(colour)",
      "background-opacity": LOOK.groupOpacity,
      "border-width": 1,
      "border-color": LOOK.groupBorder,
      label: "data(label)",
      "text-valign": "top",
      "text-halign": "center",
      "font-size": 9,
      "font-weight": "bold",
      "text-wrap": "wrap",
      "text-max-width": "130px",
      padding: "6px",
    },
  },
  { selector: "node.group.user", style: { "border-width": LOOK.userBorderWidth, "border-color": LOOK.userBorder } },
  { selector: "node.group.none", style: { "border-style": "dashed" } },
  { selector: "node.group.unused", style: { display: "none" } },
  // Haystack edges are the cheapest cytoscape draws (straight, no arrow): a 2,000-device machine has as many.
  { selector: "edge", style: { width: 1, "line-color": "#999", "curve-style": "haystack", "haystack-radius": 0 } },
  // Zoomed out below where labels are drawn, the edges are sub-pixel lines: not drawn (a quarter of the repaint).
  { selector: "edge.far", style: { display: "none" } },
  { selector: "node.changed", style: { "underlay-color": LOOK.changed, "underlay-opacity": LOOK.changedOpacity, "underlay-padding": 6 } },
  { selector: "node.chosen", style: { "overlay-color": "#000", "overlay-opacity": LOOK.chosenOpacity, "overlay-padding": 4 } },
];

export class Graph {
  readonly cy: cytoscape.Core;
  /** How long the first layout took (ms). */
  readonly layoutMs: number;
  private readonly topo: Map<string, TopoNode>;
  private readonly instanceColour = new Map<string, string>();
  /** The step shown, and the step before it (whose differences are marked). */
  private shown: Snapshot | null = null;
  private shownBefore: Snapshot | null = null;
  /** The step cytoscape's boxes show (behind while zoomed out: the far picture shows `shown`). */
  private cyShown: Snapshot | null = null;
  /** Zoomed out under the readable zoom: the far picture shows the steps (a flag that flips with the zoom). */
  private far = false;
  /** Zoomed out: the picture on a canvas of its own, with what the step shown changed, and the selection. */
  private readonly farPicture: FarPicture;
  private readonly farScene: FarScene;
  private farChanged = new Set<string>();
  private farQueued = false;
  private selected: string | null = null;
  private readonly pos: Map<string, { x: number; y: number }>;
  /** Whether a step pans the picture to what it changed when none of it is in view (a machine shown in part). */
  private follow = false;
  /** The elements marked `changed` (the step shown's changes), to unmark only them at the next step. */
  private marked: cytoscape.CollectionReturnValue;
  /**
   * On a machine shown in part: devices out of view whose boxes still show an older row, drawn in chunks
   * after the frame that shows the step, and those to mark `changed`, marked when the view moves.
   */
  private readonly pendingRows = new Map<string, DeviceSnap>();
  private pendingMarks = new Set<string>();
  private flushing = false;
  private panning = false;

  constructor(container: HTMLElement, nodes: readonly TopoNode[], final: Snapshot, onSelect: (s: Selection) => void) {
    this.topo = new Map(nodes.map((n) => [n.id, n]));
    this.marked = cytoscape().collection();
    final.iommus.forEach((i, k) => this.instanceColour.set(i.name, INSTANCE_COLOUR[k % INSTANCE_COLOUR.length]!));
    const groupOf = new Map<string, number>();
    for (const g of final.groups) for (const d of g.devices) groupOf.set(d, g.id);
    const t0 = performance.now();
    this.pos = treePositions(nodes, groupOf);
    const els: cytoscape.ElementDefinition[] = [];
    for (const n of nodes) {
      const colour = n.kind === "iommu" ? this.instanceColour.get(n.label)! : LOOK.grey;
      els.push({ group: "nodes", data: { id: n.id, label: n.label, colour }, position: { ...this.pos.get(n.id)! }, classes: `${n.kind}${n.acs_missing !== null ? " no-acs" : ""}` });
      if (n.parent !== null) els.push({ group: "edges", data: { id: `edge:${n.id}`, source: n.parent, target: n.id } });
    }
    // The last step's groups' regions, hidden until a step shows them: adding elements at a step costs more than showing them.
    for (const g of final.groups) els.push(this.groupElement(g.id));
    this.cy = cytoscape({
      container,
      elements: els,
      style: STYLE,
      layout: { name: "preset", fit: true, padding: 30 },
      maxZoom: 2.5,
      // Large machines: move and zoom a cached picture, without edges, while the view changes.
      textureOnViewport: nodes.length > 500,
      hideEdgesOnViewport: nodes.length > 500,
      // The selection is the page's (select(), a class), not cytoscape's: a tap on a zoomed-out picture may land on a stale box.
      autounselectify: true,
      boxSelectionEnabled: false,
    });
    // A machine too wide to read whole (2,000 devices fit in 1280 pixels are dots): open at a zoom where
    // the boxes' labels are drawn, at the tree's left end; the wheel or a pinch zooms out to the whole.
    if (this.cy.zoom() < READABLE_ZOOM) {
      const bb = this.cy.elements().boundingBox();
      this.cy.zoom(Math.min(1, Math.max(READABLE_ZOOM, this.cy.height() / (bb.h + 60))));
      this.cy.pan({ x: 30 - bb.x1 * this.cy.zoom(), y: (this.cy.height() - (bb.y1 + bb.y2) * this.cy.zoom()) / 2 });
      this.follow = true;
      this.cy.on("viewport", () => {
        if (!this.panning) this.flush(Infinity);
      });
    }
    this.farScene = {
      nodes,
      pos: this.pos,
      colourOf: (d, n) => (n.kind === "iommu" ? this.instanceColour.get(n.label)! : d?.iommu != null ? (this.instanceColour.get(d.iommu) ?? LOOK.grey) : LOOK.grey),
      groupFill: (id) => GROUP_FILL[id % GROUP_FILL.length]!,
      region: (g) => this.region(g),
      viewport: () => ({ zoom: this.cy.zoom(), pan: this.cy.pan() }),
    };
    this.farPicture = new FarPicture(container, this.farScene);
    this.followZoom();
    this.cy.on("zoom", () => this.followZoom());
    this.cy.on("viewport resize", () => this.repaintFar());
    this.layoutMs = performance.now() - t0;
    this.cy.on("tap", (e) => {
      // Zoomed out, cytoscape's regions may be an older step's: the far picture's own boxes and regions answer.
      if (this.far && this.shown !== null) {
        const hit = FarPicture.hit(this.farScene, this.shown, e.position.x, e.position.y);
        if (hit !== null) onSelect(hit);
        return;
      }
      if (e.target === this.cy) return;
      const id = (e.target as cytoscape.NodeSingular).id();
      if (id.startsWith("group:")) onSelect({ kind: "group", id: id.slice(6) });
      else if (!id.startsWith("iommu:") && !id.startsWith("bus:")) onSelect({ kind: "device", id });
    });
  }

  /** Paints the far picture of the step shown (zoomed out only). */
  private paintFar(): void {
    if (this.far && this.shown !== null) this.farPicture.draw(this.shown, { changed: this.farChanged, selected: this.selected });
  }

  /** Paints the far picture at the next frame (the view moving: once per frame). */
  private repaintFar(): void {
    if (!this.far || this.farQueued) return;
    this.farQueued = true;
    requestAnimationFrame(() => {
      this.farQueued = false;
      this.paintFar();
    });
  }

  private groupElement(id: number): cytoscape.ElementDefinition {
    return { group: "nodes", data: { id: `group:${id}`, label: `group ${id}`, colour: GROUP_FILL[id % GROUP_FILL.length], w: 1, h: 1 }, classes: "group unused" };
  }

  /** The region around a group's devices: their bounding box and a margin. */
  private region(g: GroupSnap): { x: number; y: number; w: number; h: number } {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const d of g.devices) {
      const p = this.pos.get(d);
      if (p === undefined) continue;
      x0 = Math.min(x0, p.x - NODE_W / 2);
      x1 = Math.max(x1, p.x + NODE_W / 2);
      y0 = Math.min(y0, p.y - NODE_H / 2);
      y1 = Math.max(y1, p.y + NODE_H / 2);
    }
    if (x0 === Infinity) return { x: 0, y: 0, w: 1, h: 1 };
    const m = 9;
    return { x: (x0 + x1) / 2, y: (y0 + y1) / 2, w: x1 - x0 + 2 * m, h: y1 - y0 + 2 * m };
  }

  /**
   * Shows `snap`, marking what changed from `before` (the step before it; null for the first). Touches
   * only the elements whose rows differ from the step shown before, and the few marked; returns whether
   * anything in the picture changed (so it will be redrawn).
   */
  show(snap: Snapshot, before: Snapshot | null, follow = this.follow): boolean {
    if (!this.far) return this.showInCytoscape(snap, before, follow);
    if (this.shown !== snap) this.showFar(snap, before, follow);
    // Drawn now, on the canvas: nothing for cytoscape to render.
    return false;
  }

  /** Shows a step on the far picture (see show), leaving cytoscape's boxes as they are. */
  private showFar(snap: Snapshot, before: Snapshot | null, follow: boolean): void {
    this.shown = snap;
    this.shownBefore = before;
    const changed = new Set<string>();
    if (before !== null) {
      const bd = devicesOf(before);
      const bg = groupsOf(before);
      for (const d of snap.devices) if (bd.get(d.name) !== d) changed.add(d.name);
      for (const g of snap.groups) if (bg.get(g.id) !== g) changed.add(`group:${g.id}`);
      if (follow && changed.size > 0) this.bringIntoView(snap.devices.filter((d) => changed.has(d.name)).map((d) => d.name));
    }
    this.farChanged = changed;
    this.paintFar();
  }

  /** Shows a step in cytoscape's boxes (see show); `follow`: pan to what it changed when none of it is in view. */
  private showInCytoscape(snap: Snapshot, before: Snapshot | null, follow: boolean): boolean {
    const cy = this.cy;
    const prev = this.cyShown;
    this.shown = snap;
    this.shownBefore = before;
    if (prev === snap) return false;
    const prevDevices = devicesOf(prev);
    const prevGroups = groupsOf(prev);
    const beforeDevices = devicesOf(before);
    const beforeGroups = groupsOf(before);
    let touched = this.marked.nonempty();
    const mark = cy.collection();
    this.pendingMarks = new Set();
    // Follow the step first, so that what it changed in view is drawn now and the rest after the frame.
    const changedDevices = before === null ? [] : snap.devices.filter((d) => beforeDevices.get(d.name) !== d);
    if (follow && changedDevices.length > 0) this.bringIntoView(changedDevices.map((d) => d.name));
    const inView = this.viewTest();
    cy.batch(() => {
      this.marked.removeClass("changed");
      const live = new Set<number>();
      for (const g of snap.groups) {
        live.add(g.id);
        const id = `group:${g.id}`;
        let node = cy.getElementById(id);
        if (node.empty()) node = cy.add(this.groupElement(g.id));
        if (prevGroups.get(g.id) !== g || node.hasClass("unused")) {
          const r = this.region(g);
          node.data({ label: groupCanvasLabel(g), w: r.w, h: r.h });
          node.position({ x: r.x, y: r.y });
          node.removeClass("unused kernel user none").addClass(g.owner);
          touched = true;
        }
        if (before !== null && beforeGroups.get(g.id) !== g) mark.merge(node);
      }
      for (const d of snap.devices) {
        const now = inView(d.name);
        if (prevDevices.get(d.name) !== d || (now && this.pendingRows.has(d.name))) {
          // Changed, or still pending from a step before and now in view (the step panned to it).
          if (now) {
            this.drawDevice(d);
            this.pendingRows.delete(d.name);
            touched = true;
          } else this.pendingRows.set(d.name, d);
        }
        if (before !== null && beforeDevices.get(d.name) !== d) {
          if (now) mark.merge(cy.getElementById(d.name));
          else this.pendingMarks.add(d.name);
        }
      }
      const prevIommus = iommusOf(prev);
      for (const i of snap.iommus) {
        if (prevIommus.get(i.name) === i) continue;
        cy.getElementById(`iommu:${i.name}`).toggleClass("unregistered", !i.registered);
        touched = true;
      }
      // Groups of other steps are not drawn.
      for (const g of prev?.groups ?? []) {
        if (live.has(g.id)) continue;
        cy.getElementById(`group:${g.id}`).addClass("unused");
        touched = true;
      }
      mark.addClass("changed");
    });
    this.marked = mark;
    this.cyShown = snap;
    if (this.pendingRows.size > 0) this.scheduleFlush();
    return touched || mark.nonempty();
  }

  /** Whether a device's box is in view or near it (within a view's width or height); all are on a machine shown whole. */
  private viewTest(): (name: string) => boolean {
    if (!this.follow) return () => true;
    const e = this.cy.extent();
    const x1 = e.x1 - e.w, x2 = e.x2 + e.w, y1 = e.y1 - e.h, y2 = e.y2 + e.h;
    return (name) => {
      const p = this.pos.get(name);
      return p === undefined || (p.x >= x1 && p.x <= x2 && p.y >= y1 && p.y <= y2);
    };
  }

  /** Draws what is pending in chunks, each after the frame before it (a key press between chunks is handled first). */
  private scheduleFlush(): void {
    if (this.flushing) return;
    this.flushing = true;
    this.cy.one("render", () => {
      setTimeout(() => {
        this.flushing = false;
        this.flush(FLUSH_CHUNK);
        if (this.pendingRows.size > 0) this.scheduleFlush();
      }, 0);
    });
  }

  /**
   * Draws up to `n` pending devices; when the view moves (n infinite), also the marks out of view (a mark
   * restyles its box, and again when the next step unmarks it: not worth it where nobody looks).
   */
  private flush(n: number): void {
    if (this.far || (this.pendingRows.size === 0 && this.pendingMarks.size === 0)) return;
    const cy = this.cy;
    cy.batch(() => {
      let left = n;
      for (const [name, d] of this.pendingRows) {
        if (left-- <= 0) break;
        this.drawDevice(d);
        this.pendingRows.delete(name);
      }
      if (n !== Infinity) return;
      for (const name of this.pendingMarks) {
        const e = cy.getElementById(name);
        e.addClass("changed");
        this.marked = this.marked.union(e);
        this.pendingMarks.delete(name);
      }
    });
  }

  /** Pans (at the same zoom) to the first of these devices when none of them is in view. */
  private bringIntoView(names: readonly string[]): void {
    const e = this.cy.extent();
    const ps = names.map((n) => this.pos.get(n)).filter((p) => p !== undefined);
    if (ps.length === 0 || ps.some((p) => p.x + NODE_W / 2 >= e.x1 && p.x - NODE_W / 2 <= e.x2 && p.y + NODE_H / 2 >= e.y1 && p.y - NODE_H / 2 <= e.y2)) return;
    // The step draws what comes into view itself (show), not every device still pending.
    this.panning = true;
    this.cy.panBy({ x: (e.x1 + e.w / 2 - ps[0]!.x) * this.cy.zoom(), y: 0 });
    this.panning = false;
  }

  private drawDevice(d: DeviceSnap): void {
    const n = this.cy.getElementById(d.name);
    const t = this.topo.get(d.name);
    const lines = [d.name, stateLine(d)];
    if (d.iommu !== null) lines.push(`→ ${d.iommu}`);
    if (t?.acs_missing) lines.push("⚠ ACS missing");
    const colour = d.iommu === null ? LOOK.grey : (this.instanceColour.get(d.iommu) ?? LOOK.grey);
    n.data({ label: lines.join("\n"), colour });
    const cls = stateClasses(d);
    n.toggleClass("deferred", cls.includes("deferred"));
    n.toggleClass("failed", cls.includes("failed"));
    n.toggleClass("absent", cls.includes("absent"));
  }

  /** Hands the step shown over between cytoscape's boxes and the far picture when the zoom crosses the readable zoom. */
  private followZoom(): void {
    const far = this.cy.zoom() < READABLE_ZOOM;
    if (far === this.far) return;
    this.far = far;
    this.cy.batch(() => this.cy.edges().toggleClass("far", far));
    if (far) {
      // The step shown, with its marks, now on the far picture; the zoom is the reader's: the view does not move to the step's changes.
      if (this.shown !== null) this.showFar(this.shown, this.shownBefore, false);
      return;
    }
    // Back where labels are drawn: cytoscape's boxes catch up with the step shown, the selection too
    // (a group chosen while zoomed out may have no box in cytoscape until now).
    this.farPicture.hide();
    if (this.shown !== null) this.showInCytoscape(this.shown, this.shownBefore, false);
    this.select(this.selected);
  }

  /** Zooms out to the whole machine (on a large one, its boxes too small to label). */
  fit(): void {
    this.cy.fit(undefined, 30);
  }

  /** Zooms to `zoom` about the view's centre. */
  zoomTo(zoom: number): void {
    this.cy.zoom({ level: zoom, renderedPosition: { x: this.cy.width() / 2, y: this.cy.height() / 2 } });
  }

  select(id: string | null): void {
    this.selected = id;
    this.cy.batch(() => {
      this.cy.$(".chosen").removeClass("chosen");
      if (id !== null) this.cy.getElementById(id).addClass("chosen");
    });
    this.paintFar();
  }

  /** A node's classes as the picture shows them (kind, states, `changed`), for tests. */
  classes(id: string): string[] {
    if (this.far && this.shown !== null) return this.farClasses(id, this.shown);
    const n = this.cy.getElementById(id);
    return n.empty() ? [] : n.classes();
  }

  /** The classes the far picture draws a node with (those cytoscape's style gives the same look). */
  private farClasses(id: string, snap: Snapshot): string[] {
    const changed = this.farChanged.has(id) ? ["changed"] : [];
    if (id.startsWith("group:")) {
      const g = snap.groups.find((x) => `group:${x.id}` === id);
      // A group not live at this step: as cytoscape has it (a region made up front and hidden), or nothing.
      if (g === undefined) return this.cy.getElementById(id).empty() ? [] : ["group", "unused"];
      return ["group", g.owner, ...changed];
    }
    const n = this.topo.get(id);
    if (n === undefined) return [];
    const d = devicesOf(snap).get(id);
    const iommu = n.kind === "iommu" && iommusOf(snap).get(n.label)?.registered === false ? ["unregistered"] : [];
    return [n.kind, ...(n.acs_missing !== null ? ["no-acs"] : []), ...iommu, ...(d === undefined ? [] : stateClasses(d)), ...changed];
  }

  /** Whether the far picture (the canvas of the zoomed-out view) is what is shown, for tests. */
  farShown(): boolean {
    return this.farPicture.visible;
  }

  /** Where a node is drawn, in the page's coordinates (to click it). */
  centre(id: string): { x: number; y: number } | null {
    const n = this.cy.getElementById(id);
    if (n.empty()) return null;
    const r = this.cy.container()!.getBoundingClientRect();
    const p = n.renderedPosition();
    return { x: r.left + p.x, y: r.top + p.y };
  }

  /** Drawn counts, for tests and the status line: groups with devices, device nodes. */
  drawn(): { groups: number; devices: number } {
    // Zoomed out: what the far picture's last paint drew of the step shown (every group's region and every device's box, in view or not).
    if (this.far) return { ...this.farPicture.painted };
    const groups = this.cy.nodes(".group").filter((n) => !n.hasClass("unused")).length;
    const devices = this.cy.nodes(".endpoint, .bridge, .platform, .host").length;
    return { groups, devices };
  }
}
