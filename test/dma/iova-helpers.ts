/** Shared set-up for the IOVA tests (not a test file itself). */
import { expect } from "vitest";
import { initIovaDomain, type IovaDomain, type IovaDomainOptions, type IovaNode } from "../../src/dma/iova.ts";
import { checkIovaDomain } from "../../src/dma/iova/check.ts";
import { isErr, type KError } from "../../src/lib/errno.ts";

/** The last pfn below 4 GiB with 4 KiB granules (dma_mask 2^32 - 1). */
export const LIMIT_32 = 0xf_ffff;

export function domain(startPfn = 1, opts: IovaDomainOptions = {}, granule = 4096): IovaDomain {
  const d = initIovaDomain(granule, startPfn, opts);
  if (isErr(d)) throw new Error(String(d));
  return d;
}

export function ok(x: IovaNode | KError): IovaNode {
  if (isErr(x)) throw new Error(`unexpected ${String(x)}`);
  return x;
}

/** [pfn_lo, pfn_hi] of a range. */
export function span(d: IovaDomain, x: IovaNode | KError): [number, number] {
  const n = ok(x);
  return [d.pfnLo(n), d.pfnHi(n)];
}

export function expectConsistent(d: IovaDomain): void {
  expect(checkIovaDomain(d)).toEqual([]);
}
