/**
 * A machine built from a scenario: the driver core with its buses, the
 * IOMMU core, firmware nodes, IOMMU drivers and their instances, devices
 * and device drivers, all created but nothing registered or added yet
 * (runner.ts's bootPath does that, in the kernel's order).
 */
import type { BusType } from "../base/bus.ts";
import { Device } from "../base/device.ts";
import { iommuDmaInitFq } from "../dma/dma-iommu.ts";
import { DeviceDriver } from "../base/driver.ts";
import type { DeferredProbeMode } from "../base/deferred-lists.ts";
import { MachineContext } from "../base/context.ts";
import { busRegister, DriverCore } from "../base/driver-core.ts";
import { FwnodeHandle, type PropCell } from "../base/fwnode.ts";
import { parsePciName, PciBus, PciDev, PciHostBridge } from "../base/pci/pci-dev.ts";
import { pciSetupDevice, type PciFixupRecord } from "./pci-setup.ts";
import { pciEnumerationOrder } from "./pci-order.ts";
import type { AcsOverride } from "../base/pci/quirks/acs-override.ts";
import { pciAcsOf, pciIdsOf } from "./scenario/pci-keys.ts";
import { IOMMU_DRIVERS, type DriverQuirks, type IommuDriver } from "../drivers/index.ts";
import { injectProbeFaults } from "../drivers/env-tables.ts";
import { FirmwareTables } from "../firmware/tables.ts";
import { isErr, kerr, type ErrnoName } from "../lib/errno.ts";
import type { CmdlineNote } from "../iommu/cmdline.ts";
import { installBusDmaOps } from "../iommu/bus-dma.ts";
import { IommuCore } from "../iommu/iommu-core.ts";
import type { IommuDevice } from "../iommu/iommu-device.ts";
import { iommuParseCmdline, iommuSubsysInit, kconfigFor } from "../iommu/init.ts";
import { strategiesFor } from "../designs/registry.ts";
import { IOMMU_DOMAIN_DMA, IOMMU_DOMAIN_IDENTITY, type IommuDomain } from "../iommu/domain.ts";
import { PGTABLE_MEMORY_DEFAULT_LIMIT, PgtableMemory } from "../pgtable/pool.ts";
import { parseSize, scenarioArch, scenarioDesign, type DeviceSpec, type IommuSpec, type Scenario } from "./scenario/schema.ts";

export interface InstanceRec {
  readonly spec: IommuSpec;
  readonly iommu: IommuDevice;
  readonly driver: IommuDriver;
}

export interface DeviceRec {
  readonly spec: DeviceSpec;
  readonly dev: Device;
}

/** One recorded event: what the runner did and how it ended. */
export interface EventRecord {
  event: string;
  arg: string;
  result: string;
  /** What the call returned, for events that return something (bytes unmapped, an address). */
  value?: number;
}

/** A DMA mapping a dma_map event made. */
export interface DmaHandle {
  device: string;
  /** The domain the buffer was mapped through (null: dma-direct); unmapping it elsewhere would free another mapping's IOVA. */
  domain: IommuDomain | null;
  dma: number;
  size: number;
  live: boolean;
  sg: boolean;
}

export interface MachineOptions {
  /** Record the trace (default true). */
  trace?: boolean;
  /** bus_iommu_probe walk: via the unprobed-device index (default) or every device, as the kernel does. */
  probeWalk?: "indexed" | "literal";
  /** Deferred probe: retry only devices whose wait may have ended (default), or every one on every trigger, as the kernel does. */
  deferredProbe?: DeferredProbeMode;
  /**
   * Bytes of memory all the machine's IO page tables may hold together
   * (default PGTABLE_MEMORY_DEFAULT_LIMIT, 128 MiB); a map that needs more
   * fails with ENOMEM before it allocates (docs/pgtable.md).
   */
  pgtableMemoryLimit?: number;
  /** The out-of-tree pcie_acs_override= patch applied to every host bridge (what-if questions; mainline has none). */
  pciAcsOverride?: AcsOverride;
}

export class Machine {
  /** The machine's context: scheduling, the trace, and the diagnostics sink (warnings, findings, violations). */
  readonly ctx = new MachineContext();
  readonly dc: DriverCore;
  readonly k: IommuCore;
  readonly buses: { platform: BusType; pci: BusType; amba: BusType; mock: BusType };
  readonly firmware = new FirmwareTables();
  readonly instances = new Map<string, InstanceRec>();
  readonly devices = new Map<string, DeviceRec>();
  readonly drivers = new Map<string, DeviceDriver>();
  readonly events: EventRecord[] = [];
  /** Domains domain_alloc events allocated, by the names the scenario gave them. */
  readonly userDomains = new Map<string, IommuDomain>();
  /** DMA owner cookies, by the names claim_dma_owner events use. */
  readonly owners = new Map<string, { name: string }>();
  readonly quirks: DriverQuirks = { defDomainType: new Map(), failAttach: new Map(), failProbe: new Map() };
  /** DMA handles dma_map events made, by name. */
  readonly dmaHandles = new Map<string, DmaHandle>();
  readonly arch: "x86" | "arm64";
  /** What each boot.cmdline option did (modelled, not modelled, unknown). */
  readonly cmdline: CmdlineNote[];
  /** The quirks enumeration applied (header fixups, ACS enable): by function, for the trace and `explain`. */
  readonly pciFixups: PciFixupRecord[] = [];
  /** The budget every page table of this machine draws its memory from. */
  readonly pgtableMemory: PgtableMemory;

  constructor(
    readonly scenario: Scenario,
    opts: MachineOptions = {},
  ) {
    this.ctx.trace.enabled = opts.trace ?? true;
    this.dc = new DriverCore(this.ctx, opts.deferredProbe ?? "indexed");
    const limit = opts.pgtableMemoryLimit ?? PGTABLE_MEMORY_DEFAULT_LIMIT;
    if (!(Number.isSafeInteger(limit) && limit >= 0)) throw new MachineError(`pgtableMemoryLimit ${limit}: expected a whole number of bytes, 0 or more`);
    this.pgtableMemory = new PgtableMemory(limit);
    const platform = busRegister(this.dc, "platform");
    const pci = busRegister(this.dc, "pci");
    const amba = busRegister(this.dc, "amba");
    const mock = busRegister(this.dc, "iommufd_mock");
    this.buses = { platform, pci, amba, mock };

    // The strategies the scenario chose, handed to the core (which implements none itself).
    const strategy = strategiesFor(scenarioDesign(scenario));
    this.arch = scenarioArch(scenario);
    // iommu_buses[]: platform, pci, and amba under CONFIG_ARM_AMBA (arm64 only); fsl-mc, host1x-context and cdx have no devices here.
    this.k = new IommuCore(this.dc, this.arch === "x86" ? [platform, pci] : [platform, pci, amba], strategy);
    this.k.dmaInitFq = iommuDmaInitFq;
    this.k.probeWalk = opts.probeWalk ?? "indexed";
    const kc = kconfigFor(this.arch);
    const notes = iommuParseCmdline(this.k, kc, scenario.boot?.cmdline ?? "", this.arch);
    if (isErr(notes)) throw new MachineError(notes.message);
    this.cmdline = notes;
    iommuSubsysInit(this.k);
    installBusDmaOps(this.k, { platform, pci, amba });

    const nodes = new Map<string, FwnodeHandle>();
    const node = (path: string): FwnodeHandle => {
      let n = nodes.get(path);
      if (n === undefined) {
        n = new FwnodeHandle(path, path.startsWith("\\") ? "acpi" : "of");
        nodes.set(path, n);
      }
      return n;
    };
    this.buildInstances(node);
    this.buildDevices(node, opts.pciAcsOverride ?? null);
    if (scenario.boot?.order === "devices-first") {
      // Enumerated before the IOMMUs initialise: added, and so probed, in pci_bus_add_devices order.
      const ordered = pciEnumerationOrder([...this.devices.values()]);
      this.devices.clear();
      for (const r of ordered) this.devices.set(r.spec.name, r);
    }
    // The quirks PCI enumeration applied, before anything probes (pci_fixup_device, pci_enable_acs).
    if (this.ctx.tracing) for (const f of this.pciFixups) this.ctx.note(f.fn, f.device, f.quirk);
    for (const d of scenario.drivers) {
      const bus = this.busNamed(d.bus);
      const results = new Map(Object.entries(d.probe_result ?? {}));
      const drv = new DeviceDriver(bus, {
        name: d.name,
        match: d.match,
        driverManagedDma: d.driver_managed_dma ?? false,
        // A driver whose probe always succeeds needs no lookup per device.
        ...(results.size === 0
          ? {}
          : {
              probeResult: (dev: Device) => {
                const e = results.get(dev.name);
                return e === undefined ? 0 : kerr(e as ErrnoName, `driver ${d.name}'s probe of ${dev.name} returned ${e}`);
              },
            }),
      });
      this.drivers.set(d.name, drv);
    }
  }

  busNamed(name: string): BusType {
    switch (name) {
      case "platform":
        return this.buses.platform;
      case "pci":
        return this.buses.pci;
      case "amba":
        return this.buses.amba;
      default:
        return this.buses.mock;
    }
  }

  private buildInstances(node: (path: string) => FwnodeHandle): void {
    const drivers = new Map<string, IommuDriver>();
    for (const d of this.scenario.devices) {
      if (d.def_domain_type !== undefined) this.quirks.defDomainType.set(d.name, d.def_domain_type === "identity" ? IOMMU_DOMAIN_IDENTITY : IOMMU_DOMAIN_DMA);
      if (d.fail_attach !== undefined) this.quirks.failAttach.set(d.name, d.fail_attach as ErrnoName);
      if (d.fail_probe !== undefined) this.quirks.failProbe.set(d.name, { errno: d.fail_probe.errno as ErrnoName, left: d.fail_probe.times ?? 1 });
    }
    const env = {
      pgtableMemory: this.pgtableMemory,
      mockBus: this.buses.mock,
      firmware: this.firmware,
      quirks: this.quirks,
      report: (domain: IommuDomain, finding: string) => {
        this.ctx.diag.pgtableFinding(domain, finding);
        if (this.ctx.tracing) this.ctx.note("io-pgtable finding", String(domain), finding);
      },
    };
    for (const spec of this.scenario.iommus) {
      let driver = drivers.get(spec.driver);
      if (driver === undefined) {
        driver = IOMMU_DRIVERS[spec.driver](this.k, env);
        if (this.quirks.failProbe.size > 0) injectProbeFaults(driver, this.quirks);
        drivers.set(spec.driver, driver);
      }
      let fwnode: FwnodeHandle | null = null;
      if (typeof spec.fwnode === "string") {
        fwnode = node(spec.fwnode);
        fwnode.props.set("#iommu-cells", spec["#iommu-cells"] ?? 1);
        if (spec.status !== undefined) fwnode.props.set("status", spec.status);
        if (spec["stream-match-mask"] !== undefined) fwnode.props.set("stream-match-mask", spec["stream-match-mask"]);
      }
      const pageSizes = spec["page-sizes"]?.map(parseSize);
      const iommu = driver.newInstance({
        name: spec.name,
        fwnode,
        scope:
          spec.scope === undefined
            ? undefined
            : { segment: spec.segment ?? 0, includeAll: spec.scope === "all", devices: new Set(spec.scope === "all" ? [] : spec.scope) },
        pgsizeBitmap: pageSizes?.reduce((a, b) => a + b, 0),
        ias: spec.ias,
        sidBits: spec["sid-bits"],
        pasidBits: spec["pasid-bits"],
        streamMapEntries: spec["stream-map-entries"],
      });
      this.instances.set(spec.name, { spec, iommu, driver });
    }
  }

  private instanceNode(name: string): FwnodeHandle {
    return this.instances.get(name)!.iommu.fwnode!;
  }

  private buildDevices(node: (path: string) => FwnodeHandle, acsOverride: AcsOverride | null): void {
    const hosts = new Map<number, PciHostBridge>();
    const hostDevice = new Map<number, Device>();
    // Host bridges first: PCI functions anywhere in the file may sit below them.
    for (const spec of this.scenario.devices) {
      const h = spec["pci-host"];
      if (h === undefined) continue;
      const np = node(spec.fwnode!);
      const map: PropCell[] = [];
      for (const [ridBase, inst, outBase, len] of h["iommu-map"] ?? []) map.push(ridBase, this.instanceNode(inst), outBase, len);
      if (h["iommu-map"] !== undefined) np.props.set("iommu-map", map);
      if (h["iommu-map-mask"] !== undefined) np.props.set("iommu-map-mask", h["iommu-map-mask"]);
      const hb = new PciHostBridge(h.segment, np);
      hb.acsOverride = acsOverride;
      hosts.set(h.segment, hb);
    }
    const roots = new Map<string, PciBus>();
    for (const spec of this.scenario.devices) {
      const bus = this.busNamed(spec.bus);
      const parent = spec.parent !== undefined ? this.devices.get(spec.parent)!.dev : null;
      let dev: Device;
      if (spec.bus === "pci") {
        const a = parsePciName(spec.name)!;
        let host = hosts.get(a.segment);
        if (host === undefined) {
          // No DT host bridge for the segment: an ACPI host bridge (DMAR/IVRS machines).
          host = new PciHostBridge(a.segment, null);
          host.acpiIvrs = this.scenario.iommus.some((m) => m.driver === "amd-iommu");
          host.acsOverride = acsOverride;
          hosts.set(a.segment, host);
        }
        let pbus: PciBus;
        if (parent?.pci) {
          pbus = parent.pci.subordinate ?? new PciBus(a.bus, parent, parent.pci.bus, host);
          parent.pci.subordinate = pbus;
        } else {
          const key = `${a.segment}:${a.bus}`;
          pbus = roots.get(key) ?? new PciBus(a.bus, null, null, host);
          roots.set(key, pbus);
        }
        const aliases = (spec["dma-alias"] ?? []).map((s) => {
          const full = parsePciName(s);
          if (full !== null) return full.devfn;
          const [dd, f] = s.split(".");
          return (parseInt(dd!, 16) << 3) | parseInt(f!, 10);
        });
        const acs = pciAcsOf(spec);
        const pdev = new PciDev(pbus, a.devfn, {
          type: spec.type ?? "endpoint",
          acsCap: acs.cap,
          acsCtl: acs.ctl,
          ids: pciIdsOf(spec),
          multifunction: spec.multifunction ?? false,
          dmaAliasDevfns: aliases,
          bridgeXlateRoot: spec["bridge-xlate-root"] ?? false,
          pcieBridgeAlias: spec["pcie-bridge-alias"] ?? false,
          untrusted: spec.untrusted ?? false,
          maxPasids: spec["pasid-bits"] ? 2 ** spec["pasid-bits"] : 0,
        });
        const hostDev = parent ?? hostDevice.get(a.segment) ?? null;
        pdev.name = spec.name;
        dev = new Device(spec.name, bus, hostDev, null, pdev);
        this.pciFixups.push(...pciSetupDevice(pdev, spec.name, acs.std, this.scenario.iommus.length > 0));
      } else {
        const np = spec.fwnode !== undefined ? node(spec.fwnode) : null;
        if (np !== null && spec.iommus !== undefined) {
          const cells: PropCell[] = [];
          for (const [inst, ...args] of spec.iommus) cells.push(this.instanceNode(inst as string), ...(args as number[]));
          np.props.set("iommus", cells);
        }
        if (np !== null && spec["pasid-bits"] !== undefined) np.props.set("pasid-num-bits", spec["pasid-bits"]);
        dev = new Device(spec.name, bus, parent, np);
        const h = spec["pci-host"];
        if (h !== undefined) hostDevice.set(h.segment, dev);
      }
      if (spec["dma-mask"] !== undefined) dev.dmaMask = 2 ** spec["dma-mask"] - 1;
      if (spec["reserved-regions"] !== undefined) {
        this.firmware.resvRegions.set(
          spec.name,
          spec["reserved-regions"].map((r) => ({ start: parseSize(r.start), length: parseSize(r.length), kind: r.type })),
        );
      }
      this.devices.set(spec.name, { spec, dev });
    }
  }
}

export class MachineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MachineError";
  }
}
