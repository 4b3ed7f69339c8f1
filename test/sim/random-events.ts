/**
 * Small random machines and event sequences for property tests: arm64 with
 * SMMUs, PCI behind two instances and the iommufd mock; x86 with VT-d and
 * the mock (old and new wiring); events of every kind against their names.
 */
import fc from "fast-check";
import type { EventSpec, Scenario } from "../../src/sim/scenario/schema.ts";
import { scenario } from "../helpers.ts";

export const ARM = (o: Knobs) => `
name: arm
boot: {cmdline: "${o.cmdline}"}
iommus:
  - {name: i0, driver: arm-smmu-v3, fwnode: /i0, pasid-bits: 8}
  - {name: i1, driver: ${o.second}, fwnode: /i1, registered: false}
  - {name: mock0, driver: mock${o.mockNullFwnode ? ", fwnode: null" : ""}}
devices:
  - {name: a, bus: platform, fwnode: /a, iommus: [[i0, 1]], pasid-bits: 4}
  - {name: b, bus: platform, fwnode: /b, iommus: [[i0, 2]], reserved-regions: [{start: 0x7c000000, length: 0x200000, type: direct}]}
  - {name: c, bus: amba, fwnode: /c, iommus: [[i1, 1]], fail_attach: EINVAL}
  - {name: host, bus: platform, fwnode: /host, pci-host: {segment: 0, iommu-map: [[0x0, i0, 0x10000, 0x100], [0x100, i1, 0x10100, 0x100]]}}
  - {name: "0000:00:00.0", bus: pci, parent: host, type: root-port}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:00.0", multifunction: true, pasid-bits: 4}
  - {name: "0000:01:00.1", bus: pci, parent: "0000:00:00.0", multifunction: true, def_domain_type: identity}
  - {name: m0, bus: iommufd_mock}
  - {name: m1, bus: iommufd_mock, added: false}
drivers:
  - {name: dma, bus: platform, match: [a, b]}
  - {name: vfio, bus: platform, match: [a, b], driver_managed_dma: true, registered: ${o.vfio}}
  - {name: amba, bus: amba, match: [c]}
  - {name: nic, bus: pci, match: "*"}
  - {name: mdrv, bus: iommufd_mock, match: [m0, m1], registered: ${o.mockDriver}}
`;

export const X86 = (o: Knobs) => `
name: x86
boot: {cmdline: "${o.cmdline}"}
iommus:
  - {name: i0, driver: intel-iommu, scope: ["0000:00:02.0"], pasid-bits: 8}
  - {name: i1, driver: intel-iommu, scope: all}
  - {name: mock0, driver: mock${o.mockNullFwnode ? ", fwnode: null" : ""}}
devices:
  - {name: a, bus: pci, type: endpoint}
  - {name: b, bus: pci, type: endpoint, reserved-regions: [{start: 0x7c000000, length: 0x200000, type: direct}]}
  - {name: "0000:00:1c.0", bus: pci, type: root-port}
  - {name: "0000:01:00.0", bus: pci, parent: "0000:00:1c.0", multifunction: true, pasid-bits: 4}
  - {name: "0000:01:00.1", bus: pci, parent: "0000:00:1c.0", multifunction: true, fail_attach: EINVAL}
  - {name: m0, bus: iommufd_mock${o.mockNullFwnode ? ", add_with: device_add" : ""}}
  - {name: m1, bus: iommufd_mock, added: false}
drivers:
  - {name: dma, bus: pci, match: "*"}
  - {name: vfio, bus: pci, match: "*", driver_managed_dma: true, registered: ${o.vfio}}
  - {name: mdrv, bus: iommufd_mock, match: [m0, m1], registered: ${o.mockDriver}}
`.replace("{name: a, bus: pci", '{name: "0000:00:02.0", bus: pci').replace("{name: b, bus: pci", '{name: "0000:00:03.0", bus: pci');

export interface Knobs {
  x86: boolean;
  cmdline: string;
  second: string;
  mockNullFwnode: boolean;
  mockDriver: boolean;
  vfio: boolean;
}

export const knobs: fc.Arbitrary<Knobs> = fc.record({
  x86: fc.boolean(),
  cmdline: fc.constantFrom("", "iommu.passthrough=1", "iommu.strict=0"),
  second: fc.constantFrom("arm-smmu-v3", "arm-smmu"),
  mockNullFwnode: fc.boolean(),
  mockDriver: fc.boolean(),
  vfio: fc.boolean(),
});

const ARM_DEVICES = ["a", "b", "c", "0000:00:00.0", "0000:01:00.0", "0000:01:00.1", "m0", "m1"];
const X86_DEVICES = ["0000:00:02.0", "0000:00:03.0", "0000:01:00.0", "0000:01:00.1", "m0", "m1"];
const ARM_DRIVERS = ["dma", "vfio", "amba", "nic", "mdrv"];
const X86_DRIVERS = ["dma", "vfio", "mdrv"];

/** An event as (kind, three small numbers); turned into a spec against the machine's names. */
export const rawEvent = fc.tuple(fc.nat(25), fc.nat(63), fc.nat(63), fc.nat(63));

export function toEvent(x86: boolean, [kind, i, j, n]: [number, number, number, number]): EventSpec {
  const devs = x86 ? X86_DEVICES : ARM_DEVICES;
  const drvs = x86 ? X86_DRIVERS : ARM_DRIVERS;
  const dev = devs[i % devs.length]!;
  const drv = drvs[j % drvs.length]!;
  const inst = ["i0", "i1", "mock0"][j % 3]!;
  // A domain: one the events name, or any domain by id (default and blocking domains too).
  const domain = n % 3 === 0 ? (n % 8) + 1 : n % 2 === 0 ? "d0" : "d1";
  const pasid = (n % 2) + 1;
  const events: EventSpec[] = [
    { iommu_register: inst },
    { iommu_unregister: inst },
    { device_add: dev },
    { device_del: dev },
    { driver_register: drv },
    { driver_unregister: drv },
    { driver_bind: { device: dev, driver: drv } },
    { driver_bind: { device: dev, driver: drv } },
    { driver_unbind: dev },
    { domain_alloc: { name: n % 2 === 0 ? "d0" : "d1", device: dev } },
    { domain_free: domain },
    { attach_group: { domain, device: dev } },
    { attach_device: { domain, device: dev } },
    n % 2 === 0 ? { detach: { device: dev } } : { detach: { device: dev, domain } },
    { attach_pasid: { domain, device: dev, pasid } },
    { detach_pasid: { domain, device: dev, pasid } },
    { replace_pasid: { domain, device: dev, pasid } },
    { claim_dma_owner: { device: dev, owner: n % 2 === 0 ? "iommufd" : "vfio", group: n % 3 === 0 } },
    { release_dma_owner: { device: dev, group: n % 3 === 0 } },
    { group_type: { device: dev, type: (["identity", "DMA", "DMA-FQ", "auto"] as const)[n % 4]! } },
    { map: { domain, iova: n % 2 === 0 ? 0x1000 : 0x200000, paddr: 0x80000000, size: n % 4 < 2 ? 0x1000 : 0x200000 } },
    { unmap: { domain, iova: n % 2 === 0 ? 0x1000 : 0x200000, size: 0x1000 } },
    { dma_map: { device: dev, name: n % 2 === 0 ? "h0" : "h1", paddr: 0x90000000, size: 0x1000 } },
    { dma_unmap: { device: dev, name: n % 2 === 0 ? "h0" : "h1" } },
    { device_dma: { device: dev, handle: n % 2 === 0 ? "h0" : "h1", dir: n % 4 < 2 ? "read" : "write" } },
    { advance_time: 20 },
  ];
  return events[kind % events.length]!;
}


export type RawEvent = [number, number, number, number];

/** The machine a set of knobs describes. */
export function randomMachine(o: Knobs): Scenario {
  return scenario(o.x86 ? X86(o) : ARM(o));
}
