/**
 * The design axes as the IOMMU core sees them (DESIGN.md "Design axes are
 * seams"): an interface per contested decision, which the core calls where
 * the designs differ. The implementations live above the core, in
 * src/designs/ (one file per axis); the machine hands the chosen ones to
 * the core (`IommuCore.strategy`), which imports none of them.
 */
import type { BusType, NotifierBlock } from "../base/bus.ts";
import type { Device } from "../base/device.ts";
import type { FwnodeHandle } from "../base/fwnode.ts";
import type { Path } from "../base/path.ts";
import type { KError } from "../lib/errno.ts";
import type { IommuFwspec } from "./dev-iommu.ts";
import type { IommuDomain } from "./domain.ts";
import type { IommuGroup } from "./group.ts";
import type { IommuCore } from "./iommu-core.ts";
import type { IommuDevice } from "./iommu-device.ts";
import type { IommuOps } from "./ops.ts";

/** The ops that serve a device, and the instance whose driver's probe_device accepted it. */
export interface ProbeTarget {
  ops: IommuOps;
  iommuDev: IommuDevice;
}

/**
 * What an IOMMU driver does about bus ops around its own registration:
 * the bus_set_iommu calls of kernels up to v6.0 (each driver its buses and
 * its policy; drivers/bus-claims.ts). The core calls them only where the
 * ops-resolution strategy says drivers claim buses.
 */
export interface DriverBusOps {
  /** After the driver's iommu_device_register succeeded: 0, or the errno its probe fails with (its own unwinding of bus ops done). */
  claim(iommu: IommuDevice): Path<0 | KError>;
  /** The driver's remove path, before its iommu_device_unregister. */
  release(iommu: IommuDevice): Path<void>;
}

/**
 * Which ops serve a device, and so which driver's probe_device decides
 * whether it is theirs (iommu_init_device); and what registration does to
 * the buses where buses carry ops.
 */
export interface OpsResolution {
  readonly name: string;
  probe(k: IommuCore, dev: Device): ProbeTarget | KError;
  /** iommu_device_register before it sets anything up: 0, or the errno that refuses the instance with nothing changed. */
  admit(k: IommuCore, ops: IommuOps): 0 | KError;
  /** iommu_device_register with the instance listed: whether it walks `bus` (bus_iommu_probe), giving the bus `ops` first where buses carry ops. */
  walkOnRegister(k: IommuCore, bus: BusType, ops: IommuOps): boolean;
  /** iommu_device_register_bus (the selftest's private bus), before its walk. */
  registerPrivateBus(k: IommuCore, bus: BusType, ops: IommuOps): void;
  /** The driver's own registration after its iommu_device_register succeeded: 0, or the errno its probe fails with (the core then unregisters the instance). */
  driverRegistered(k: IommuCore, iommu: IommuDevice, driver: DriverBusOps | null): Path<0 | KError>;
  /** The driver's remove path before iommu_device_unregister. */
  driverRemoving(k: IommuCore, iommu: IommuDevice, driver: DriverBusOps | null): Path<void>;
  /** `bus->iommu_ops`, where buses carry ops (kernels up to v6.7); absent where they carry none. */
  busOps?(k: IommuCore, bus: BusType): IommuOps | null;
  /** Drivers' probe_device refuse a device whose fwspec is not theirs (`fwspec->ops != &their_ops`), as they did up to v6.7. */
  readonly driversCheckFwspec: boolean;
}

/** Whether a fwspec carries ops, and so how fwspecs are made and how they name the ops that probe a device. */
export interface FwspecOps {
  readonly name: string;
  /**
   * iommu_fwspec_init, caller holding iommu_probe_device_lock. `ops` is what
   * a caller of the ops-carrying form passes (of_iommu_xlate: the ops of the
   * instance with that fwnode, NULL when none is registered;
   * iommu_mock_device_add: the mock's); the current form resolves them itself.
   */
  init(k: IommuCore, dev: Device, fwnode: FwnodeHandle | null, ops: IommuOps | null): Path<0 | KError>;
  /** The same in one step, for runs without points (no generator on the probe path). */
  initNow(k: IommuCore, dev: Device, fwnode: FwnodeHandle | null, ops: IommuOps | null): 0 | KError;
  /** The ops a fwspec stands for: `fwspec->ops`, or those of the instance its fwnode names (`iommu_fwspec_ops`). */
  opsOf(k: IommuCore, fwspec: IommuFwspec): IommuOps | null;
  /** The ops upstream's probe takes for a device's fwspec (none: the first instance without a fwnode). */
  probeOps(k: IommuCore, fwspec: IommuFwspec | null): IommuOps | null;
  /** Whether a fwspec names the ops that probe its device (ask-each tries only those). */
  namesOps(fwspec: IommuFwspec): boolean;
  /** of_iommu_configure finding a fwspec on entry: keep it (return 0), or free it and parse the firmware again. */
  keepsExisting(fwspec: IommuFwspec): boolean;
  /** Whether keepsExisting looks inside the fwspec (`fwspec->ops`, up to v6.10), a read of it that a concurrent free can race. */
  readonly keepsExistingReadsOps: boolean;
  /** of_iommu_configure after a failed parse: leave the fwspec it made (true), or free it. */
  readonly keepsFailedParse: boolean;
}

/** How a caller (VFIO, a driver) gets an UNMANAGED domain meant for a device. */
export interface DomainAllocation {
  readonly name: string;
  alloc(k: IommuCore, dev: Device): IommuDomain | KError;
}

/**
 * DMA ownership: how kernel DMA-API drivers and user space (VFIO, iommufd)
 * are kept out of each other's groups — refused by the driver core before a
 * driver's probe, or found out by VFIO's group notifier after it.
 */
export interface DmaOwnership {
  readonly name: string;
  /**
   * Whether a bus dma_configure counts a binding DMA-API driver in the group's owner_cnt before the
   * driver's probe (iommu_device_use_default_domain, which refuses a user-owned group with EBUSY),
   * and dma_cleanup uncounts it. If not, owner_cnt counts the user's claims only.
   */
  readonly useDefaultDomainAtBind: boolean;
  /** The design's own check before a user claim takes the group (called under group->mutex): 0, or the errno. */
  claim(k: IommuCore, group: IommuGroup): 0 | KError;
  /** The notifier the design has the core register on every IOMMU bus at iommu_subsys_init (VFIO's group notifier), or null. */
  groupNotifier(k: IommuCore): NotifierBlock | null;
  /** Whether a device bound to a DMA-API driver may stay so in a user-owned group (VFIO's allowed devices: PCI bridges). */
  allowedInUserGroup(dev: Device): boolean;
}

/**
 * Who builds a device's iommu_fwspec from firmware, and when
 * (fwspec_owner): the probe path, the driver core at bind, or the bus code
 * before device_add. The core asks at each place the designs differ.
 */
export interface FwspecOwner {
  readonly name: string;
  /** iommu_init_device: a device with no fwspec and no driver has the bus dma_configure parse its firmware (the probe lock dropped meanwhile). */
  readonly fwspecAtInitDevice: boolean;
  /** The bus dma_configure (at a bind, or from iommu_init_device) parses firmware (of_dma_configure_id, acpi_dma_configure_id). */
  readonly firmwareAtDmaConfigure: boolean;
  /** of_iommu_configure, having built a fwspec: replay iommu_probe_device? `hadDevIommu`: dev->iommu existed on entry. */
  replayAtBind(hadDevIommu: boolean): boolean;
  /** device_add of a device on a bus with dma_configure: the bus code parses its firmware first (under the fwspec lock), then adds it. */
  readonly installAtDeviceAdd: boolean;
  /** __iommu_probe_device WARNs "late IOMMU probe at driver bind" for a device probed with its driver set. */
  readonly warnLateProbe: boolean;
}

/**
 * How the probe paths are serialised (probe_serialisation): who takes
 * iommu_probe_device_lock, around what, and whether a listed instance
 * serves client binds before its bus walk is done.
 */
export interface ProbeSerialisation {
  readonly name: string;
  /**
   * Around __iommu_probe_device: no lock; the lock taken inside it (from
   * dev_iommu_get through the group bookkeeping); or taken by its callers
   * (iommu_probe_device, probe_iommu_group), which it asserts.
   */
  readonly lockProbe: "none" | "inside" | "callers";
  /** of_iommu_configure, acpi_iommu_configure_id, iommu_mock_device_add, bus code before device_add: the lock around fwspec lookup and creation. */
  readonly lockFwspec: boolean;
  /** iommu_fwspec_init defers a device without dev->iommu while its instance is listed but not ready (its bus walk not done). */
  readonly checkReady: boolean;
}

/** The strategies in force on one machine, one per axis. */
export interface IommuStrategies {
  opsResolution: OpsResolution;
  fwspecOps: FwspecOps;
  domainAllocation: DomainAllocation;
  dmaOwnership: DmaOwnership;
  fwspecOwner: FwspecOwner;
  probeSerialisation: ProbeSerialisation;
}
