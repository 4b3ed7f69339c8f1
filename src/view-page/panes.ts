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
import { devicesByName, devicesOf, groupsOf, looseDevices } from "./rows.ts";

/** Trace lines shown at most per step (a 2,000-device boot phase has tens of thousands). */
const TRACE_LINES = 1500;

/** An element with these attributes and text (the page's and the panes'). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
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

/** Text for HTML (a name or a tag's text). */
function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A device entry's tags after its button, as HTML (compared as a string to change only entries whose tags changed). */
function deviceTags(d: DeviceSnap, t: TopoNode | undefined, inGroupList: boolean): string {
  let h = "";
  if (d.probe === "bound") h += `<span class="tag">${esc(d.driver ?? "")}</span>`;
  else if (d.probe === "deferred") h += `<span class="tag deferred">deferred</span>`;
  else if (d.probe === "failed") h += `<span class="tag failed">failed ${esc(String(d.probe_error))}</span>`;
  if (d.iommu !== null) h += `<span class="tag">→ ${esc(d.iommu)}</span>`;
  if (d.group !== null && !inGroupList) h += `<span class="tag failed">dev_iommu says group ${d.group}</span>`;
  if (t?.acs_missing) h += `<span class="tag acs" title="${esc(t.acs_missing)}">ACS missing</span>`;
  return h;
}

function groupTags(g: GroupSnap): string {
  return `<span class="tag">${esc(g.type)}</span><span class="tag ${esc(g.owner)}">owner ${esc(g.owner)}</span>`;
}

/** Replaces what follows an entry's button (its tags; a group's device list `keep` stays) with `html`. */
function setTags(li: HTMLLIElement, html: string, keep: Element | null = null): void {
  const b = li.firstElementChild!;
  while (li.lastChild !== b && li.lastChild !== keep) li.lastChild!.remove();
  if (keep !== null) while (keep.previousSibling !== b) keep.previousSibling!.remove();
  if (keep === null) b.insertAdjacentHTML("afterend", html);
  else keep.insertAdjacentHTML("beforebegin", html);
}

/** A device's entry as last shown: kept from step to step and changed in place (its tags only where they differ). */
interface DeviceEntry {
  li: HTMLLIElement;
  row: DeviceSnap | null;
  inGroupList: boolean;
  tags: string;
}

/** A group's entry as last shown, changed in place likewise; `ul` holds its devices' entries. */
interface GroupEntry {
  li: HTMLLIElement;
  ul: HTMLUListElement;
  row: GroupSnap | null;
  tags: string;
}

/** Each list's entries, by device name and group id. */
const entries = new WeakMap<HTMLElement, { devices: Map<string, DeviceEntry>; groups: Map<number, GroupEntry> }>();

/** The lists whose clicks are handled (one listener each). */
const listening = new WeakSet<HTMLElement>();

/** Each list's entry of the devices on no group's list, kept from step to step. */
const looseEntry = new WeakMap<HTMLElement, { li: HTMLLIElement; label: HTMLSpanElement; ul: HTMLUListElement }>();

/**
 * Builds entries' skeletons (`<li data-...><button>...</button></li>`), many at once from one HTML
 * string (a boot phase adds 2,100: one parse costs less than thousands of createElement calls).
 */
function skeletons(html: string[]): HTMLLIElement[] {
  if (html.length === 0) return [];
  const t = document.createElement("template");
  t.innerHTML = html.join("");
  return [...t.content.children] as HTMLLIElement[];
}

function deviceSkeleton(name: string): string {
  return `<li data-device="${esc(name)}"><button type="button">${esc(name)}</button></li>`;
}

/**
 * Makes `parent`'s children exactly `want`, in order, moving or inserting
 * only those out of place (a step changes a few entries of thousands; the
 * browser then restyles only those).
 */
function reconcile(parent: Element, want: readonly Element[]): void {
  let cur = parent.firstElementChild;
  // Entries to insert before `cur`, inserted in one call (a boot phase adds thousands at once).
  let run: Element[] = [];
  const flush = () => {
    if (run.length === 0) return;
    if (cur === null) parent.append(...run);
    else cur.before(...run);
    run = [];
  };
  for (const e of want) {
    if (cur === e) {
      flush();
      cur = cur.nextElementSibling;
    } else run.push(e);
  }
  flush();
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
  const beforeDevices = devicesOf(before);
  const beforeGroups = groupsOf(before);
  const byName = devicesByName(snap);
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
  let store = entries.get(list);
  if (store === undefined) entries.set(list, (store = { devices: new Map(), groups: new Map() }));
  const { devices: devEntries, groups: groupEntries } = store;
  // Skeletons of the entries this step shows for the first time, built in one go.
  const newDevices = snap.devices.filter((d) => !devEntries.has(d.name));
  skeletons(newDevices.map((d) => deviceSkeleton(d.name))).forEach((li, i) => devEntries.set(newDevices[i]!.name, { li, row: null, inGroupList: false, tags: "" }));
  const newGroups = snap.groups.filter((g) => !groupEntries.has(g.id));
  skeletons(newGroups.map((g) => `<li data-group="${g.id}"><button type="button">group ${g.id}</button><ul></ul></li>`)).forEach((li, i) =>
    groupEntries.set(newGroups[i]!.id, { li, ul: li.lastElementChild as HTMLUListElement, row: null, tags: "" }),
  );
  /** Names whose entry is already placed at this step (a device listed twice gets a second, uncached entry). */
  const placed = new Set<string>();
  const deviceEntry = (d: DeviceSnap, inGroupList: boolean): HTMLLIElement => {
    let e = devEntries.get(d.name)!;
    if (placed.has(d.name)) e = { li: skeletons([deviceSkeleton(d.name)])[0]!, row: null, inGroupList, tags: "" };
    placed.add(d.name);
    if (e.row !== d || e.inGroupList !== inGroupList) {
      const tags = deviceTags(d, topo.get(d.name), inGroupList);
      if (tags !== e.tags) setTags(e.li, tags);
      e.row = d;
      e.inGroupList = inGroupList;
      e.tags = tags;
    }
    // A class set to what it is already changes nothing the browser must restyle.
    e.li.classList.toggle("changed", devChanged(d));
    e.li.classList.toggle("selected", isSel("device", d.name));
    return e.li;
  };
  const want: HTMLLIElement[] = [];
  for (const g of snap.groups) {
    const e = groupEntries.get(g.id)!;
    if (e.row !== g) {
      const tags = groupTags(g);
      if (tags !== e.tags) setTags(e.li, tags, e.ul);
      e.row = g;
      e.tags = tags;
    }
    e.li.classList.toggle("changed", before !== null && beforeGroups.get(g.id) !== g);
    e.li.classList.toggle("selected", isSel("group", String(g.id)));
    const items: HTMLLIElement[] = [];
    for (const n of g.devices) {
      const d = byName.get(n);
      if (d !== undefined) items.push(deviceEntry(d, true));
    }
    reconcile(e.ul, items);
    want.push(e.li);
  }
  // Devices on no group's list: those without a group, and (mid-probe, in a race) one whose dev_iommu names a group not listing it yet.
  const loose = looseDevices(snap);
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
    const items = loose.map((d) => deviceEntry(d, false));
    reconcile(entry.ul, items);
    want.push(entry.li);
  }
  reconcile(list, want);
}
