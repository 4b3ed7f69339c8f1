/**
 * Firmware node handles (struct fwnode_handle): a device-tree node, an ACPI
 * companion or a software node (drivers/base/swnode.c). Properties are kept
 * untyped, as firmware keeps them; the firmware/ layer reads them the way
 * the kernel's of_* and fwnode_property_* helpers do. Identity matters:
 * `iommu_from_fwnode` compares handles by pointer, so do we.
 */

export type FwnodeKind = "of" | "acpi" | "swnode";

/** A property cell: a number, or a phandle reference to another node. */
export type PropCell = number | FwnodeHandle;
export type PropValue = boolean | number | string | PropCell[];

export class FwnodeHandle {
  readonly props = new Map<string, PropValue>();

  constructor(
    /** The node's path or name, e.g. `/soc/iommu@2b400000`. */
    readonly name: string,
    readonly kind: FwnodeKind,
  ) {}

  toString(): string {
    return this.name;
  }
}

// @kernel: fwnode_create_software_node
export function fwnodeCreateSoftwareNode(name: string): FwnodeHandle {
  return new FwnodeHandle(name, "swnode");
}
