/**
 * `iommu-sim groups FILE` and `iommu-sim explain FILE DEVICE`, with
 * `--what-if CHANGE` and `--json`: the IOMMU groups of a machine as a VFIO
 * user asks about them. FILE is a scenario, or an lspci dump (imported as
 * `iommu-sim import lspci` would).
 */
import { readDump, importDump, parseIommuFlag } from "./import-command.ts";
import { lspciScenarioData } from "../sim/import/lspci-data.ts";
import { devGroup } from "../iommu/dev-iommu.ts";
import { runScenario } from "../sim/runner.ts";
import { loadScenarioFile, parseScenario, ScenarioError, validateScenario } from "../sim/scenario/load.ts";
import type { Scenario } from "../sim/scenario/schema.ts";
import type { Machine } from "../sim/machine.ts";
import { compareGroups, type GroupDiff } from "../sim/explain/compare.ts";
import { groupView, machineGroups, memberView, shortAddress, type GroupView, type MemberView } from "../sim/explain/group-view.ts";
import { isolatingQuirks, placement, type Reason } from "../sim/explain/reasons.ts";
import { applyMove, fullPciName, mergedOverride, parseWhatIf, type WhatIf } from "../sim/explain/what-if.ts";
import { SCHEMA_VERSION } from "./commands.ts";
import { EXIT_INVALID, EXIT_OK } from "./exit.ts";
import type { Io } from "./io.ts";
import { renderDot } from "./picture.ts";
import { machineTopology } from "./topology.ts";
import { takeSnapshot } from "../sim/snapshot.ts";

export interface GroupsFlags {
  json?: boolean;
  /** --format dot: the topology with the groups as clusters (picture.ts). */
  format?: "dot";
  whatIf?: string[];
  iommu?: string;
}

const LSPCI_FIRST = /^(?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\.[0-7][ /]/;

/** The machine FILE describes: a scenario, or an lspci dump imported; or an error line. */
async function loadInput(file: string, o: GroupsFlags, io: Io): Promise<{ scenario: Scenario; name: string } | string> {
  const flag = parseIommuFlag(o.iommu);
  if ("error" in flag) return flag.error;
  const dump = await readDump(file, io);
  if (typeof dump === "string") return dump;
  const first = dump.text.split("\n").find((l) => l.trim() !== "") ?? "";
  try {
    if (LSPCI_FIRST.test(first)) {
      const imp = importDump(dump.text, dump.name, flag.iommu);
      if (typeof imp === "string") return imp;
      for (const w of imp.warnings) io.err(`iommu-sim: warning: ${w}`);
      return { scenario: validateScenario(lspciScenarioData(imp), dump.name), name: dump.name };
    }
    if (flag.iommu !== undefined) return "--iommu is for lspci dumps; the scenario names its IOMMUs";
    return { scenario: file === "-" ? parseScenario(dump.text, dump.name) : loadScenarioFile(file), name: dump.name };
  } catch (e) {
    if (e instanceof ScenarioError) return e.message;
    throw e;
  }
}

function boot(s: Scenario, w: readonly WhatIf[] = []): Machine {
  return runScenario(s, { trace: false, invariants: false, pciAcsOverride: mergedOverride(w) }).machine;
}

/** The machine as booted, and with the what-if changes: the comparison; or an error line. */
function whatIf(s: Scenario, specs: readonly string[]): { label: string[]; diff: GroupDiff; before: GroupView[]; after: GroupView[]; renames: Map<string, string>; machine: Machine } | string {
  const ws = parseWhatIf(specs);
  if (typeof ws === "string") return ws;
  const base: Scenario = { ...s, events: [] };
  let changed = base;
  const renames = new Map<string, string>();
  for (const w of ws) {
    if (w.move === null) continue;
    const r = applyMove(changed, w.move);
    if (typeof r === "string") return r;
    changed = r.scenario;
    for (const [a, b] of r.renames) renames.set(a, b);
  }
  const before = machineGroups(boot(base)).groups;
  const m = boot(changed, ws);
  const after = machineGroups(m).groups;
  return { label: ws.map((w) => w.label), diff: compareGroups(before, after, renames), before, after, renames, machine: m };
}

function line(m: MemberView): string {
  return `${m.address} ${m.description ?? "(no description)"}${m.id === null ? "" : ` [${m.id}]`}${m.driver === null ? "" : `  (${m.driver})`}`;
}

const COLUMN: Record<GroupView["viability"], string> = { viable: "viable", "in-use": "in use", "user-owned": "user" };

function renderGroups(title: string, groups: readonly GroupView[], ungrouped: readonly MemberView[]): string {
  const out = [title, "VFIO    GROUP"];
  for (const g of groups) for (const d of g.devices) out.push(`${COLUMN[g.viability].padEnd(8)}IOMMU Group ${g.id}: ${line(d)}`);
  for (const d of ungrouped) out.push(`${"-".padEnd(8)}no group: ${line(d)}`);
  const inUse = groups.filter((g) => g.viability === "in-use").length;
  out.push(
    `${groups.length} groups: ${groups.length - inUse} viable for VFIO (every member unbound, or bound to a driver that manages its own DMA: vfio-pci, pci-stub, pcieport), ${inUse} in use (a kernel driver using the DMA API is bound: a VFIO claim fails with EPERM)`,
  );
  return out.join("\n");
}

function renderDiff(w: { label: string[]; diff: GroupDiff }): string {
  const short = (l: string[]) => l.map(shortAddress).join(" ");
  const out = [`what if ${w.label.join("; and ")}:`];
  if (w.diff.changed.length === 0) out.push("  no group changes");
  for (const c of w.diff.changed) out.push(`  group ${c.before.id} [${short(c.before.devices)}] -> ${c.after.map((a) => `[${short(a.devices)}]`).join(" ")}`);
  out.push(`  ${w.diff.before_count} groups -> ${w.diff.after_count}`);
  return out.join("\n");
}

export async function groupsCommand(file: string, o: GroupsFlags, io: Io): Promise<number> {
  const input = await loadInput(file, o, io);
  if (typeof input === "string") {
    io.err(input);
    return EXIT_INVALID;
  }
  if (o.format !== undefined && (o.json === true || (o.whatIf ?? []).length > 0)) {
    io.err(`--format ${o.format} prints the groups as a graph: it goes without --json and --what-if`);
    return EXIT_INVALID;
  }
  if (o.whatIf !== undefined && o.whatIf.length > 0) {
    const w = whatIf(input.scenario, o.whatIf);
    if (typeof w === "string") {
      io.err(w);
      return EXIT_INVALID;
    }
    if (o.json) io.out(JSON.stringify({ schema_version: SCHEMA_VERSION, command: "groups", file: input.name, what_if: w.label, before: w.before, after: w.after, ...w.diff }));
    else io.out(renderDiff(w));
    return EXIT_OK;
  }
  const m = boot(input.scenario);
  if (o.format !== undefined) {
    io.out(renderDot(machineTopology(m), takeSnapshot(m, [])));
    return EXIT_OK;
  }
  const { groups, ungrouped } = machineGroups(m);
  if (o.json) io.out(JSON.stringify({ schema_version: SCHEMA_VERSION, command: "groups", file: input.name, groups, ungrouped }));
  else io.out(renderGroups(`IOMMU groups of ${input.scenario.name}`, groups, ungrouped));
  return EXIT_OK;
}

export async function explainCommand(file: string, device: string, o: GroupsFlags, io: Io): Promise<number> {
  const input = await loadInput(file, o, io);
  if (typeof input === "string") {
    io.err(input);
    return EXIT_INVALID;
  }
  const m = boot(input.scenario);
  const name = m.devices.has(device) ? device : (fullPciName(device) ?? device);
  const rec = m.devices.get(name);
  if (rec === undefined) {
    io.err(`explain: no device '${device.slice(0, 80)}' in ${input.name} (give BB:DD.F, SSSS:BB:DD.F or a scenario device name)`);
    return EXIT_INVALID;
  }
  const g = devGroup(rec.dev);
  const me = memberView(m, rec.dev);
  const w = o.whatIf !== undefined && o.whatIf.length > 0 ? whatIf(input.scenario, o.whatIf) : null;
  if (typeof w === "string") {
    io.err(w);
    return EXIT_INVALID;
  }
  if (g === null) {
    if (o.json) io.out(JSON.stringify({ schema_version: SCHEMA_VERSION, command: "explain", file: input.name, device: me, group: null }));
    else io.out(`${name} is in no IOMMU group: no IOMMU translates its DMA`);
    return EXIT_OK;
  }
  const view = groupView(m, g);
  const why: { device: string; reasons: Reason[] }[] = [];
  const bases = new Map<string, string>();
  for (const d of view.devices) {
    const dev = m.devices.get(d.name)?.dev;
    if (dev?.pci == null) continue;
    const p = placement(m, dev);
    bases.set(d.name, p.base.name);
    why.push({ device: d.name, reasons: p.reasons });
  }
  const isolated = rec.dev.pci !== null ? isolatingQuirks(rec.dev) : [];
  // vfio-pci binds only normal-header functions (vfio_pci_probe): bridges stay unbound or on pcieport.
  const isBridge = (n: string) => m.devices.get(n)?.dev.pci?.isBridge === true;
  const bindTogether = view.devices.filter((d) => !isBridge(d.name) && !(d.driver !== null && d.driver_managed_dma && d.driver !== "vfio-pci")).map((d) => d.name);
  const others = view.devices.filter((d) => d.name !== name).map((d) => d.name);
  if (o.json) {
    io.out(
      JSON.stringify({
        schema_version: SCHEMA_VERSION,
        command: "explain",
        file: input.name,
        device: me,
        group: view,
        why,
        isolated_by: isolated,
        vfio: { bind_together: bindTogether, stopping: view.holders },
        ...(w === null ? {} : { what_if: { labels: w.label, ...w.diff } }),
      }),
    );
    return EXIT_OK;
  }
  const out: string[] = [];
  out.push(`${name} (${me.description ?? "no description"}${me.id === null ? "" : ` [${me.id}]`}) is in IOMMU group ${view.id}${others.length === 0 ? ", alone." : ` with ${others.join(", ")}.`}`);
  if (others.length > 0) {
    out.push("Why (pci_device_group):");
    for (const x of why) {
      const based = [...bases].filter(([n, b]) => b === x.device && n !== x.device).map(([n]) => n);
      if (x.reasons.length === 0) {
        out.push(
          based.length > 0
            ? `  ${x.device}: the bridge the group forms at: ${based.join(", ")} ${based.length === 1 ? "is" : "are"} below it and not isolated from it`
            : `  ${x.device}: its own function; the others' rules bring them to it`,
        );
      }
      for (const r of x.reasons) out.push(`  ${x.device}: ${r.rule}: ${r.text}`);
    }
  }
  for (const r of isolated) out.push(`Isolation: ${r.text}`);
  const staying = view.devices.filter((d) => !bindTogether.includes(d.name));
  const stay = staying.map((d) => (isBridge(d.name) ? `${d.name}, a bridge, ${d.driver === null ? "unbound" : `on ${d.driver}`}` : `${d.name} on ${d.driver}`));
  out.push(
    bindTogether.length === 0
      ? `For VFIO: nothing to bind; ${stay.join(", ")} may stay as ${stay.length === 1 ? "it is" : "they are"}.`
      : `For VFIO: bind ${bindTogether.join(", ")} to vfio-pci together${stay.length > 0 ? ` (${stay.join("; ")}: ${stay.length === 1 ? "it does" : "they do"} not use the DMA API and may stay so)` : ""}.`,
  );
  out.push(
    view.viability === "user-owned"
      ? `User space owns the group (a VFIO claim): binding a kernel DMA driver to a member now fails with EBUSY (iommu_device_use_default_domain).`
      : view.holders.length === 0
      ? "Nothing stops a VFIO claim of the group now."
      : `A VFIO claim now fails with EPERM (iommu_group_claim_dma_owner: owner_cnt ${g.ownerCnt}): ${view.holders.map((h) => `${h.device} is bound to ${h.driver}`).join(", ")}.`,
  );
  if (w !== null) {
    out.push(renderDiff(w));
    const after = w.machine.devices.get(w.renames.get(name) ?? name);
    const ng = after === undefined ? null : devGroup(after.dev);
    if (ng !== null) out.push(`  ${name} would be in group ${ng.id} with ${ng.devices.length - 1} other device(s)${ng.devices.length > 1 ? `: ${ng.devices.map((d) => d.dev.name).filter((n) => n !== (w.renames.get(name) ?? name)).join(", ")}` : ""}`);
  }
  io.out(out.join("\n"));
  return EXIT_OK;
}
