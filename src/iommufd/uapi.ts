/**
 * include/uapi/linux/iommufd.h and drivers/iommu/iommufd/iommufd_test.h:
 * command numbers, flags, and the structs as plain objects with the uAPI's
 * field names. u64 fields are JS numbers: exact up to 2^53, with
 * U64_MAX (2^64 − 1, which a double rounds to 2^64) standing for every
 * value at or above it. Each command's layout (`CMD_LAYOUTS`) gives
 * sizeof, the minimum size and each field's offset, so the framing in
 * main.ts can treat a short `size` the way copy_struct_from_user does.
 */

export const IOMMUFD_TYPE = 0x3b; // ';'
export const IOMMUFD_CMD_BASE = 0x80;

export const IOMMUFD_CMD_DESTROY = 0x80;
export const IOMMUFD_CMD_IOAS_ALLOC = 0x81;
export const IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82;
export const IOMMUFD_CMD_IOAS_COPY = 0x83;
export const IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84;
export const IOMMUFD_CMD_IOAS_MAP = 0x85;
export const IOMMUFD_CMD_IOAS_UNMAP = 0x86;
export const IOMMUFD_CMD_OPTION = 0x87;
export const IOMMUFD_CMD_VFIO_IOAS = 0x88;
export const IOMMUFD_CMD_HWPT_ALLOC = 0x89;
export const IOMMUFD_CMD_GET_HW_INFO = 0x8a;
export const IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b;
export const IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c;
export const IOMMUFD_CMD_HWPT_INVALIDATE = 0x8d;
export const IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e;
export const IOMMUFD_CMD_IOAS_MAP_FILE = 0x8f;
export const IOMMUFD_CMD_VIOMMU_ALLOC = 0x90;
export const IOMMUFD_CMD_VDEVICE_ALLOC = 0x91;
export const IOMMUFD_CMD_IOAS_CHANGE_PROCESS = 0x92;
export const IOMMUFD_CMD_VEVENTQ_ALLOC = 0x93;
export const IOMMUFD_CMD_HW_QUEUE_ALLOC = 0x94;
/** IOMMU_TEST_CMD: _IO(';', IOMMUFD_CMD_BASE + 32), CONFIG_IOMMUFD_TEST only. */
export const IOMMUFD_CMD_TEST = IOMMUFD_CMD_BASE + 32;

/** 2^64 − 1 as a double rounds it (to 2^64); every u64 at or above it reads as U64_MAX. */
export const U64_MAX = 2 ** 64;
/** ULONG_MAX on a 64-bit kernel. */
export const ULONG_MAX = U64_MAX;
export const SIZE_MAX = U64_MAX;
export const UINT32_MAX = 0xffff_ffff;

export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;

export const IOMMU_OPTION_RLIMIT_MODE = 0;
export const IOMMU_OPTION_HUGE_PAGES = 1;
export const IOMMU_OPTION_OP_SET = 0;
export const IOMMU_OPTION_OP_GET = 1;

export const IOMMU_VFIO_IOAS_GET = 0;
export const IOMMU_VFIO_IOAS_SET = 1;
export const IOMMU_VFIO_IOAS_CLEAR = 2;

export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;
export const IOMMU_HWPT_DATA_NONE = 0;
export const IOMMU_HWPT_DATA_SELFTEST = 0xdead;

export const IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0;
export const IOMMU_HW_INFO_TYPE_SELFTEST = 0xfeedbeef;
export const IOMMU_HW_INFO_SELFTEST_REGVAL = 0xdeadbeef;
export const IOMMU_VIOMMU_TYPE_DEFAULT = 0;
export const IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
export const IOMMU_VEVENTQ_TYPE_DEFAULT = 0;
export const IOMMU_VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;
export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;
export const IOMMU_HW_QUEUE_TYPE_DEFAULT = 0;
export const IOMMU_HW_QUEUE_TYPE_SELFTEST = 0xdeadbeef;
export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
export const IOMMUFD_PAGE_RESP_INVALID = 1;
export const IOMMU_PGFAULT_PERM_READ = 1 << 0;
export const IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
/** iommufd_test.h: the mock nested domain's IOTLB and the mock device's cache. */
export const IOMMU_TEST_IOTLB_DEFAULT = 0xbadbeef;
export const IOMMU_TEST_DEV_CACHE_DEFAULT = 0xbaddad;
export const IOMMU_TEST_INVALIDATE_FLAG_ALL = 1 << 0;
export const MOCK_NESTED_DOMAIN_IOTLB_ID_MAX = 3;
export const MOCK_NESTED_DOMAIN_IOTLB_NUM = 4;
export const MOCK_DEV_CACHE_ID_MAX = 3;
export const MOCK_DEV_CACHE_NUM = 4;
export const IOMMU_TEST_HW_QUEUE_MAX = 2;

/** The object types of iommufd_private.h (enum iommufd_object_type). */
export type IommufdObjectType =
  | "IOAS"
  | "HWPT_PAGING"
  | "HWPT_NESTED"
  | "DEVICE"
  | "ACCESS"
  | "FAULT"
  | "VIOMMU"
  | "VDEVICE"
  | "VEVENTQ"
  | "HW_QUEUE"
  | "SELFTEST";

// ---------------------------------------------------------------- structs

/** Extra bytes a caller passes beyond the kernel's sizeof (the E2BIG check reads them). */
export interface UserTail {
  /** Bytes after the kernel's sizeof, up to `size`; absent means zero. */
  __tail?: Uint8Array;
}

export interface IommuDestroy extends UserTail {
  size: number;
  id: number;
}
export interface IommuIoasAlloc extends UserTail {
  size: number;
  flags: number;
  out_ioas_id: number;
}
export interface IommuIovaRange {
  start: number;
  last: number;
}
export interface IommuIoasIovaRanges extends UserTail {
  size: number;
  ioas_id: number;
  num_iovas: number;
  __reserved: number;
  /** The user array (a NULL pointer is null); the kernel writes into it. */
  allowed_iovas: IommuIovaRange[] | null;
  out_iova_alignment: number;
}
export interface IommuIoasAllowIovas extends UserTail {
  size: number;
  ioas_id: number;
  num_iovas: number;
  __reserved: number;
  allowed_iovas: IommuIovaRange[] | null;
}
export interface IommuIoasMap extends UserTail {
  size: number;
  flags: number;
  ioas_id: number;
  __reserved: number;
  user_va: number;
  length: number;
  iova: number;
}
export interface IommuIoasMapFile extends UserTail {
  size: number;
  flags: number;
  ioas_id: number;
  fd: number;
  start: number;
  length: number;
  iova: number;
}
export interface IommuIoasCopy extends UserTail {
  size: number;
  flags: number;
  dst_ioas_id: number;
  src_ioas_id: number;
  length: number;
  dst_iova: number;
  src_iova: number;
}
export interface IommuIoasUnmap extends UserTail {
  size: number;
  ioas_id: number;
  iova: number;
  length: number;
}
export interface IommuOption extends UserTail {
  size: number;
  option_id: number;
  op: number;
  __reserved: number;
  object_id: number;
  val64: number;
}
export interface IommuVfioIoas extends UserTail {
  size: number;
  ioas_id: number;
  op: number;
  __reserved: number;
}
export interface IommuHwptAlloc extends UserTail {
  size: number;
  flags: number;
  dev_id: number;
  pt_id: number;
  out_hwpt_id: number;
  __reserved: number;
  data_type: number;
  data_len: number;
  /** The user data (null for a NULL pointer). */
  data_uptr: Uint8Array | null;
  fault_id: number;
  __reserved2: number;
}
export interface IommuHwInfo extends UserTail {
  size: number;
  flags: number;
  dev_id: number;
  data_len: number;
  data_uptr: Uint8Array | null;
  out_data_type: number;
  out_max_pasid_log2: number;
  __reserved: number;
  out_capabilities: number;
}
export interface IommuHwptInvalidate extends UserTail {
  size: number;
  hwpt_id: number;
  data_uptr: Uint8Array | null;
  data_type: number;
  entry_len: number;
  entry_num: number;
  __reserved: number;
}
export interface IommuViommuAlloc extends UserTail {
  size: number;
  flags: number;
  type: number;
  dev_id: number;
  hwpt_id: number;
  out_viommu_id: number;
  data_len: number;
  __reserved: number;
  data_uptr: Uint8Array | null;
}
export interface IommuVdeviceAlloc extends UserTail {
  size: number;
  viommu_id: number;
  dev_id: number;
  out_vdevice_id: number;
  virt_id: number;
}
export interface IommuIoasChangeProcess extends UserTail {
  size: number;
  __reserved: number;
}
export interface IommuFaultAlloc extends UserTail {
  size: number;
  flags: number;
  out_fault_id: number;
  out_fault_fd: number;
}
export interface IommuVeventqAlloc extends UserTail {
  size: number;
  flags: number;
  viommu_id: number;
  type: number;
  veventq_depth: number;
  out_veventq_id: number;
  out_veventq_fd: number;
  __reserved: number;
}
export interface IommuHwQueueAlloc extends UserTail {
  size: number;
  flags: number;
  viommu_id: number;
  type: number;
  index: number;
  out_hw_queue_id: number;
  nesting_parent_iova: number;
  length: number;
}
/** A record read from a fault fd (struct iommu_hwpt_pgfault). */
export interface IommuHwptPgfault {
  flags: number;
  dev_id: number;
  pasid: number;
  grpid: number;
  perm: number;
  addr: number;
  length: number;
  cookie: number;
}
/** A response written to a fault fd (struct iommu_hwpt_page_response). */
export interface IommuHwptPageResponse {
  cookie: number;
  code: number;
}

/** One field of a struct: its name, byte offset and width. */
export type FieldLayout = readonly [name: string, offset: number, width: number];

export interface CmdLayout {
  readonly name: string;
  readonly sizeof: number;
  /** offsetofend of the last field the kernel requires. */
  readonly minSize: number;
  readonly fields: readonly FieldLayout[];
}

/** The uAPI structs' layouts (x86-64), by command number. */
export const CMD_LAYOUTS: ReadonlyMap<number, CmdLayout> = new Map<number, CmdLayout>([
  [IOMMUFD_CMD_DESTROY, { name: "iommu_destroy", sizeof: 8, minSize: 8, fields: [["id", 4, 4]] }],
  [IOMMUFD_CMD_IOAS_ALLOC, { name: "iommu_ioas_alloc", sizeof: 12, minSize: 12, fields: [["flags", 4, 4], ["out_ioas_id", 8, 4]] }],
  [IOMMUFD_CMD_IOAS_ALLOW_IOVAS, { name: "iommu_ioas_allow_iovas", sizeof: 24, minSize: 24, fields: [["ioas_id", 4, 4], ["num_iovas", 8, 4], ["__reserved", 12, 4], ["allowed_iovas", 16, 8]] }],
  [IOMMUFD_CMD_IOAS_COPY, { name: "iommu_ioas_copy", sizeof: 40, minSize: 40, fields: [["flags", 4, 4], ["dst_ioas_id", 8, 4], ["src_ioas_id", 12, 4], ["length", 16, 8], ["dst_iova", 24, 8], ["src_iova", 32, 8]] }],
  [IOMMUFD_CMD_IOAS_IOVA_RANGES, { name: "iommu_ioas_iova_ranges", sizeof: 32, minSize: 32, fields: [["ioas_id", 4, 4], ["num_iovas", 8, 4], ["__reserved", 12, 4], ["allowed_iovas", 16, 8], ["out_iova_alignment", 24, 8]] }],
  [IOMMUFD_CMD_IOAS_MAP, { name: "iommu_ioas_map", sizeof: 40, minSize: 40, fields: [["flags", 4, 4], ["ioas_id", 8, 4], ["__reserved", 12, 4], ["user_va", 16, 8], ["length", 24, 8], ["iova", 32, 8]] }],
  [IOMMUFD_CMD_IOAS_UNMAP, { name: "iommu_ioas_unmap", sizeof: 24, minSize: 24, fields: [["ioas_id", 4, 4], ["iova", 8, 8], ["length", 16, 8]] }],
  [IOMMUFD_CMD_OPTION, { name: "iommu_option", sizeof: 24, minSize: 24, fields: [["option_id", 4, 4], ["op", 8, 2], ["__reserved", 10, 2], ["object_id", 12, 4], ["val64", 16, 8]] }],
  [IOMMUFD_CMD_VFIO_IOAS, { name: "iommu_vfio_ioas", sizeof: 12, minSize: 12, fields: [["ioas_id", 4, 4], ["op", 8, 2], ["__reserved", 10, 2]] }],
  [IOMMUFD_CMD_HWPT_ALLOC, { name: "iommu_hwpt_alloc", sizeof: 48, minSize: 24, fields: [["flags", 4, 4], ["dev_id", 8, 4], ["pt_id", 12, 4], ["out_hwpt_id", 16, 4], ["__reserved", 20, 4], ["data_type", 24, 4], ["data_len", 28, 4], ["data_uptr", 32, 8], ["fault_id", 40, 4], ["__reserved2", 44, 4]] }],
  [IOMMUFD_CMD_GET_HW_INFO, { name: "iommu_hw_info", sizeof: 40, minSize: 32, fields: [["flags", 4, 4], ["dev_id", 8, 4], ["data_len", 12, 4], ["data_uptr", 16, 8], ["out_data_type", 24, 4], ["out_max_pasid_log2", 28, 1], ["__reserved", 29, 3], ["out_capabilities", 32, 8]] }],
  [IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING, { name: "iommu_hwpt_set_dirty_tracking", sizeof: 16, minSize: 16, fields: [["flags", 4, 4], ["hwpt_id", 8, 4], ["__reserved", 12, 4]] }],
  [IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP, { name: "iommu_hwpt_get_dirty_bitmap", sizeof: 40, minSize: 40, fields: [["hwpt_id", 4, 4], ["flags", 8, 4], ["__reserved", 12, 4], ["iova", 16, 8], ["length", 24, 8], ["page_size", 32, 8], ["data", 40, 8]] }],
  [IOMMUFD_CMD_HWPT_INVALIDATE, { name: "iommu_hwpt_invalidate", sizeof: 32, minSize: 32, fields: [["hwpt_id", 4, 4], ["data_uptr", 8, 8], ["data_type", 16, 4], ["entry_len", 20, 4], ["entry_num", 24, 4], ["__reserved", 28, 4]] }],
  [IOMMUFD_CMD_IOAS_MAP_FILE, { name: "iommu_ioas_map_file", sizeof: 40, minSize: 40, fields: [["flags", 4, 4], ["ioas_id", 8, 4], ["fd", 12, 4], ["start", 16, 8], ["length", 24, 8], ["iova", 32, 8]] }],
  [IOMMUFD_CMD_VIOMMU_ALLOC, { name: "iommu_viommu_alloc", sizeof: 40, minSize: 24, fields: [["flags", 4, 4], ["type", 8, 4], ["dev_id", 12, 4], ["hwpt_id", 16, 4], ["out_viommu_id", 20, 4], ["data_len", 24, 4], ["__reserved", 28, 4], ["data_uptr", 32, 8]] }],
  [IOMMUFD_CMD_VDEVICE_ALLOC, { name: "iommu_vdevice_alloc", sizeof: 24, minSize: 24, fields: [["viommu_id", 4, 4], ["dev_id", 8, 4], ["out_vdevice_id", 12, 4], ["virt_id", 16, 8]] }],
  [IOMMUFD_CMD_IOAS_CHANGE_PROCESS, { name: "iommu_ioas_change_process", sizeof: 8, minSize: 8, fields: [["__reserved", 4, 4]] }],
  [IOMMUFD_CMD_FAULT_QUEUE_ALLOC, { name: "iommu_fault_alloc", sizeof: 16, minSize: 16, fields: [["flags", 4, 4], ["out_fault_id", 8, 4], ["out_fault_fd", 12, 4]] }],
  [IOMMUFD_CMD_VEVENTQ_ALLOC, { name: "iommu_veventq_alloc", sizeof: 32, minSize: 28, fields: [["flags", 4, 4], ["viommu_id", 8, 4], ["type", 12, 4], ["veventq_depth", 16, 4], ["out_veventq_id", 20, 4], ["out_veventq_fd", 24, 4], ["__reserved", 28, 4]] }],
  [IOMMUFD_CMD_HW_QUEUE_ALLOC, { name: "iommu_hw_queue_alloc", sizeof: 40, minSize: 40, fields: [["flags", 4, 4], ["viommu_id", 8, 4], ["type", 12, 4], ["index", 16, 4], ["out_hw_queue_id", 20, 4], ["nesting_parent_iova", 24, 8], ["length", 32, 8]] }],
]);
