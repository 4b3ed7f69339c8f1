/**
 * IORT ID translation (drivers/acpi/arm64/iort.c): an input ID (a PCI
 * requester ID at a root complex) followed through the nodes' ID mappings
 * until it reaches an SMMU, the output ID there being the StreamID. Used
 * by `import acpi --lspci` to give each PCI function of the dump (and each
 * of its DMA aliases) its SMMU and StreamID the way the kernel does.
 * The walk stops at the first SMMU node (IORT_IOMMU_TYPE), so an SMMU's
 * own ID mappings (its MSIs to an ITS group, iort_get_id_mapping_index's
 * entry) never change a StreamID: they are not followed here.
 */
import type { Iort, IortMapping, IortNode } from "./acpi-iort.ts";

/** Where an ID lands: the SMMU node and the StreamID, or null when no SMMU (an ITS, or no mapping covers it). */
export interface IortMapped {
  smmu: IortNode | null;
  id: number;
}

/**
 * One mapping applied to `id`: the output, "again" when the ID is the last
 * of the range (another range starting there supersedes it: the off-by-one
 * firmware), or null when it does not match.
 */
// @kernel: iort_id_map
function idMap(m: IortMapping, type: IortNode["type"], id: number, checkOverlap: boolean): { out: number; again: boolean } | null {
  if (m.single) {
    // A single mapping is allowed on named components and root complexes only; elsewhere a FW_BUG, skipped.
    if (type === "named-component" || type === "root-complex") return { out: m.outputBase, again: false };
    return null;
  }
  if (id < m.inputBase || id > m.inputBase + m.idCount) return null;
  if (checkOverlap && id !== m.inputBase) return null;
  const out = m.outputBase + (id - m.inputBase);
  return { out, again: m.idCount > 0 && id === m.inputBase + m.idCount };
}

/** `id` at `node` followed through the ID mappings to an SMMU (IORT_IOMMU_TYPE). */
// @kernel: iort_node_map_id
export function iortNodeMapId(t: Iort, start: IortNode, id: number): IortMapped {
  let node: IortNode | undefined = start;
  let cur = id;
  const seen = new Set<number>();
  while (node !== undefined) {
    if (node.type === "smmu" || node.type === "smmu-v3") return { smmu: node, id: cur };
    // A cycle is refused by parseIort; the guard keeps a walk finite whatever the table.
    if (seen.has(node.offset) || node.mappings.length === 0) break;
    seen.add(node.offset);
    let found: { out: number; ref: number } | null = null;
    let againRef: number | null = null;
    let againOut = 0;
    for (let i = 0; i < node.mappings.length; i++) {
      const m = node.mappings[i]!;
      const r = idMap(m, node.type, cur, againRef !== null);
      if (r === null) continue;
      if (r.again) {
        againRef = m.outputRef;
        againOut = r.out;
        continue;
      }
      found = { out: r.out, ref: m.outputRef };
      break;
    }
    if (found === null && againRef === null) break;
    const next: { out: number; ref: number } = found ?? { out: againOut, ref: againRef! };
    cur = next.out;
    node = t.nodes.get(next.ref);
  }
  // fail_map: no SMMU for the ID.
  return { smmu: null, id };
}
