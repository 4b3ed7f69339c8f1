/**
 * Boot-time configuration of the core: the kernel command line options it
 * parses (iommu.passthrough=, iommu.strict=, and x86's iommu=pt) and
 * iommu_subsys_init, which settles the default domain type and registers
 * the bus notifier on every IOMMU bus.
 */
import { busRegisterNotifier } from "../base/bus.ts";
import { kerr, type KError } from "../lib/errno.ts";
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

export function kconfigFor(arch: "x86" | "arm64"): IommuKconfig {
  return { defaultDmaStrict: arch !== "x86" };
}

// @kernel: kstrtobool
function kstrtobool(s: string): boolean | null {
  const c = s[0]?.toLowerCase();
  if (c === "1" || c === "y" || s.toLowerCase() === "on") return true;
  if (c === "0" || c === "n" || s.toLowerCase() === "off") return false;
  return null;
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

/**
 * Applies the IOMMU options of a kernel command line, before
 * iommu_subsys_init. Options the model does not know are ignored, as the
 * kernel ignores parameters of code it does not have; malformed values of
 * known options are errors.
 */
export function iommuParseCmdline(k: IommuCore, kc: IommuKconfig, cmdline: string): 0 | KError {
  k.dmaStrict = kc.defaultDmaStrict;
  for (const tok of cmdline.split(/\s+/).filter((t) => t !== "")) {
    const eq = tok.indexOf("=");
    const key = eq < 0 ? tok : tok.slice(0, eq);
    const val = eq < 0 ? "" : tok.slice(eq + 1);
    if (key === "iommu.passthrough") {
      // @kernel: iommu_set_def_domain_type (early_param "iommu.passthrough")
      const pt = kstrtobool(val);
      if (pt === null) return kerr("EINVAL", `iommu.passthrough=${val}: not a boolean`);
      if (pt) setDefaultPassthrough(k, true);
      else setDefaultTranslated(k, true);
    } else if (key === "iommu.strict") {
      // @kernel: iommu_dma_setup (early_param "iommu.strict")
      const strict = kstrtobool(val);
      if (strict === null) return kerr("EINVAL", `iommu.strict=${val}: not a boolean`);
      k.dmaStrict = strict;
      k.cmdLine |= IOMMU_CMD_LINE_STRICT;
    } else if (key === "iommu") {
      // arch/x86/kernel/pci-dma.c: iommu_setup ("pt" / "nopt")
      for (const opt of val.split(",")) {
        if (opt === "pt") setDefaultPassthrough(k, true);
        else if (opt === "nopt") setDefaultTranslated(k, true);
      }
    }
  }
  return 0;
}

// @kernel: iommu_subsys_init
export function iommuSubsysInit(k: IommuCore): void {
  if ((k.cmdLine & IOMMU_CMD_LINE_DMA_API) === 0) setDefaultTranslated(k, false);
  if (k.defDomainType !== IOMMU_DOMAIN_IDENTITY && !k.dmaStrict) k.defDomainType = IOMMU_DOMAIN_DMA_FQ;
  for (const bus of k.iommuBuses) busRegisterNotifier(bus, iommuBusNotifier(k));
}
