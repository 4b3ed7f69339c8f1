/// <reference lib="dom" />
/**
 * The picture zoomed out below the zoom where labels are drawn: the same
 * boxes, regions and marks as the graph (graph.ts), painted on one canvas
 * laid over cytoscape's. There a step repaints the canvas in a few
 * milliseconds, where cytoscape restyles every box a step changes (a boot
 * phase changes 2,000: a quarter of a second); cytoscape keeps the view
 * (wheel, drag, taps) and catches up with the state when the zoom makes
 * labels readable again.
 */
import { NODE_H, NODE_W } from "./layout.ts";
import { LOOK } from "./look.ts";
import { devicesByName, iommusByName } from "./rows.ts";
import type { DeviceSnap, GroupSnap, Snapshot, TopoNode } from "./types.ts";

/** How a box is drawn: the graph's classes for a device's state. */
export function stateClasses(d: DeviceSnap): string[] {
  const out: string[] = [];
  if (d.probe === "deferred") out.push("deferred");
  if (d.probe === "failed") out.push("failed");
  if (!d.registered) out.push("absent");
  return out;
}

/** What the far picture needs of the graph: where boxes are, their colours, and the view. */
export interface FarScene {
  readonly nodes: readonly TopoNode[];
  readonly pos: ReadonlyMap<string, { x: number; y: number }>;
  /** A device's border colour: its serving instance's, or grey. */
  colourOf(d: DeviceSnap | undefined, n: TopoNode): string;
  groupFill(id: number): string;
  /** A group's region in the model's coordinates (centre and size). */
  region(g: GroupSnap): { x: number; y: number; w: number; h: number };
  viewport(): { zoom: number; pan: { x: number; y: number } };
}

/** The marks a step leaves, and the selection. */
export interface FarMarks {
  /** Devices and groups (`group:ID`) the step changed. */
  changed: ReadonlySet<string>;
  selected: string | null;
}

/** A hexagon's corners, as fractions of the half width and half height (cytoscape's). */
const HEXAGON: readonly (readonly [number, number])[] = [
  [-1, 0],
  [-0.5, -1],
  [0.5, -1],
  [1, 0],
  [0.5, 1],
  [-0.5, 1],
];

/** A rectangle's corners, and a cut rectangle's (a bridge's shape), likewise. */
const RECTANGLE: readonly (readonly [number, number])[] = [
  [-1, -1],
  [1, -1],
  [1, 1],
  [-1, 1],
];
const CUT_RECTANGLE: readonly (readonly [number, number])[] = [
  [-0.8, -1],
  [0.8, -1],
  [1, -0.6],
  [1, 0.6],
  [0.8, 1],
  [-0.8, 1],
  [-1, 0.6],
  [-1, -0.6],
];

/** The width of a box in each kind (as the graph's style). */
function widthOf(n: TopoNode): number {
  return n.kind === "iommu" ? LOOK.iommuWidth : n.kind === "bus" ? LOOK.busWidth : NODE_W;
}

/** A box's fill, as the graph's style rules give it (failed's rule after deferred's, both after host's). */
function fillOf(n: TopoNode, cls: readonly string[], colour: string): string {
  if (n.kind === "iommu") return colour;
  if (n.kind === "bus") return LOOK.busFill;
  if (cls.includes("failed")) return LOOK.failedFill;
  if (cls.includes("deferred")) return LOOK.deferredFill;
  return n.kind === "host" ? LOOK.hostFill : LOOK.boxFill;
}

export class FarPicture {
  readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  /** What the last paint drew of its step, in view or not (out of view it is skipped, not left out): group regions and device boxes. */
  painted = { groups: 0, devices: 0 };

  constructor(
    private readonly container: HTMLElement,
    private readonly scene: FarScene,
  ) {
    this.canvas = document.createElement("canvas");
    this.canvas.className = "far";
    this.canvas.setAttribute("aria-hidden", "true");
    Object.assign(this.canvas.style, { position: "absolute", inset: "0", zIndex: "5", pointerEvents: "none", display: "none" });
    container.append(this.canvas);
    this.ctx = this.canvas.getContext("2d")!;
  }

  get visible(): boolean {
    return this.canvas.style.display !== "none";
  }

  hide(): void {
    this.canvas.style.display = "none";
  }

  /** Paints `snap` with its marks over the whole view. */
  draw(snap: Snapshot, marks: FarMarks): void {
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const w = this.container.clientWidth;
    const h = this.container.clientHeight;
    if (c.width !== Math.round(w * ratio) || c.height !== Math.round(h * ratio)) {
      c.width = Math.round(w * ratio);
      c.height = Math.round(h * ratio);
      c.style.width = `${w}px`;
      c.style.height = `${h}px`;
    }
    c.style.display = "block";
    const g = this.ctx;
    const { zoom, pan } = this.scene.viewport();
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.fillStyle = LOOK.boxFill;
    g.fillRect(0, 0, w, h);
    // Model to view: x * zoom + pan.
    g.setTransform(ratio * zoom, 0, 0, ratio * zoom, ratio * pan.x, ratio * pan.y);
    const px = 1 / zoom;
    const inView = (x: number, y: number, hw: number, hh: number) =>
      (x + hw) * zoom + pan.x >= 0 && (x - hw) * zoom + pan.x <= w && (y + hh) * zoom + pan.y >= 0 && (y - hh) * zoom + pan.y <= h;
    const painted = { groups: 0, devices: 0 };
    // The groups' regions, under the boxes.
    for (const gr of snap.groups) {
      const r = this.scene.region(gr);
      painted.groups++;
      if (!inView(r.x, r.y, r.w / 2, r.h / 2)) continue;
      if (marks.changed.has(`group:${gr.id}`)) this.halo(r.x, r.y, r.w, r.h, px);
      g.globalAlpha = LOOK.groupOpacity;
      g.fillStyle = this.scene.groupFill(gr.id);
      g.fillRect(r.x - r.w / 2, r.y - r.h / 2, r.w, r.h);
      g.globalAlpha = 1;
      g.strokeStyle = gr.owner === "user" ? LOOK.userBorder : LOOK.groupBorder;
      g.lineWidth = Math.max(gr.owner === "user" ? LOOK.userBorderWidth : 1, px);
      g.setLineDash(gr.owner === "none" ? [6 * px, 4 * px] : []);
      g.strokeRect(r.x - r.w / 2, r.y - r.h / 2, r.w, r.h);
    }
    g.setLineDash([]);
    const devices = devicesByName(snap);
    const instances = iommusByName(snap);
    for (const n of this.scene.nodes) {
      const p = this.scene.pos.get(n.id);
      if (p === undefined) continue;
      const bw = widthOf(n);
      if (n.kind !== "iommu" && n.kind !== "bus") painted.devices++;
      if (!inView(p.x, p.y, bw / 2 + 8, NODE_H / 2 + 8)) continue;
      const d = devices.get(n.id);
      const x = p.x - bw / 2;
      const y = p.y - NODE_H / 2;
      const colour = this.scene.colourOf(d, n);
      if (marks.changed.has(n.id)) this.halo(p.x, p.y, bw, NODE_H, px);
      const cls = d === undefined ? [] : stateClasses(d);
      const unregistered = n.kind === "iommu" && instances.get(n.label)?.registered === false;
      // As the graph's style: the later rule wins (absent's dotted border over deferred's dashed one), and
      // absent's opacity covers the whole box, an unregistered instance's only its fill.
      const alpha = cls.includes("absent") ? LOOK.absentOpacity : 1;
      g.globalAlpha = alpha * (unregistered ? LOOK.unregisteredOpacity : 1);
      g.fillStyle = fillOf(n, cls, colour);
      g.strokeStyle = n.kind === "bus" ? LOOK.grey : colour;
      g.lineWidth = Math.max(2, px);
      g.setLineDash(cls.includes("absent") ? [px, 2 * px] : cls.includes("deferred") || unregistered ? [6 * px, 4 * px] : []);
      g.beginPath();
      if (n.kind === "bus") g.ellipse(p.x, p.y, bw / 2, NODE_H / 2, 0, 0, 2 * Math.PI);
      else for (const [dx, dy] of n.kind === "iommu" ? HEXAGON : n.kind === "bridge" ? CUT_RECTANGLE : RECTANGLE) g.lineTo(p.x + (dx * bw) / 2, p.y + (dy * NODE_H) / 2);
      g.closePath();
      g.fill();
      g.globalAlpha = alpha;
      g.stroke();
      g.globalAlpha = 1;
      g.setLineDash([]);
      if (n.acs_missing !== null && n.acs_missing !== undefined) {
        g.strokeStyle = LOOK.acs;
        g.lineWidth = Math.max(3, 2 * px);
        g.strokeRect(x - 3, y - 3, bw + 6, NODE_H + 6);
      }
      if (marks.selected === n.id) this.shade(x - 4, y - 4, bw + 8, NODE_H + 8);
    }
    if (marks.selected?.startsWith("group:")) {
      const gr = snap.groups.find((x) => `group:${x.id}` === marks.selected);
      if (gr !== undefined) {
        const r = this.scene.region(gr);
        this.shade(r.x - r.w / 2 - 4, r.y - r.h / 2 - 4, r.w + 8, r.h + 8);
      }
    }
    g.setTransform(1, 0, 0, 1, 0, 0);
    this.painted = painted;
  }

  /** The pink halo of a changed element, at least 3 pixels wide however far out the zoom is. */
  private halo(cx: number, cy: number, w: number, h: number, px: number): void {
    const pad = Math.max(6, 3 * px);
    const g = this.ctx;
    g.globalAlpha = LOOK.changedOpacity;
    g.fillStyle = LOOK.changed;
    g.fillRect(cx - w / 2 - pad, cy - h / 2 - pad, w + 2 * pad, h + 2 * pad);
    g.globalAlpha = 1;
  }

  /** The shade over the selection (cytoscape's overlay). */
  private shade(x: number, y: number, w: number, h: number): void {
    const g = this.ctx;
    g.globalAlpha = LOOK.chosenOpacity;
    g.fillStyle = "#000";
    g.fillRect(x, y, w, h);
    g.globalAlpha = 1;
  }

  /** The device box or group region under a point of the model (boxes first), for taps while cytoscape's boxes are stale. */
  static hit(scene: FarScene, snap: Snapshot, x: number, y: number): { kind: "device" | "group"; id: string } | null {
    const names = devicesByName(snap);
    for (const n of scene.nodes) {
      if (!names.has(n.id)) continue;
      const p = scene.pos.get(n.id);
      if (p !== undefined && Math.abs(x - p.x) <= NODE_W / 2 && Math.abs(y - p.y) <= NODE_H / 2) return { kind: "device", id: n.id };
    }
    for (const gr of snap.groups) {
      const r = scene.region(gr);
      if (Math.abs(x - r.x) <= r.w / 2 && Math.abs(y - r.y) <= r.h / 2) return { kind: "group", id: String(gr.id) };
    }
    return null;
  }
}
