/**
 * The groups of two runs of a machine compared, device names mapped back
 * where a what-if renamed them: which groups split, merged or changed.
 */
import type { GroupView } from "./group-view.ts";

export interface GroupChange {
  before: { id: number; devices: string[] };
  after: { id: number; devices: string[] }[];
}

export interface GroupDiff {
  changed: GroupChange[];
  before_count: number;
  after_count: number;
}

export function compareGroups(before: readonly GroupView[], after: readonly GroupView[], renames: ReadonlyMap<string, string>): GroupDiff {
  const back = new Map([...renames].map(([a, b]) => [b, a]));
  const orig = (n: string) => back.get(n) ?? n;
  const afterOf = new Map<string, GroupView>();
  for (const g of after) for (const d of g.devices) afterOf.set(orig(d.name), g);
  const changed: GroupChange[] = [];
  for (const b of before) {
    const names = b.devices.map((d) => d.name);
    const targets = [...new Set(names.map((n) => afterOf.get(n)).filter((g): g is GroupView => g !== undefined))];
    const same = targets.length === 1 && targets[0]!.devices.length === names.length;
    if (same) continue;
    changed.push({ before: { id: b.id, devices: names }, after: targets.map((g) => ({ id: g.id, devices: g.devices.map((d) => orig(d.name)) })) });
  }
  return { changed, before_count: before.length, after_count: after.length };
}
