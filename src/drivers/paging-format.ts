/**
 * An instance's page-table format: what the paging domains finalised for
 * that instance get (page sizes, aperture, io-pgtable configuration),
 * computed once per instance and shared by its domains.
 */
import type { IommuDomainGeometry } from "../iommu/domain.ts";
import type { IommuDevice } from "../iommu/iommu-device.ts";
import { ioPgtableTopFootprint, pgsizesOf, type IoPgtableCfgInit, type IoPgtableFmt } from "../pgtable/index.ts";

/**
 * One instance's finalised page-table format: what a paging domain
 * allocated for that instance gets. Computed once per instance and shared
 * by its domains (each still gets its own tables).
 */
export interface PagingFormat {
  readonly iommu: IommuDevice;
  readonly fmt: IoPgtableFmt;
  /** The table the driver says it built (e.g. AMD's "amd-v2"), when it differs from the modelled format. */
  readonly label: string;
  /** The restricted configuration: page sizes, ias, oas. */
  readonly cfg: Readonly<Omit<IoPgtableCfgInit, "tlb" | "onFinding">>;
  readonly pgsizes: readonly number[];
  readonly geometry: IommuDomainGeometry;
}

export function pagingFormat(
  iommu: IommuDevice,
  fmt: IoPgtableFmt,
  cfg: Omit<IoPgtableCfgInit, "tlb" | "onFinding">,
  aperture: { start: number; end: number },
  label: string = fmt,
): PagingFormat {
  return Object.freeze({
    iommu,
    fmt,
    label,
    cfg: Object.freeze({ ...cfg }),
    // Not frozen: V8 (Node 20) compiles an indexed load from a frozen array to a generic IC call,
    // about 10 ns, and the core reads pgsizes[0] on every map and unmap. `readonly` keeps it unchanged.
    pgsizes: pgsizesOf(cfg.pgsizeBitmap),
    geometry: Object.freeze({ apertureStart: aperture.start, apertureEnd: aperture.end, forceAperture: true }),
  });
}

/** The top table a format's domains count before the model builds it, computed once per format. */
const topFootprints = new WeakMap<PagingFormat, ReturnType<typeof ioPgtableTopFootprint>>();
export function topFootprint(format: PagingFormat): ReturnType<typeof ioPgtableTopFootprint> {
  let f = topFootprints.get(format);
  if (f === undefined) {
    f = ioPgtableTopFootprint(format.fmt, format.cfg);
    topFootprints.set(format, f);
  }
  return f;
}
