/**
 * The mock driver's per-device state that the nested and vIOMMU tests see
 * (struct mock_dev in selftest.c): four "device cache" slots, set to
 * IOMMU_TEST_DEV_CACHE_DEFAULT when the device is created, and the vIOMMU
 * and virtual id the device's nested attachment records.
 */
import type { Device } from "../base/device.ts";
import { IOMMU_TEST_DEV_CACHE_DEFAULT, MOCK_DEV_CACHE_NUM } from "./uapi.ts";

export interface MockDevState {
  readonly cache: Uint32Array;
  /** mdev->viommu: the vIOMMU of the nested domain the device is attached to (null when none). */
  viommu: object | null;
  /** mdev->vdev_id */
  vdevId: number;
}

const states = new WeakMap<Device, MockDevState>();

/** The state mock_dev_create sets up, made on first use. */
export function mockDev(dev: Device): MockDevState {
  let s = states.get(dev);
  if (s === undefined) {
    s = { cache: new Uint32Array(MOCK_DEV_CACHE_NUM).fill(IOMMU_TEST_DEV_CACHE_DEFAULT), viommu: null, vdevId: 0 };
    states.set(dev, s);
  }
  return s;
}
