/// <reference lib="dom" />
/**
 * The panes beside a run's picture: the step's trace (indented like
 * `run --trace`), what is selected (a device or a group), and the list of
 * groups and their devices, which says in text what the canvas draws
 * (`data-group="ID"`, `data-device="NAME"`) and selects as a click does.
 */
import { groupLabel, type Selection } from "./graph.ts";
import { traceLine } from "./trace.ts";
import type { DeviceSnap, GroupSnap, Snapshot, TopoNode, TraceRecord } from "./types.ts";

/** Trace lines shown at most per step (a 2,000-device boot phase has tens of thousands). */
const TRACE_LINES = 1500;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

export function renderTrace(pre: HTMLElement, records: readonly TraceRecord[]): void {
  const multi = records.some((r) => r.task !== 0);
  const shown = records.length > TRACE_LINES ? records.slice(0, TRACE_LINES) : records;
  const lines = shown.map((r) => traceLine(r, multi));
  if (records.length > TRACE_LINES) lines.push(`... and ${records.length - TRACE_LINES} more records (iommu-sim run --steps --json has them all)`);
  pre.textContent = records.length === 0 ? "(this step traced nothing)" : lines.join("\n");
}

function dl(rows: [string, string][]): HTMLDListElement {
  const d = el("dl");
  for (const [k, v] of rows) d.append(el("dt", {}, k), el("dd", {}, v));
  return d;
}

function domainText(snap: Snapshot, id: number | null): string {
  if (id === null) return "none";
  const d = snap.domains.find((x) => x.id === id);
  return d === undefined ? `#${id}` : `#${id} ${d.type}${d.name === null ? "" : ` "${d.name}"`}${d.iommu === null ? "" : ` on ${d.iommu}`}`;
}

/** The rules broken or warned about that name this device or group. */
function concerning(snap: Snapshot, needle: string): string[] {
  return [...snap.violations.map((v) => `violation: ${v}`), ...snap.warnings.map((w) => `warning: ${w}`), ...snap.bugs.map((b) => `BUG: ${b}`)].filter((x) => x.includes(needle));
}

export function renderSelection(box: HTMLElement, sel: Selection, snap: Snapshot, topo: Map<string, TopoNode>): void {
  box.replaceChildren();
  if (sel === null) {
    box.append(el("p", {}, "Click a device or a group in the picture or in the list below."));
    return;
  }
  if (sel.kind === "device") {
    const d = snap.devices.find((x) => x.name === sel.id);
    if (d === undefined) {
      box.append(el("p", {}, `${sel.id}: not in this run.`));
      return;
    }
    const g = d.group === null ? null : snap.groups.find((x) => x.id === d.group);
    const t = topo.get(d.name);
    const rows: [string, string][] = [
      ["device", d.name],
      ["bus", `${d.bus}${t?.pci_type ? ` (${t.pci_type})` : ""}${d.registered ? "" : ", not added"}`],
      ["dev_iommu", d.dev_iommu],
      ["iommu", d.iommu === null ? "none" : `${d.iommu} (ops ${d.ops})`],
      ["fwspec", d.fwspec === null ? "none" : `${d.fwspec.iommu ?? "?"} ids [${d.fwspec.ids.map((i) => "0x" + i.toString(16)).join(", ")}]`],
      ["group", g === null || g === undefined ? "none" : groupLabel(g)],
      ["domain", domainText(snap, d.domain)],
      ["driver", d.driver ?? "none"],
      ["probe", `${d.probe}${d.probe_error === null ? "" : ` (${d.probe_error})`}${snap.deferred.includes(d.name) ? ", on the deferred list" : ""}`],
    ];
    if (t?.acs_missing) rows.push(["ACS", `missing: ${t.acs_missing}`]);
    const inv = concerning(snap, d.name);
    rows.push(["invariants", inv.length === 0 ? "none broken or warned about" : inv.join("\n")]);
    box.append(dl(rows));
    return;
  }
  const g = snap.groups.find((x) => String(x.id) === sel.id);
  if (g === undefined) {
    box.append(el("p", {}, `group ${sel.id}: not at this step.`));
    return;
  }
  box.append(
    dl([
      ["group", String(g.id)],
      ["members", g.devices.join(", ")],
      ["type", g.type],
      ["domain", domainText(snap, g.domain)],
      ["default domain", domainText(snap, g.default_domain)],
      ["owner", `${g.owner} (owner_cnt ${g.owner_cnt})`],
      ["PASIDs", g.pasids.length === 0 ? "none" : g.pasids.join(", ")],
      ["reserved regions", g.reserved_regions.length === 0 ? "none" : g.reserved_regions.join("\n")],
    ]),
  );
}

function deviceItem(d: DeviceSnap, t: TopoNode | undefined, changed: boolean, selected: boolean, inGroupList = true): HTMLLIElement {
  const li = el("li", { "data-device": d.name });
  if (changed) li.classList.add("changed");
  if (selected) li.classList.add("selected");
  const b = el("button", { type: "button" }, d.name);
  li.append(b);
  if (d.probe === "bound") li.append(el("span", { class: "tag" }, d.driver ?? ""));
  else if (d.probe === "deferred") li.append(el("span", { class: "tag deferred" }, "deferred"));
  else if (d.probe === "failed") li.append(el("span", { class: "tag failed" }, `failed ${d.probe_error}`));
  if (d.iommu !== null) li.append(el("span", { class: "tag" }, `→ ${d.iommu}`));
  if (d.group !== null && !inGroupList) li.append(el("span", { class: "tag failed" }, `dev_iommu says group ${d.group}`));
  if (t?.acs_missing) li.append(el("span", { class: "tag acs", title: t.acs_missing }, "ACS missing"));
  return li;
}

function groupItem(g: GroupSnap, changed: boolean, selected: boolean): HTMLLIElement {
  const li = el("li", { "data-group": String(g.id) });
  if (changed) li.classList.add("changed");
  if (selected) li.classList.add("selected");
  const b = el("button", { type: "button" }, `group ${g.id}`);
  li.append(b, el("span", { class: "tag" }, g.type), el("span", { class: `tag ${g.owner}` }, `owner ${g.owner}`));
  return li;
}

/** The entry of a device on no group's list, by its row (reused while the row is the same object). */
const looseBuilt = new WeakMap<DeviceSnap, HTMLLIElement>();

/** A group's entry as last built, reused while the group's row and its devices' rows are the same objects. */
const built = new WeakMap<GroupSnap, { li: HTMLLIElement; devices: (DeviceSnap | undefined)[]; items: HTMLLIElement[] }>();

/** The lists whose clicks are handled (one listener each). */
const listening = new WeakSet<HTMLElement>();

/** Each list's entry of the devices on no group's list, kept from step to step. */
const looseEntry = new WeakMap<HTMLElement, { li: HTMLLIElement; label: HTMLSpanElement; ul: HTMLUListElement }>();

/**
 * Makes `parent`'s children exactly `want`, in order, moving or inserting
 * only those out of place (a step changes a few entries of thousands; the
 * browser then restyles only those).
 */
function reconcile(parent: Element, want: readonly Element[]): void {
  // Most entries new (a boot phase): one replacement costs less than thousands of insertions.
  let kept = 0;
  for (const e of want) if (e.parentNode === parent) kept++;
  if (kept < want.length / 2) {
    parent.replaceChildren(...want);
    return;
  }
  let cur = parent.firstElementChild;
  for (const e of want) {
    if (cur === e) cur = cur.nextElementSibling;
    else parent.insertBefore(e, cur);
  }
  while (cur !== null) {
    const next = cur.nextElementSibling;
    cur.remove();
    cur = next;
  }
}

/**
 * The list of groups, each with its devices, then the devices in no group.
 * Entries of groups the step did not touch are reused and stay in place (a
 * 2,000-device list is built once, then only what changes is replaced).
 */
export function renderGroups(list: HTMLElement, snap: Snapshot, before: Snapshot | null, topo: Map<string, TopoNode>, sel: Selection, onSelect: (s: Selection) => void): void {
  const beforeDevices = new Map((before?.devices ?? []).map((d) => [d.name, d]));
  const beforeGroups = new Map((before?.groups ?? []).map((g) => [g.id, g]));
  const byName = new Map(snap.devices.map((d) => [d.name, d]));
  const devChanged = (d: DeviceSnap) => before !== null && beforeDevices.get(d.name) !== d;
  const isSel = (kind: "group" | "device", id: string) => sel?.kind === kind && sel.id === id;
  if (!listening.has(list)) {
    // One listener for the list's 2,000 buttons: a click (or Enter on one) selects its entry's device or group.
    listening.add(list);
    list.addEventListener("click", (e) => {
      const b = (e.target as Element).closest("button");
      const li = b?.parentElement;
      if (li === null || li === undefined || !list.contains(li)) return;
      if (li.dataset.device !== undefined) onSelect({ kind: "device", id: li.dataset.device });
      else if (li.dataset.group !== undefined) onSelect({ kind: "group", id: li.dataset.group });
    });
  }
  const want: HTMLLIElement[] = [];
  for (const g of snap.groups) {
    const devices = g.devices.map((n) => byName.get(n));
    const old = built.get(g);
    let li: HTMLLIElement;
    if (old !== undefined && old.devices.length === devices.length && old.devices.every((d, i) => d === devices[i])) {
      li = old.li;
      // A class set to what it is already changes nothing the browser must restyle.
      li.classList.toggle("changed", before !== null && beforeGroups.get(g.id) !== g);
      li.classList.toggle("selected", isSel("group", String(g.id)));
      for (const c of old.items) {
        const d = byName.get(c.dataset.device!)!;
        c.classList.toggle("changed", devChanged(d));
        c.classList.toggle("selected", isSel("device", d.name));
      }
    } else {
      li = groupItem(g, before !== null && beforeGroups.get(g.id) !== g, isSel("group", String(g.id)));
      const ul = el("ul");
      const items: HTMLLIElement[] = [];
      for (const d of devices) if (d !== undefined) items.push(deviceItem(d, topo.get(d.name), devChanged(d), isSel("device", d.name)));
      ul.append(...items);
      li.append(ul);
      built.set(g, { li, devices, items });
    }
    want.push(li);
  }
  // Devices on no group's list: those without a group, and (mid-probe, in a race) one whose dev_iommu names a group not listing it yet.
  const onLists = new Set(snap.groups.flatMap((g) => g.devices));
  const loose = snap.devices.filter((d) => !onLists.has(d.name));
  if (loose.length > 0) {
    let entry = looseEntry.get(list);
    if (entry === undefined) {
      const li = el("li", { class: "no-group" });
      const label = el("span");
      const ul = el("ul");
      li.append(label, ul);
      looseEntry.set(list, (entry = { li, label, ul }));
    }
    const text = `on no group's list (${loose.length})`;
    if (entry.label.textContent !== text) entry.label.textContent = text;
    const items: HTMLLIElement[] = [];
    for (const d of loose) {
      let item = looseBuilt.get(d);
      if (item === undefined) {
        item = deviceItem(d, topo.get(d.name), devChanged(d), isSel("device", d.name), false);
        looseBuilt.set(d, item);
      } else {
        item.classList.toggle("changed", devChanged(d));
        item.classList.toggle("selected", isSel("device", d.name));
      }
      items.push(item);
    }
    reconcile(entry.ul, items);
    want.push(entry.li);
  }
  reconcile(list, want);
}
