/**
 * The groups of a booted machine as a VFIO user sees them: members with
 * what they are and which driver holds them, and whether user space can
 * claim the group now. A claim (iommu_group_claim_dma_owner /
 * iommu_device_claim_dma_owner) fails with EPERM while owner_cnt counts a
 * kernel driver using the DMA API: a member bound to a driver without
 * driver_managed_dma. Unbound members and vfio-pci, pci-stub or pcieport
 * (driver_managed_dma) do not count.
 */
import type { Device } from "../../base/device.ts";
import { devGroup } from "../../iommu/dev-iommu.ts";
import type { IommuGroup } from "../../iommu/group.ts";
import type { Machine } from "../machine.ts";

export interface MemberView {
  name: string;
  /** bb:dd.f on segment 0, else the whole name. */
  address: string;
  description: string | null;
  id: string | null;
  driver: string | null;
  driver_managed_dma: boolean;
}

export type Viability = "viable" | "in-use" | "user-owned";

export interface GroupView {
  id: number;
  viability: Viability;
  /** Members whose bound driver uses the DMA API: each stops a VFIO claim (EPERM). */
  holders: { device: string; driver: string }[];
  devices: MemberView[];
}

export function shortAddress(name: string): string {
  return name.startsWith("0000:") ? name.slice(5) : name;
}

export function memberView(m: Machine, dev: Device): MemberView {
  const spec = m.devices.get(dev.name)?.spec;
  const drv = dev.driver;
  return {
    name: dev.name,
    address: dev.pci !== null ? shortAddress(dev.name) : dev.name,
    description: spec?.description ?? null,
    id: spec?.id ?? null,
    driver: drv?.name ?? null,
    driver_managed_dma: drv?.driverManagedDma ?? false,
  };
}

// @kernel: iommu_group_claim_dma_owner (whether it would succeed: owner_cnt, and who counts in it)
export function groupView(m: Machine, g: IommuGroup): GroupView {
  const devices = g.devices.map((gd) => memberView(m, gd.dev)).sort((a, b) => a.name.localeCompare(b.name));
  const holders = devices.filter((d) => d.driver !== null && !d.driver_managed_dma).map((d) => ({ device: d.name, driver: d.driver! }));
  const viability: Viability = g.owner !== null ? "user-owned" : g.ownerCnt > 0 || holders.length > 0 ? "in-use" : "viable";
  return { id: g.id, viability, holders, devices };
}

/** Every group with members, by number, and the devices in none. */
export function machineGroups(m: Machine): { groups: GroupView[]; ungrouped: MemberView[] } {
  const groups = [...m.k.groups].filter((g) => g.devices.length > 0).sort((a, b) => a.id - b.id).map((g) => groupView(m, g));
  const ungrouped = [...m.devices.values()].filter((r) => devGroup(r.dev) === null).map((r) => memberView(m, r.dev));
  return { groups, ungrouped };
}
