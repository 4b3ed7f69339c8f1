/**
 * The PCI topology an lspci dump gives the ACPI importer (`import acpi DIR
 * --lspci FILE`): ACPI tables name requester IDs and paths through bridges,
 * config space has the functions. Here a DMAR device scope's path is
 * followed through the bridges' secondary buses to the function it names,
 * and an IVRS requester ID is matched to the function at that bus:devfn.
 */
import type { ImportedFunction, LspciPci } from "./lspci-scenario.ts";

const key = (seg: number, bus: number, dev: number, fn: number) => `${seg}:${bus}:${dev}:${fn}`;

export class PciTopology {
  private readonly at = new Map<string, ImportedFunction>();
  private readonly byName = new Map<string, ImportedFunction>();

  constructor(readonly imp: LspciPci) {
    for (const x of imp.functions) {
      this.at.set(key(x.src.segment, x.src.bus, x.src.dev, x.src.fn), x);
      this.byName.set(x.name, x);
    }
  }

  get file(): string {
    return this.imp.file;
  }

  get functions(): readonly ImportedFunction[] {
    return this.imp.functions;
  }

  /** The function at segment:bus:dev.fn, if the dump has one. */
  find(seg: number, bus: number, dev: number, fn: number): ImportedFunction | null {
    return this.at.get(key(seg, bus, dev, fn)) ?? null;
  }

  /** The function of that name (SSSS:BB:DD.F), if the dump has one. */
  named(name: string): ImportedFunction | null {
    return this.byName.get(name) ?? null;
  }

  /** The functions below a bridge: on its segment, on a bus within its secondary..subordinate range. */
  // @kernel: is_downstream_to_pci_bridge
  downstream(bridge: ImportedFunction): ImportedFunction[] {
    const b = bridge.src.busLine;
    if (b === null) return [];
    return this.imp.functions.filter((x) => x.src.segment === bridge.src.segment && x.src.bus >= b.secondary && x.src.bus <= b.subordinate);
  }

  /** A function's 16-bit requester ID (bus << 8 | devfn). */
  rid(x: ImportedFunction): number {
    return (x.src.bus << 8) | (x.src.dev << 3) | x.src.fn;
  }

  /** A bridge's subordinate bus: it has one if lspci printed a bus range. */
  isBridge(x: ImportedFunction): boolean {
    return x.src.busLine !== null;
  }

  /**
   * The function a DMAR device scope names: `path[0]` on root bus `bus`,
   * each further (dev, fn) on the secondary bus of the bridge before it.
   * A one-hop path that matches no root-bus function still matches the
   * function at that very bus:dev.fn (the kernel's workaround for broken
   * RMRR entries; `fwBug` says so). Null when the dump has no such function.
   */
  // @kernel: dmar_match_pci_path
  dmarPath(seg: number, bus: number, path: readonly (readonly [number, number])[]): { fn: ImportedFunction; fwBug: boolean } | null {
    let cur: ImportedFunction | null = null;
    let b = bus;
    for (const [dev, fn] of path) {
      const x = this.find(seg, b, dev, fn);
      if (x === null || x.parent !== (cur === null ? null : cur.name)) {
        cur = null;
        break;
      }
      cur = x;
      if (x.src.busLine === null) {
        b = -1; // a further hop has no bus to go to
        continue;
      }
      b = x.src.busLine.secondary;
    }
    if (cur !== null) return { fn: cur, fwBug: false };
    if (path.length !== 1) return null;
    const x = this.find(seg, bus, path[0]![0], path[0]![1]);
    return x === null ? null : { fn: x, fwBug: true };
  }
}
