/**
 * Cross-reference checks a schema cannot express: unique names, references
 * to instances, devices and drivers that exist, `iommus` entries with the
 * instance's number of cells, a PCI topology that holds together.
 */
import { parsePciName, PCI_BRIDGE_TYPES, type PciDevType } from "../../base/pci/pci-dev.ts";
import { isPowerOfTwo } from "../../lib/bits.ts";
import { parseCmdline } from "../../iommu/cmdline.ts";
import { eventDef, type EventKind } from "../event-table.ts";
import { callBinds } from "../iommufd-actions.ts";
import { formatPath, type KeyPath, type Problem } from "./problem.ts";
import { didYouMean, quoteString } from "./suggest.ts";
import { eventKey, EXPECT_DOMAIN_KINDS, IOMMU_DRIVER_NAMES, parseSize, scenarioArch, type DeviceSpec, type ExpectSpec, type Scenario, type TaskEventSpec } from "./schema.ts";

/** A name from the file, quoted, cut if long. */
const q = (s: string) => quoteString(s);
/** A name from the file, cut if long. */
const nm = (s: string) => (s.length > 80 ? `${s.slice(0, 80)}… (${s.length} characters)` : s);

/** "unknown device 'x'", with the closest name or some of the names there are. */
function unknownName(kind: string, n: string, names: Map<string, number>): string {
  const hint = didYouMean(n, names.keys());
  if (hint !== "") return `unknown ${kind} ${q(n)}${hint}`;
  if (names.size === 0) return `unknown ${kind} ${q(n)}: the scenario has no ${kind} at all`;
  const some: string[] = [];
  for (const k of names.keys()) if (some.push(nm(k)) >= 6) break;
  return `unknown ${kind} ${q(n)}: expected one of ${some.join(", ")}${names.size > some.length ? `, … (${names.size} in all)` : ""}`;
}

const FWNODE_DRIVERS = new Set(["arm-smmu-v3", "arm-smmu", "virtio-iommu"]);
const SCOPE_DRIVERS = new Set(["intel-iommu", "amd-iommu"]);

export function checkScenario(s: Scenario): Problem[] {
  const out: Problem[] = [];
  const bad = (path: KeyPath, message: string) => out.push({ path, message });

  const uniq = (list: { name: string }[], key: string) => {
    const seen = new Map<string, number>();
    list.forEach((x, i) => {
      const prev = seen.get(x.name);
      if (prev !== undefined) bad([key, i, "name"], `duplicate name ${q(x.name)} (also ${key}[${prev}])`);
      else seen.set(x.name, i);
    });
    return seen;
  };
  // Every command-line value must parse; options the model does not honour are warnings at boot.
  for (const e of parseCmdline(s.boot?.cmdline ?? "", scenarioArch(s)).errors) bad(["boot", "cmdline"], e);

  const iommuIdx = uniq(s.iommus, "iommus");
  const devIdx = uniq(s.devices, "devices");
  const drvIdx = uniq(s.drivers, "drivers");

  // IOMMU instances
  let mocks = 0;
  s.iommus.forEach((m, i) => {
    const at = (k: string): KeyPath => ["iommus", i, k];
    if (FWNODE_DRIVERS.has(m.driver) && (m.fwnode === undefined || m.fwnode === null)) {
      bad(at("driver"), `${m.driver} instances are found by fwnode: give ${q(m.name)} a fwnode`);
    }
    if (SCOPE_DRIVERS.has(m.driver)) {
      if (m.fwnode !== undefined && m.fwnode !== null) bad(at("fwnode"), `${m.driver} registers without a fwnode; describe its devices with scope`);
      if (m.scope === undefined) bad(at("driver"), `${m.driver} instance ${q(m.name)} needs a scope ('all' or a list of devices)`);
    } else {
      if (m.scope !== undefined) bad(at("scope"), `scope is for intel-iommu/amd-iommu, not ${m.driver}`);
      if (m.segment !== undefined) bad(at("segment"), `segment is for intel-iommu/amd-iommu, not ${m.driver}`);
    }
    if (m.driver === "mock") {
      mocks++;
      if (typeof m.fwnode === "string") bad(at("fwnode"), "the mock instance's fwnode is a software node made at registration: omit fwnode, or null for none");
      if (mocks > 1) bad(at("driver"), "the selftest has one mock IOMMU instance");
    }
    if (m["#iommu-cells"] !== undefined && !FWNODE_DRIVERS.has(m.driver)) bad(at("#iommu-cells"), `${m.driver} is not referenced by iommus`);
    m["page-sizes"]?.forEach((p, j) => {
      if (!isPowerOfTwo(parseSize(p))) bad(["iommus", i, "page-sizes", j], `page size ${p} is not a power of two`);
    });
    if (Array.isArray(m.scope)) {
      m.scope.forEach((d, j) => {
        if (!devIdx.has(d)) bad(["iommus", i, "scope", j], unknownName("device", d, devIdx));
      });
    }
  });

  const iommu = (n: string) => (iommuIdx.has(n) ? s.iommus[iommuIdx.get(n)!]! : null);
  const cellsOf = (n: string) => iommu(n)?.["#iommu-cells"] ?? 1;

  // Devices
  const hostBySegment = new Map<number, number>();
  const fwnodes = new Map<string, number>();
  const pciBusOf = new Map<string, number>(); // bridge name -> its secondary bus number
  s.devices.forEach((d, i) => {
    const at = (k: string | number, ...rest: (string | number)[]): KeyPath => ["devices", i, k, ...rest];
    const isPci = d.bus === "pci";
    if (d.fwnode !== undefined) {
      const prev = fwnodes.get(d.fwnode);
      if (prev !== undefined) bad(at("fwnode"), `fwnode ${nm(d.fwnode)} already belongs to devices[${prev}]`);
      fwnodes.set(d.fwnode, i);
    }
    for (const k of ["type", "acs", "multifunction", "dma-alias", "bridge-xlate-root", "pcie-bridge-alias", "untrusted", "id", "subsystem", "class", "revision", "acs_cap", "acs_ctl"] as const) {
      if (!isPci && d[k] !== undefined) bad(at(k), `${k} is a PCI property; ${nm(d.name)} is on the ${d.bus} bus`);
    }
    // iommu_buses[] lists amba_bustype under CONFIG_ARM_AMBA only, which x86 kernels do not set.
    if (d.bus === "amba" && scenarioArch(s) === "x86") bad(at("bus"), `the amba bus exists on arm64 only (CONFIG_ARM_AMBA); this machine is x86 (boot.arch, or an intel-iommu/amd-iommu instance)`);
    if (d.bus !== "iommufd_mock" && d.add_with !== undefined) bad(at("add_with"), "add_with is for devices on the iommufd_mock bus");
    if (d.iommus !== undefined) {
      if (d.bus !== "platform" && d.bus !== "amba") bad(at("iommus"), `iommus describes platform/amba devices; PCI functions get ids from the host bridge's iommu-map`);
      if (d.fwnode === undefined || d.fwnode.startsWith("\\")) bad(at("iommus"), `iommus is a device-tree property: give ${nm(d.name)} a DT fwnode`);
      d.iommus.forEach((e, j) => {
        const [target, ...cells] = e;
        if (typeof target !== "string") return bad(at("iommus", j, 0), "an iommus entry starts with an IOMMU instance name");
        const m = iommu(target);
        if (m === null) return bad(at("iommus", j, 0), unknownName("IOMMU instance", target, iommuIdx));
        if (!FWNODE_DRIVERS.has(m.driver)) return bad(at("iommus", j, 0), `${nm(target)} (${m.driver}) is not referenced from device tree`);
        const want = cellsOf(target);
        if (cells.length !== want) {
          bad(at("iommus", j), `${nm(target)} has #iommu-cells = ${want}, but this entry has ${cells.length} cell${cells.length === 1 ? "" : "s"}`);
        }
        cells.forEach((c, k) => {
          if (typeof c !== "number") bad(at("iommus", j, k + 1), "cells after the instance name are numbers");
        });
      });
    }
    const host = d["pci-host"];
    if (host !== undefined) {
      if (d.bus !== "platform") bad(at("pci-host"), "a PCI host bridge is a platform device");
      if (d.fwnode === undefined || d.fwnode.startsWith("\\")) bad(at("pci-host"), `a DT host bridge needs a DT fwnode for its iommu-map`);
      const prev = hostBySegment.get(host.segment);
      if (prev !== undefined) bad(at("pci-host", "segment"), `segment ${host.segment} already has a host bridge (devices[${prev}])`);
      hostBySegment.set(host.segment, i);
      host["iommu-map"]?.forEach((e, j) => {
        const m = iommu(e[1]);
        if (m === null) bad(at("pci-host", "iommu-map", j, 1), unknownName("IOMMU instance", e[1], iommuIdx));
        else if (!FWNODE_DRIVERS.has(m.driver)) bad(at("pci-host", "iommu-map", j, 1), `${nm(e[1])} (${m.driver}) is not referenced from device tree`);
      });
    }
    if (d.parent !== undefined) {
      const p = devIdx.get(d.parent);
      if (p === undefined) bad(at("parent"), `parent ${q(d.parent)} does not exist`);
      else if (p >= i) bad(at("parent"), `parent ${q(d.parent)} must be listed before ${nm(d.name)}`);
    }
    if (isPci) checkPci(s, d, at, bad, devIdx, pciBusOf);
    else if (d.parent !== undefined && s.devices[devIdx.get(d.parent) ?? -1]?.bus === "pci" && d.bus !== "pci") {
      bad(at("parent"), `${nm(d.name)} is on the ${d.bus} bus below PCI function ${nm(d.parent)}`);
    }
  });

  // Drivers
  s.drivers.forEach((drv, i) => {
    if (drv.match !== "*") {
      drv.match.forEach((n, j) => {
        const d = devIdx.has(n) ? s.devices[devIdx.get(n)!]! : null;
        if (d === null) bad(["drivers", i, "match", j], unknownName("device", n, devIdx));
        else if (d.bus !== drv.bus) bad(["drivers", i, "match", j], `${nm(n)} is on the ${d.bus} bus, driver ${nm(drv.name)} on ${drv.bus}`);
      });
    }
    for (const n of Object.keys(drv.probe_result ?? {})) {
      if (!devIdx.has(n)) bad(["drivers", i, "probe_result", n], unknownName("device", n, devIdx));
    }
  });

  // Events
  const kernelEvents = s.events.flatMap((e): TaskEventSpec[] => (e.concurrently !== undefined ? e.concurrently.flat() : [e]));
  const declaredDomains = new Set(kernelEvents.flatMap((e) => (e.domain_alloc ? [e.domain_alloc.name] : [])));
  const declaredHandles = new Set(kernelEvents.flatMap((e) => (e.dma_map ? [e.dma_map.name] : [])));
  const checkHandle = (n: string, path: KeyPath) => {
    if (!declaredHandles.has(n)) bad(path, `no dma_map event names a DMA handle ${q(n)}`);
  };
  // iommufd: the names each context's calls bind, and where a context was closed.
  const iommufdNames = new Map<string, Set<string>>();
  for (const e of kernelEvents) {
    if (e.iommufd === undefined) continue;
    const set = iommufdNames.get(e.iommufd.ctx) ?? new Set<string>();
    iommufdNames.set(e.iommufd.ctx, set);
    for (const c of e.iommufd.calls) {
      const as = callBinds(c);
      if (as !== undefined) set.add(as);
    }
  }
  const iommufdClosed = new Map<string, string>();
  /** An expected domain may be a kind (blocked, identity) rather than a domain_alloc name. */
  const named = (d: unknown): d is string => typeof d === "string" && !(EXPECT_DOMAIN_KINDS as readonly string[]).includes(d);
  const checkDomain = (ref: string | number, path: KeyPath) => {
    if (typeof ref === "string" && !declaredDomains.has(ref)) bad(path, `no domain_alloc event names a domain ${q(ref)}`);
  };
  const checkDevice = (n: string, path: KeyPath) => {
    if (!devIdx.has(n)) bad(path, unknownName("device", n, devIdx));
  };
  s.events.forEach((e, i) => {
    const at = (...rest: (string | number)[]): KeyPath => ["events", i, ...rest];
    if (e.expect !== undefined) {
      checkExpect(e.expect, at("expect"), devIdx, iommuIdx, drvIdx, bad);
      for (const n of Object.keys(e.expect.domains ?? {})) if (!declaredDomains.has(n)) bad(at("expect", "domains", n), `no domain_alloc event names a domain ${q(n)}`);
      for (const [n, d] of Object.entries(e.expect.devices ?? {})) if (named(d.domain)) checkDomain(d.domain, at("expect", "devices", n, "domain"));
      e.expect.groups?.forEach((g, j) => {
        if (!Array.isArray(g) && named(g.domain)) checkDomain(g.domain, at("expect", "groups", j, "domain"));
      });
      return;
    }
    if (e.concurrently !== undefined) {
      e.concurrently.forEach((task, t) => task.forEach((te, j) => checkEvent(te, at("concurrently", t, j))));
      return;
    }
    checkEvent(e, at());
  });
  /** A kernel entry point at `path`: its checks are in its entry of the event table. */
  function checkEvent(e: TaskEventSpec, path: KeyPath): void {
    const key = eventKey(e) as EventKind;
    const under = (rest: (string | number)[]) => [...path, key, ...rest];
    eventDef(key).check?.(e[key], {
      iommu: (n, ...rest) => {
        if (!iommuIdx.has(n)) bad(under(rest), unknownName("IOMMU instance", n, iommuIdx));
      },
      device: (n, ...rest) => checkDevice(n, under(rest)),
      driver: (n, ...rest) => {
        if (!drvIdx.has(n)) bad(under(rest), unknownName("driver", n, drvIdx));
      },
      domain: (ref, ...rest) => checkDomain(ref, under(rest)),
      handle: (n, ...rest) => checkHandle(n, under(rest)),
      iommufdName: (ctx, n, ...rest) => {
        const names = iommufdNames.get(ctx) ?? new Set<string>();
        if (!names.has(n)) bad(under(rest), `no call of iommufd context ${q(ctx)} names an object ${q(n)}${didYouMean(n, [...names])}`);
      },
      iommufdCtx: (ctx, closes, ...rest) => {
        const closedAt = iommufdClosed.get(ctx);
        if (closedAt !== undefined) bad(under(rest), `iommufd context ${q(ctx)} was closed at ${closedAt}: no event can use it after`);
        else if (closes) iommufdClosed.set(ctx, formatPath(path));
      },
      bad: (message, ...rest) => bad(under(rest), message),
    });
  }
  if (s.explore !== undefined && !s.events.some((e) => e.concurrently !== undefined)) {
    bad(["explore"], "explore needs a concurrently event to interleave: without one there is a single schedule");
  }
  return out;
}

function checkExpect(
  x: ExpectSpec,
  at: KeyPath,
  devIdx: Map<string, number>,
  iommuIdx: Map<string, number>,
  drvIdx: Map<string, number>,
  bad: (p: KeyPath, m: string) => void,
): void {
  for (const [n, d] of Object.entries(x.devices ?? {})) {
    if (!devIdx.has(n)) bad([...at, "devices", n], unknownName("device", n, devIdx));
    // Names used as values must exist too, or the expectation could never hold.
    if (typeof d.iommu === "string" && !iommuIdx.has(d.iommu)) bad([...at, "devices", n, "iommu"], unknownName("IOMMU instance", d.iommu, iommuIdx));
    if (typeof d.driver === "string" && !drvIdx.has(d.driver)) bad([...at, "devices", n, "driver"], unknownName("driver", d.driver, drvIdx));
    if (typeof d.ops === "string" && !(IOMMU_DRIVER_NAMES as readonly string[]).includes(d.ops)) {
      bad([...at, "devices", n, "ops"], `unknown iommu_ops ${q(d.ops)}${didYouMean(d.ops, IOMMU_DRIVER_NAMES) || ` (one of ${IOMMU_DRIVER_NAMES.join(", ")})`}`);
    }
  }
  for (const n of Object.keys(x.iommus ?? {})) if (!iommuIdx.has(n)) bad([...at, "iommus", n], unknownName("IOMMU instance", n, iommuIdx));
  x.groups?.forEach((g, i) => {
    const names = Array.isArray(g) ? g : g.devices;
    names.forEach((n, j) => {
      if (!devIdx.has(n)) bad([...at, "groups", i, ...(Array.isArray(g) ? [j] : ["devices", j])], unknownName("device", n, devIdx));
    });
  });
  x.deferred?.forEach((n, j) => {
    if (!devIdx.has(n)) bad([...at, "deferred", j], unknownName("device", n, devIdx));
  });
}

function checkPci(
  s: Scenario,
  d: DeviceSpec,
  at: (k: string | number, ...rest: (string | number)[]) => KeyPath,
  bad: (p: KeyPath, m: string) => void,
  devIdx: Map<string, number>,
  pciBusOf: Map<string, number>,
): void {
  const addr = parsePciName(d.name);
  if (addr === null) {
    bad(at("name"), `a PCI function is named SSSS:BB:DD.F (segment, bus, device, function); ${q(d.name)} is not`);
    return;
  }
  if (d.fwnode !== undefined) bad(at("fwnode"), "PCI functions take their firmware from the host bridge; drop fwnode");
  if (d.acs !== undefined && (d.acs_cap !== undefined || d.acs_ctl !== undefined)) bad(at("acs"), "acs (implemented and enabled) or acs_cap/acs_ctl, not both");
  if (d.acs_ctl !== undefined && d.acs_cap === undefined) bad(at("acs_ctl"), "acs_ctl without acs_cap: a control register needs the ACS capability; list the controls implemented in acs_cap");
  if (d.parent !== undefined) {
    const p = s.devices[devIdx.get(d.parent) ?? -1];
    if (p === undefined) return;
    if (p.bus === "pci") {
      const ptype = (p.type ?? "endpoint") as PciDevType;
      if (!PCI_BRIDGE_TYPES.has(ptype)) return bad(at("parent"), `parent ${nm(d.parent)} is a ${ptype}, not a bridge`);
      const paddr = parsePciName(p.name);
      if (paddr !== null && paddr.segment !== addr.segment) return bad(at("parent"), `${nm(d.name)} is in segment ${addr.segment}, its parent ${nm(d.parent)} in ${paddr.segment}`);
      if (paddr !== null && paddr.bus === addr.bus) return bad(at("name"), `${nm(d.name)} is on bus ${addr.bus.toString(16).padStart(2, "0")}, the same bus as its parent bridge ${nm(d.parent)}`);
      const sec = pciBusOf.get(d.parent);
      if (sec !== undefined && sec !== addr.bus) {
        bad(at("name"), `${nm(d.name)} is on bus ${hex2(addr.bus)}, but ${nm(d.parent)}'s other children are on bus ${hex2(sec)}`);
      }
      pciBusOf.set(d.parent, addr.bus);
    } else if (p["pci-host"] === undefined) {
      bad(at("parent"), `parent ${nm(d.parent)} is neither a PCI bridge nor a PCI host bridge`);
    } else if (p["pci-host"].segment !== addr.segment) {
      bad(at("parent"), `${nm(d.name)} is in segment ${addr.segment}, host bridge ${nm(d.parent)} serves segment ${p["pci-host"].segment}`);
    }
  }
  d["dma-alias"]?.forEach((a, j) => {
    const viaName = parsePciName(a);
    const short = /^([0-1][0-9a-f])\.([0-7])$/i.exec(a);
    if (viaName === null && short === null) return bad(at("dma-alias", j), `${q(a)} is neither DD.F nor a PCI function name`);
    if (viaName !== null && (viaName.segment !== addr.segment || viaName.bus !== addr.bus)) {
      bad(at("dma-alias", j), `DMA aliases are on the same bus; ${nm(a)} is not on ${nm(d.name)}'s bus`);
    }
  });
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}
