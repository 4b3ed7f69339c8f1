/**
 * Boot-time configuration of the core: the kernel command line options it
 * honours (cmdline.ts parses them: iommu.passthrough=, iommu.strict=, x86's
 * iommu=pt/nopt, and the drivers' deprecated strict options) and
 * iommu_subsys_init, which settles the default domain type and registers
 * the bus notifier on every IOMMU bus.
 */
import { busRegisterNotifier } from "../base/bus.ts";
import { kerr, type KError } from "../lib/errno.ts";
import { parseCmdline, type Arch, type CmdlineEffect, type CmdlineNote } from "./cmdline.ts";
import { IOMMU_DOMAIN_DMA, IOMMU_DOMAIN_DMA_FQ, IOMMU_DOMAIN_IDENTITY } from "./domain.ts";
import { IOMMU_CMD_LINE_DMA_API, IOMMU_CMD_LINE_STRICT, type IommuCore } from "./iommu-core.ts";
import { iommuBusNotifier } from "./probe.ts";

/**
 * Kconfig choices that set the defaults the command line may override.
 * CONFIG_IOMMU_DEFAULT_PASSTHROUGH is taken as off (the distributions'
 * choice); `iommu.passthrough=1` gives the same default domain type.
 */
export interface IommuKconfig {
  /** CONFIG_IOMMU_DEFAULT_DMA_STRICT (lazy is the default on x86 and s390) */
  defaultDmaStrict: boolean;
}

export function kconfigFor(arch: Arch): IommuKconfig {
  return { defaultDmaStrict: arch !== "x86" };
}

// @kernel: iommu_set_default_passthrough
function setDefaultPassthrough(k: IommuCore, cmdLine: boolean): void {
  if (cmdLine) k.cmdLine |= IOMMU_CMD_LINE_DMA_API;
  k.defDomainType = IOMMU_DOMAIN_IDENTITY;
}

// @kernel: iommu_set_default_translated
function setDefaultTranslated(k: IommuCore, cmdLine: boolean): void {
  if (cmdLine) k.cmdLine |= IOMMU_CMD_LINE_DMA_API;
  k.defDomainType = IOMMU_DOMAIN_DMA;
}

// @kernel: iommu_set_dma_strict
function setDmaStrict(k: IommuCore): void {
  k.dmaStrict = true;
  if (k.defDomainType === IOMMU_DOMAIN_DMA_FQ) k.defDomainType = IOMMU_DOMAIN_DMA;
}

function apply(k: IommuCore, e: CmdlineEffect): void {
  if (e.kind === "default-domain") {
    if (e.passthrough) setDefaultPassthrough(k, true);
    else setDefaultTranslated(k, true);
  } else if (e.kind === "dma-strict") {
    k.dmaStrict = e.strict;
    k.cmdLine |= IOMMU_CMD_LINE_STRICT;
  } else {
    setDmaStrict(k);
  }
}

/**
 * Applies the IOMMU options of a kernel command line, before
 * iommu_subsys_init: the early_param handlers in command-line order, then
 * the drivers' __setup handlers. Returns what each option did (cmdline.ts
 * says which the model honours), or EINVAL for a malformed value, which
 * scenario validation reports before a machine is built.
 */
export function iommuParseCmdline(k: IommuCore, kc: IommuKconfig, cmdline: string, arch: Arch): CmdlineNote[] | KError {
  k.dmaStrict = kc.defaultDmaStrict;
  const p = parseCmdline(cmdline, arch);
  if (p.errors.length > 0) return kerr("EINVAL", p.errors[0]!);
  for (const e of p.early) apply(k, e);
  for (const e of p.setup) apply(k, e);
  return p.notes;
}

// @kernel: iommu_subsys_init
export function iommuSubsysInit(k: IommuCore): void {
  if ((k.cmdLine & IOMMU_CMD_LINE_DMA_API) === 0) setDefaultTranslated(k, false);
  if (k.defDomainType !== IOMMU_DOMAIN_IDENTITY && !k.dmaStrict) k.defDomainType = IOMMU_DOMAIN_DMA_FQ;
  for (const bus of k.iommuBuses) busRegisterNotifier(bus, iommuBusNotifier(k));
  // The dma_ownership design's group notifier (VFIO's, before v5.19), fed by iommu_bus_notifier in the kernel.
  const gnb = k.strategy.dmaOwnership.groupNotifier(k);
  if (gnb !== null) for (const bus of k.iommuBuses) busRegisterNotifier(bus, gnb);
}
