/**
 * Device-tree property readers the IOMMU path uses (drivers/of/base.c):
 * phandle lists with a cells count (`iommus` / `#iommu-cells`), the id
 * translation of `iommu-map` / `iommu-map-mask`, and node availability.
 */
import type { FwnodeHandle, PropCell, PropValue } from "../base/fwnode.ts";
import { kerr, type KError } from "../lib/errno.ts";

/** struct of_phandle_args */
export interface OfPhandleArgs {
  np: FwnodeHandle;
  args: number[];
}

export function ofPropertyReadU32(np: FwnodeHandle, name: string): number | null {
  const v = np.props.get(name);
  return typeof v === "number" ? v : null;
}

function cells(v: PropValue | undefined): PropCell[] | null {
  return Array.isArray(v) ? v : null;
}

// @kernel: of_device_is_available
export function ofDeviceIsAvailable(np: FwnodeHandle | null): boolean {
  if (np === null) return false;
  const status = np.props.get("status");
  return status === undefined || status === "okay" || status === "ok";
}

/**
 * @kernel: of_parse_phandle_with_args
 * Returns entry `index` of a phandle list, null past the end, or an error
 * for a malformed list (a cell that should be a phandle is not, or the
 * target's cells count overruns the property).
 */
export function ofParsePhandleWithArgs(
  np: FwnodeHandle,
  listName: string,
  cellsName: string,
  index: number,
): OfPhandleArgs | null | KError {
  const list = cells(np.props.get(listName));
  if (list === null) return null;
  let i = 0;
  for (let cur = 0; i < list.length; cur++) {
    const target = list[i];
    if (typeof target === "number" || target === undefined) {
      return kerr("EINVAL", `${np.name}: ${listName} entry ${cur} does not start with a phandle`);
    }
    const n = ofPropertyReadU32(target, cellsName);
    if (n === null) return kerr("EINVAL", `${np.name}: ${target.name} has no ${cellsName}`);
    if (i + 1 + n > list.length) {
      return kerr("EINVAL", `${np.name}: ${listName} entry ${cur} needs ${n} cells for ${target.name}`);
    }
    if (cur === index) {
      const args: number[] = [];
      for (let j = 0; j < n; j++) {
        const c = list[i + 1 + j];
        if (typeof c !== "number") return kerr("EINVAL", `${np.name}: ${listName} entry ${cur} has a phandle where a cell belongs`);
        args.push(c);
      }
      return { np: target, args };
    }
    i += 1 + n;
  }
  return null;
}

/** Result of `of_map_id`: the target node (null when translation was bypassed) and the output id. */
export interface OfMapResult {
  target: FwnodeHandle | null;
  idOut: number;
}

/**
 * @kernel: of_map_id
 * Translates an input id (a PCI requester ID) through `map` entries of
 * (id-base, phandle, out-base, length) after applying `map-mask`. No map
 * property: ENODEV. A map without a matching entry bypasses translation
 * (target null, id unchanged), as the kernel does with a pr_info.
 */
export function ofMapId(np: FwnodeHandle, id: number, mapName: string, maskName: string): OfMapResult | KError {
  const map = cells(np.props.get(mapName));
  if (map === null) return kerr("ENODEV", `${np.name} has no ${mapName}`);
  if (map.length % 4 !== 0) return kerr("EINVAL", `${np.name}: bad ${mapName} length ${map.length} (entries are 4 cells)`);
  const mask = ofPropertyReadU32(np, maskName) ?? 0xffffffff;
  const masked = (id & mask) >>> 0;
  for (let i = 0; i < map.length; i += 4) {
    const idBase = map[i];
    const phandle = map[i + 1];
    const outBase = map[i + 2];
    const len = map[i + 3];
    if (typeof idBase !== "number" || typeof outBase !== "number" || typeof len !== "number" || typeof phandle !== "object") {
      return kerr("EINVAL", `${np.name}: ${mapName} entry ${i / 4} is not (id-base, phandle, out-base, length)`);
    }
    if ((idBase & ~mask) !== 0) {
      return kerr("EFAULT", `${np.name}: invalid ${mapName} translation: ${maskName} 0x${mask.toString(16)} ignores id-base 0x${idBase.toString(16)}`);
    }
    if (masked < idBase || masked >= idBase + len) continue;
    return { target: phandle, idOut: masked - idBase + outBase };
  }
  return { target: null, idOut: id };
}
