/**
 * The human view of a snapshot: /sys/kernel/iommu_groups as a tree, then
 * devices, IOMMU instances, domains and what happened.
 */
import type { Snapshot } from "./snapshot.ts";

function hexIds(ids: number[]): string {
  return ids.map((i) => "0x" + i.toString(16)).join(",");
}

export function renderSnapshot(s: Snapshot): string {
  const L: string[] = [];
  const design = Object.entries(s.strategy)
    .map(([axis, name]) => `${axis}=${name}`)
    .join(", ");
  L.push(`${s.name}   [${s.kernel === null ? "" : `kernel ${s.kernel}: `}${design}]`);
  L.push("");
  L.push("/sys/kernel/iommu_groups");
  s.groups.forEach((g, gi) => {
    const last = gi === s.groups.length - 1;
    const br = last ? "└── " : "├── ";
    const pad = last ? "    " : "│   ";
    L.push(`${br}${g.id}`);
    L.push(`${pad}├── devices/  ${g.devices.join("  ")}`);
    L.push(`${pad}├── type      ${g.type}`);
    const rr = g.reserved_regions;
    L.push(`${pad}└── reserved_regions${rr.length === 0 ? "  (empty)" : ""}`);
    for (const r of rr) L.push(`${pad}      ${r}`);
  });
  if (s.groups.length === 0) L.push("(no groups)");
  L.push("");

  L.push("devices");
  const w = Math.max(8, ...s.devices.map((d) => d.name.length));
  for (const d of s.devices) {
    const parts = [d.name.padEnd(w), d.bus.padEnd(12)];
    if (!d.registered) parts.push("(not added)");
    else {
      parts.push(d.iommu !== null ? `iommu=${d.iommu} (${d.ops})` : "no iommu");
      if (d.group !== null) parts.push(`group ${d.group}`);
      if (d.domain !== null) parts.push(`domain ${d.domain}`);
      if (d.fwspec !== null) parts.push(`fwspec ${d.fwspec.iommu ?? "(null)"} [${hexIds(d.fwspec.ids)}]`);
      parts.push(d.driver !== null ? `driver=${d.driver}` : "");
      parts.push(d.probe + (d.probe_error ? ` (${d.probe_error})` : ""));
    }
    L.push("  " + parts.filter((p) => p !== "").join("  "));
  }
  L.push("");

  L.push("iommus");
  for (const m of s.iommus) {
    const state = m.registered ? (m.ready ? "registered" : "registering") : "not registered";
    L.push(`  ${m.name}  ${m.driver}  ${state}  fwnode=${m.fwnode ?? "none"}  devices: ${m.devices.length ? m.devices.join(" ") : "-"}`);
  }
  // Up to v6.7 each bus carries the ops that probe its devices.
  const busOps = Object.entries(s.bus_ops);
  if (busOps.length > 0) L.push(`  bus ops: ${busOps.map(([bus, ops]) => `${bus}=${ops}`).join("  ")}`);
  L.push("");

  L.push("domains");
  for (const d of s.domains) {
    L.push(`  ${d.id}  ${d.type}${d.static ? " (static)" : ""}  ${d.iommu ?? "-"}  ${d.page_sizes.join(",") || "-"}`);
  }
  if (s.domains.length === 0) L.push("  (none)");

  if (s.deferred.length > 0) {
    L.push("");
    L.push(`deferred probe: ${s.deferred.join(" ")}`);
  }
  const failedBoot = s.boot.filter((b) => b.result !== "ok");
  if (failedBoot.length > 0) {
    L.push("");
    L.push("boot failures");
    for (const b of failedBoot) L.push(`  ${b.event} ${b.arg} -> ${b.result}`);
  }
  if (s.events.length > 0) {
    L.push("");
    L.push("events");
    s.events.forEach((e, i) => L.push(`  ${String(i + 1).padStart(2)}  ${e.event} ${e.arg} -> ${e.result}`));
  }
  if (s.warnings.length > 0) {
    L.push("");
    L.push("kernel warnings");
    for (const x of s.warnings) L.push(`  WARN ${x}`);
  }
  if (s.bugs.length > 0) {
    L.push("");
    L.push("kernel BUGs (the kernel stops at the first; the model carried on)");
    for (const x of s.bugs) L.push(`  BUG ${x}`);
  }
  if (s.violations.length > 0) {
    L.push("");
    L.push("invariant violations");
    for (const v of s.violations) L.push(`  ${v}`);
  }
  return L.join("\n");
}
