/**
 * The ops_resolution axis (docs/design-axes.md): which iommu_ops serve a
 * device, and so whose probe_device decides whether the device is theirs;
 * and, where buses carry ops, how an IOMMU driver's registration claims
 * them (the "first come, first served" argument).
 */
import type { BusType } from "../base/bus.ts";
import { callPath, NO_POINT } from "../base/path.ts";
import { devIommuFwspecGet } from "../iommu/dev-iommu.ts";
import type { IommuOps } from "../iommu/ops.ts";
import type { OpsResolution } from "../iommu/strategy-types.ts";
import type { IommuCore } from "../iommu/iommu-core.ts";
import type { Device } from "../base/device.ts";
import { isErr, kerr, type KError } from "../lib/errno.ts";
import { axis } from "./axis.ts";

/** What the kernels without bus ops (v6.8+) do at registration: walk every IOMMU bus, and nothing else. */
const NO_BUS_OPS = {
  admit: () => 0 as const,
  walkOnRegister: () => true,
  registerPrivateBus: () => {},
  driverRegistered: () => callPath(() => 0 as const),
  driverRemoving: () => NO_POINT,
  driversCheckFwspec: false,
} satisfies Omit<OpsResolution, "name" | "probe">;

/**
 * Current kernels (v6.8+, "iommu: Retire bus ops"): ops from the device's
 * fwspec as the fwspec_ops strategy reads it (the instance its fwnode
 * names; up to v6.10 `fwspec->ops`); a device without a fwspec goes to the
 * first listed instance without a fwnode, whose probe_device may refuse it.
 */
export const upstreamOpsResolution: OpsResolution = {
  name: "upstream",
  ...NO_BUS_OPS,
  probe(k, dev) {
    // @kernel: iommu_init_device (ops = iommu_fwspec_ops(dev->iommu->fwspec))
    const fwspec = devIommuFwspecGet(dev);
    const ops = k.strategy.fwspecOps.probeOps(k, fwspec);
    if (k.tracing) k.note(
      "iommu_fwspec_ops",
      dev.name,
      `${fwspec === null ? "no fwspec: first instance without a fwnode" : fwspec.ops !== null ? `fwspec->ops ${fwspec.ops.name}` : `fwnode ${fwspec.iommuFwnode?.name ?? "(null)"}`} -> ${ops?.name ?? "no ops"}`,
    );
    if (ops === null) {
      return kerr(
        "ENODEV",
        fwspec?.iommuFwnode
          ? `no registered IOMMU instance has fwnode ${fwspec.iommuFwnode.name}`
          : `${dev.name} has no fwspec and no IOMMU instance without a fwnode is registered`,
      );
    }
    const r = ops.probeDevice(dev);
    if (k.tracing && isErr(r)) k.note("probe_device", dev.name, `${ops.name} refused: ${r.errno}: ${r.message}`);
    return isErr(r) ? r : { ops, iommuDev: r };
  },
};

/**
 * The January 2024 proposal from the mock-device thread, Lu Baolu's "[PATCH
 * v2 2/2] iommu: Probe right iommu_ops for device" (never merged), as the
 * review amended it: a device whose fwspec names no ops asks every
 * registered instance *without a fwnode*, in list order and skipping ops
 * already asked, until one's probe_device accepts it (the last refusal, or
 * ENODEV). As posted it also asked instances with a fwnode and asked the
 * same ops again: Kevin Tian and Jason Gunthorpe asked to skip both, and
 * Robin Murphy objected that fwspec drivers would see probe_device without
 * their of_xlate first. A fwspec that names ops (`fwspec->ops` up to v6.10;
 * any fwspec since, by its fwnode) is probed by those alone.
 */
export const askEachOpsResolution: OpsResolution = {
  name: "ask-each",
  ...NO_BUS_OPS,
  probe(k, dev) {
    const fwspec = devIommuFwspecGet(dev);
    if (fwspec !== null && k.strategy.fwspecOps.namesOps(fwspec)) return upstreamOpsResolution.probe(k, dev);
    const asked = new Set<IommuOps>();
    let last: KError | null = null;
    for (const inst of k.deviceList) {
      const ops = inst.ops;
      if (inst.fwnode !== null || ops === null || asked.has(ops)) continue;
      asked.add(ops);
      const r = ops.probeDevice(dev);
      if (k.tracing) k.note("probe_device", dev.name, `asked ${inst.name} (${ops.name}): ${isErr(r) ? `refused: ${r.errno}` : "accepted"}`);
      if (!isErr(r)) return { ops, iommuDev: r };
      last = r;
    }
    return last ?? kerr("ENODEV", `no IOMMU instance without a fwnode accepted ${dev.name}`);
  },
};

// @kernel: __iommu_probe_device (up to v6.7: ops = dev->bus->iommu_ops; NULL is -ENODEV)
function probeWithBusOps(k: IommuCore, dev: Device): ReturnType<OpsResolution["probe"]> {
  const ops = k.busIommuOps.get(dev.bus) ?? null;
  if (k.tracing) k.note("dev->bus->iommu_ops", dev.name, `bus ${dev.bus.name} -> ${ops?.name ?? "no ops"}`);
  if (ops === null) return kerr("ENODEV", `bus ${dev.bus.name} has no iommu_ops`);
  const r = ops.probeDevice(dev);
  if (k.tracing && isErr(r)) k.note("probe_device", dev.name, `${ops.name} refused: ${r.errno}: ${r.message}`);
  return isErr(r) ? r : { ops, iommuDev: r };
}

/** The ops a bus carries (`bus->iommu_ops`), in the eras where buses carry them. */
function busOps(k: IommuCore, bus: BusType): IommuOps | null {
  return k.busIommuOps.get(bus) ?? null;
}

/**
 * Kernels up to v6.0 (the v5.15 preset): every bus_type has iommu_ops and a
 * device is probed by its bus's. iommu_device_register only sets the
 * instance's ops and fwnode and lists it; the driver then calls
 * bus_set_iommu for each bus it claims, with its own guard and error
 * policy (drivers/bus-claims.ts): a bus that already has ops is EBUSY,
 * which arm-smmu (v2) avoids by skipping a claimed bus, arm-smmu-v3,
 * virtio-iommu and amd-iommu turn into a failed probe (the instance
 * unregistered again) and intel-iommu ignores. A driver's later instances
 * find their buses claimed already and do not walk them: their devices are
 * probed by the notifier or by the OF replay at bind. Retired in v6.1 by
 * Robin Murphy's "iommu: retire bus_set_iommu()" series (57365a04c921
 * "iommu: Move bus setup to IOMMU device registration", 29e932295bfa
 * "iommu: Clean up bus_set_iommu()").
 */
export const busSetIommuOpsResolution: OpsResolution = {
  name: "bus-set-iommu",
  admit: () => 0,
  walkOnRegister: () => false,
  // iommu_device_register_bus did not exist (v6.6); treated as setting the private bus's ops, as v6.6's did.
  registerPrivateBus(k, bus, ops) {
    k.busIommuOps.set(bus, ops);
  },
  driverRegistered: (_k, iommu, driver) => (driver === null ? callPath(() => 0 as const) : driver.claim(iommu)),
  *driverRemoving(_k, iommu, driver) {
    if (driver !== null) yield* driver.release(iommu);
  },
  busOps,
  driversCheckFwspec: true,
  probe: probeWithBusOps,
};

/**
 * v6.1 to v6.7 (57365a04c921 "iommu: Move bus setup to IOMMU device
 * registration", Robin Murphy, v4 15 Aug 2022): iommu_device_register
 * refuses (EBUSY, before anything is set up) an instance whose ops differ
 * from those the platform bus already has ("Temporarily enforce global
 * restriction to a single driver"), then lists it and, for every bus of
 * iommu_buses, gives the bus its ops and replays probe. Bus ops are never
 * cleared (not on a failed walk, not on unregister): once one driver has
 * registered, a different one is EBUSY for the rest of the boot. The
 * selftest's iommu_device_register_bus (v6.6, 23a1b46f15d5) gives its
 * private bus the mock's ops, unchecked. Retired in v6.8 by 17de3f5fdd35
 * "iommu: Retire bus ops".
 */
export const busOpsOpsResolution: OpsResolution = {
  name: "bus-ops",
  // @kernel: iommu_device_register (iommu_buses[0]->iommu_ops && != ops: -EBUSY)
  admit(k, ops) {
    const platform = k.iommuBuses[0];
    const cur = platform === undefined ? undefined : k.busIommuOps.get(platform);
    if (cur === undefined || cur === ops) return 0;
    return kerr("EBUSY", `bus ${platform!.name} already has ${cur.name}'s iommu_ops: one IOMMU driver per system (iommu_device_register)`);
  },
  walkOnRegister(k, bus, ops) {
    k.busIommuOps.set(bus, ops);
    return true;
  },
  registerPrivateBus(k, bus, ops) {
    k.busIommuOps.set(bus, ops);
  },
  driverRegistered: () => callPath(() => 0 as const),
  driverRemoving: () => NO_POINT,
  busOps,
  driversCheckFwspec: true,
  probe: probeWithBusOps,
};

/** The ops_resolution axis. */
export const OPS_RESOLUTION = axis({
  field: "opsResolution",
  doc: "which ops serve a device and how registration claims buses: bus_set_iommu per bus (<= v6.0), bus ops set at registration (v6.1-v6.7), per-device ops (default, v6.8+), or asking each fwnode-less instance (2024 proposal)",
  implementations: {
    "bus-set-iommu": busSetIommuOpsResolution,
    "bus-ops": busOpsOpsResolution,
    upstream: upstreamOpsResolution,
    "ask-each": askEachOpsResolution,
  },
  default: "upstream",
});
