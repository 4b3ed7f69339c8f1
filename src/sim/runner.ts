/**
 * Runs a scenario: boots the machine in the kernel's order, then plays its
 * events one by one, checking every invariant after each step and every
 * expectation where it stands. The result says what failed and where.
 */
import { deferredProbeInitcall } from "../base/dd.ts";
import { driverRegister } from "../base/dd.ts";
import { callPath, runPath, trackTouches, type Path } from "../base/path.ts";
import type { KError } from "../lib/errno.ts";
import { addDevice, bindDriver, delDevice, iommuRegister, iommuUnregister, registerDriver, unbindDriver, unregisterDriver } from "./actions.ts";
import {
  attachDevice,
  attachGroup,
  claimDmaOwner,
  detach,
  domainAlloc,
  domainFree,
  groupType,
  pasidOp,
  releaseDmaOwner,
} from "./domain-actions.ts";
import { advanceTime, deviceDma, dmaMap, dmaUnmap, map, unmap } from "./dma-actions.ts";
import { matchExpect } from "./expect.ts";
import { checkInvariants, formatViolation, scopeOfTouched, type InvariantScope } from "./invariants.ts";
import { Machine, type EventRecord, type MachineOptions } from "./machine.ts";
import { eventKey, type EventSpec, type Scenario } from "./scenario/schema.ts";
import { takeSnapshot, type Snapshot } from "./snapshot.ts";

export interface Failure {
  /** "boot", or the event's index in the file. */
  step: string;
  /**
   * expectation: an `expect` did not match; expect_error: an event did not fail (or return) as its
   * expect_error/expect_value said; unexpected_error: an event without expect_error failed;
   * invariant: a rule the kernel keeps was broken.
   */
  kind: "expectation" | "expect_error" | "unexpected_error" | "invariant";
  message: string;
}

export interface RunResult {
  machine: Machine;
  boot: EventRecord[];
  failures: Failure[];
  expectations: { passed: number; failed: number };
  /** Every distinct invariant violation seen, with the step it first appeared. */
  violations: string[];
  snapshot: Snapshot;
}

function resultName(r: 0 | KError): string {
  return r === 0 ? "ok" : r.errno;
}

/** The path an event stands for, with the name of what it acts on (an event that cannot block runs in one step). */
export function eventPath(m: Machine, e: EventSpec): { arg: string; path: Path<0 | KError> } {
  switch (eventKey(e)) {
    case "iommu_register":
      return { arg: e.iommu_register!, path: iommuRegister(m, m.instances.get(e.iommu_register!)!) };
    case "iommu_unregister":
      return { arg: e.iommu_unregister!, path: iommuUnregister(m, m.instances.get(e.iommu_unregister!)!) };
    case "device_add":
      return { arg: e.device_add!, path: addDevice(m, m.devices.get(e.device_add!)!) };
    case "device_del":
      return { arg: e.device_del!, path: delDevice(m, m.devices.get(e.device_del!)!) };
    case "driver_register":
      return { arg: e.driver_register!, path: registerDriver(m, e.driver_register!) };
    case "driver_unregister":
      return { arg: e.driver_unregister!, path: unregisterDriver(m, e.driver_unregister!) };
    case "driver_bind":
      return { arg: `${e.driver_bind!.device} ${e.driver_bind!.driver}`, path: bindDriver(m, e.driver_bind!.device, e.driver_bind!.driver) };
    case "driver_unbind":
      return { arg: e.driver_unbind!, path: unbindDriver(m, e.driver_unbind!) };
    case "domain_alloc": {
      const a = e.domain_alloc!;
      return { arg: `${a.name} ${a.device}`, path: callPath(() => domainAlloc(m, a.name, a.device)) };
    }
    case "domain_free":
      return { arg: String(e.domain_free), path: callPath(() => domainFree(m, e.domain_free!)) };
    case "attach_group": {
      const a = e.attach_group!;
      return { arg: `${a.domain} ${a.device}`, path: attachGroup(m, a.domain, a.device) };
    }
    case "attach_device": {
      const a = e.attach_device!;
      return { arg: `${a.domain} ${a.device}`, path: attachDevice(m, a.domain, a.device) };
    }
    case "detach": {
      const a = e.detach!;
      return { arg: a.domain === undefined ? a.device : `${a.domain} ${a.device}`, path: detach(m, a.device, a.domain) };
    }
    case "attach_pasid":
    case "detach_pasid":
    case "replace_pasid": {
      const key = eventKey(e) as "attach_pasid" | "detach_pasid" | "replace_pasid";
      const a = e[key]!;
      const op = key === "attach_pasid" ? "attach" : key === "detach_pasid" ? "detach" : "replace";
      return { arg: `${a.domain} ${a.device} ${a.pasid}`, path: pasidOp(m, op, a.domain, a.device, a.pasid) };
    }
    case "claim_dma_owner": {
      const a = e.claim_dma_owner!;
      return { arg: `${a.device} ${a.owner}${a.group ? " (group)" : ""}`, path: claimDmaOwner(m, a.device, a.owner, a.group ?? false) };
    }
    case "release_dma_owner": {
      const a = e.release_dma_owner!;
      return { arg: `${a.device}${a.group ? " (group)" : ""}`, path: releaseDmaOwner(m, a.device, a.group ?? false) };
    }
    case "group_type": {
      const a = e.group_type!;
      return { arg: `${a.device} ${a.type}`, path: groupType(m, a.device, a.type) };
    }
    case "map": {
      const a = e.map!;
      return { arg: `${a.domain} ${a.iova} -> ${a.paddr} ${a.size}`, path: callPath(() => map(m, a.domain, a.iova, a.paddr, a.size, a.prot ?? "rw")) };
    }
    case "unmap": {
      const a = e.unmap!;
      return { arg: `${a.domain} ${a.iova} ${a.size}`, path: callPath(() => unmap(m, a.domain, a.iova, a.size)) };
    }
    case "dma_map": {
      const a = e.dma_map!;
      return { arg: `${a.device} ${a.name}`, path: callPath(() => dmaMap(m, a.device, a.name, a.dir ?? "bidirectional", a.paddr, a.size, a.sg)) };
    }
    case "dma_unmap": {
      const a = e.dma_unmap!;
      return { arg: `${a.device} ${a.name}`, path: callPath(() => dmaUnmap(m, a.device, a.name)) };
    }
    case "device_dma": {
      const a = e.device_dma!;
      return {
        arg: `${a.device} ${a.handle ?? a.iova} ${a.dir ?? "read"}`,
        path: callPath(() => deviceDma(m, a.device, a.iova, a.handle, a.size, a.dir === "write")),
      };
    }
    case "advance_time":
      return { arg: `${e.advance_time} ms`, path: callPath(() => advanceTime(m, e.advance_time!)) };
    case "expect":
      throw new Error("an expectation is not a kernel entry point");
  }
}

/**
 * Boots the machine: built-in IOMMU drivers register, devices are added (or
 * the other way round with `boot.order: devices-first`), drivers register,
 * late_initcall retries deferrals.
 */
export function* bootPath(m: Machine, records: EventRecord[]): Path {
  const record = (event: string, arg: string, r: 0 | KError) => records.push({ event, arg, result: resultName(r) });
  function* registerInstances(): Path {
    for (const rec of m.instances.values()) {
      if (rec.spec.registered === false) continue;
      m.dc.trace.event("boot", `iommu_register ${rec.spec.name}`);
      record("iommu_register", rec.spec.name, yield* iommuRegister(m, rec));
    }
  }
  const devicesFirst = m.scenario.boot?.order === "devices-first";
  if (!devicesFirst) yield* registerInstances();
  for (const rec of m.devices.values()) {
    if (rec.spec.added === false) continue;
    m.dc.trace.event("boot", `device_add ${rec.spec.name}`);
    record("device_add", rec.spec.name, yield* addDevice(m, rec));
  }
  if (devicesFirst) yield* registerInstances();
  for (const spec of m.scenario.drivers) {
    if (spec.registered === false) continue;
    m.dc.trace.event("boot", `driver_register ${spec.name}`);
    record("driver_register", spec.name, yield* driverRegister(m.dc, m.drivers.get(spec.name)!));
  }
  m.dc.trace.event("boot", "late_initcall deferred_probe_initcall");
  yield* deferredProbeInitcall(m.dc);
}

export interface RunOptions extends MachineOptions {
  /** Check invariants after every step (default true). */
  invariants?: boolean;
}

export function runScenario(s: Scenario, opts: RunOptions = {}): RunResult {
  const m = new Machine(s, opts);
  const failures: Failure[] = [];
  const seen = new Set<string>();
  const violations: string[] = [];
  // After boot and at the end the whole machine is checked; after each event, what the event touched.
  const checkAfter = (step: string, scope?: InvariantScope) => {
    if (opts.invariants === false) return;
    for (const v of checkInvariants(m, scope)) {
      const msg = formatViolation(v);
      if (seen.has(msg)) continue;
      seen.add(msg);
      violations.push(msg);
      failures.push({ step, kind: "invariant", message: msg });
    }
  };
  const boot: EventRecord[] = [];
  const touched = opts.invariants === false ? null : trackTouches(m.dc.sched);
  runPath(bootPath(m, boot));
  checkAfter("boot");

  let passed = 0;
  let failed = 0;
  s.events.forEach((e, i) => {
    const step = `events[${i}]`;
    if (e.expect !== undefined) {
      m.dc.trace.event(`${step}`, "expect");
      const diffs = matchExpect(e.expect, takeSnapshot(m, boot, violations));
      if (diffs.length === 0) passed++;
      else {
        failed++;
        for (const d of diffs) failures.push({ step, kind: "expectation", message: d });
      }
      return;
    }
    const { arg, path } = eventPath(m, e);
    const key = eventKey(e);
    m.dc.trace.event(step, `${key} ${arg}`);
    m.lastValue = undefined;
    if (touched !== null) trackTouches(m.dc.sched);
    const r = runPath(path);
    const rec: EventRecord = { event: key, arg, result: resultName(r) };
    if (r === 0 && m.lastValue !== undefined) rec.value = m.lastValue;
    m.events.push(rec);
    if (e.expect_value !== undefined && rec.value !== e.expect_value) {
      failed++;
      failures.push({ step, kind: "expect_error", message: `${key} ${arg}: expected value 0x${e.expect_value.toString(16)}, got ${rec.value === undefined ? "none" : "0x" + rec.value.toString(16)}` });
    } else if (e.expect_value !== undefined) {
      passed++;
    }
    if (e.expect_error === undefined && r !== 0) {
      failed++;
      failures.push({ step, kind: "unexpected_error", message: `${key} ${arg}: failed with ${r.errno}: ${r.message} (add expect_error: ${r.errno} if the failure is intended)` });
    } else if (e.expect_error !== undefined) {
      const got = r === 0 ? "success" : r.errno;
      if (got !== e.expect_error) {
        failed++;
        failures.push({ step, kind: "expect_error", message: `${key} ${arg}: expected ${e.expect_error}, got ${got}${r !== 0 ? ` (${r.message})` : ""}` });
      } else {
        passed++;
      }
    }
    checkAfter(step, touched === null ? undefined : scopeOfTouched(touched));
  });
  if (s.events.length > 0) checkAfter("end");
  return { machine: m, boot, failures, expectations: { passed, failed }, violations, snapshot: takeSnapshot(m, boot, violations) };
}
