/** Shared test helpers for the pgtable layer: TLB/finding recorders and a result unwrapper. */
import { isErr, type KError } from "../../src/lib/errno.ts";
import type { IommuIotlbGather } from "../../src/pgtable/gather.ts";
import type { TablePool } from "../../src/pgtable/pool.ts";
import type { IoPgtableOps, IommuFlushOps, PgtableFindingKind } from "../../src/pgtable/types.ts";

/** Unwrap an allocation result, failing the test with the KError's sentence. */
export function must<T>(x: T | KError): T {
  if (isErr(x)) throw new Error(`unexpected ${x.toString()}`);
  return x;
}

export interface FlushCall {
  op: "flushWalk" | "addPage";
  iova: number;
  size: number;
  granule: number;
}

export interface Finding {
  kind: PgtableFindingKind;
  iova: number;
  message: string;
}

/** Records every TLB callback and finding, in order. */
export class Recorder {
  readonly calls: FlushCall[] = [];
  readonly findings: Finding[] = [];
  readonly tlb: IommuFlushOps;
  readonly onFinding = (kind: PgtableFindingKind, iova: number, message: string): void => {
    this.findings.push({ kind, iova, message });
  };

  constructor() {
    const calls = this.calls;
    this.tlb = {
      tlbFlushAll() {
        throw new Error("io-pgtable must never call tlb_flush_all");
      },
      tlbFlushWalk(iova: number, size: number, granule: number) {
        calls.push({ op: "flushWalk", iova, size, granule });
      },
      tlbAddPage(_gather: IommuIotlbGather, iova: number, granule: number) {
        calls.push({ op: "addPage", iova, size: granule, granule });
      },
    };
  }

  kinds(): PgtableFindingKind[] {
    return this.findings.map((f) => f.kind);
  }

  clear(): void {
    this.calls.length = 0;
    this.findings.length = 0;
  }
}

/** What a bad input must leave exactly as it was: the table accounting and every word of table memory. */
export interface TableState {
  pages: number;
  bytes: number;
  /** A copy of the simulated memory the table's pages live in (every format keeps them in a TablePool). */
  memory: Uint32Array;
}

export function tableState(pt: IoPgtableOps): TableState {
  const pool = (pt as unknown as { pool: TablePool }).pool;
  return { pages: pt.tablePages(), bytes: pt.tableBytes(), memory: pool.words.slice() };
}

/** Index of the first word that differs (or the shorter length if one is a prefix), -1 if identical. */
export function firstDifference(a: Uint32Array, b: Uint32Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Assert-friendly comparison: accounting equal and no word of table memory changed. */
export function tableChange(before: TableState, after: TableState): { pages: number; bytes: number; firstChangedWord: number } {
  return { pages: after.pages - before.pages, bytes: after.bytes - before.bytes, firstChangedWord: firstDifference(before.memory, after.memory) };
}
