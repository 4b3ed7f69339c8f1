/** Shared test helpers for the pgtable layer: TLB/finding recorders and a result unwrapper. */
import { isErr, type KError } from "../../src/lib/errno.ts";
import type { IommuIotlbGather } from "../../src/pgtable/gather.ts";
import type { IommuFlushOps, PgtableFindingKind } from "../../src/pgtable/types.ts";

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
