/**
 * The kernel command-line options that bear on the IOMMU, and the parsing
 * rules they follow (kstrtobool, the drivers' comma-separated sub-options
 * matched by prefix), in one place. Parsing is pure: it says, per option,
 * whether the model honours it, knows it but does not model it, or does not
 * know it, and which values are malformed; init.ts applies the effects.
 *
 * The options, from the handlers that parse them: iommu.passthrough=,
 * iommu.strict= (drivers/iommu/iommu.c), iommu.forcedac=
 * (drivers/iommu/dma-iommu.c), iommu= (arch/x86/kernel/pci-dma.c),
 * intel_iommu= (drivers/iommu/intel/iommu.c), amd_iommu=, amd_iommu_dump,
 * amd_iommu_intr=, ivrs_ioapic, ivrs_hpet, ivrs_acpihid
 * (drivers/iommu/amd/init.c), intremap= and nointremap
 * (drivers/iommu/irq_remapping.c),
 * swiotlb= (kernel/dma/swiotlb.c), the arm-smmu.* and arm_smmu_v3.* module
 * parameters (drivers/iommu/arm/), and pci= sub-options that change ATS or
 * ACS (drivers/pci/pci.c).
 */

export type Arch = "x86" | "arm64";

/** modelled: the model does what the kernel does; not-modelled: a real option the model ignores; unknown: not an option the model knows. */
export type CmdlineStatus = "modelled" | "not-modelled" | "unknown";

export interface CmdlineNote {
  /** The option as written (a sub-option as `key=sub`). */
  option: string;
  status: CmdlineStatus;
  message: string;
}

/** What an option does to the core, applied by init.ts in the kernel's order. */
export type CmdlineEffect =
  /** iommu_set_default_passthrough(true) / iommu_set_default_translated(true) */
  | { kind: "default-domain"; passthrough: boolean }
  /** iommu.strict=: iommu_dma_strict and IOMMU_CMD_LINE_STRICT */
  | { kind: "dma-strict"; strict: boolean }
  /** iommu_set_dma_strict() from a driver's deprecated option */
  | { kind: "set-dma-strict" };

export interface ParsedCmdline {
  notes: CmdlineNote[];
  /** Malformed values: the scenario is not valid. */
  errors: string[];
  /** Effects of early_param handlers (parse_early_param: first, in command-line order). */
  early: CmdlineEffect[];
  /** Effects of __setup handlers (run after every early_param). */
  setup: CmdlineEffect[];
}

// @kernel: kstrtobool
export function kstrtobool(s: string | null): boolean | null {
  if (s === null) return null;
  switch (s[0]) {
    case "e":
    case "E":
    case "y":
    case "Y":
    case "t":
    case "T":
    case "1":
      return true;
    case "d":
    case "D":
    case "n":
    case "N":
    case "f":
    case "F":
    case "0":
      return false;
    case "o":
    case "O":
      if (s[1] === "n" || s[1] === "N") return true;
      if (s[1] === "f" || s[1] === "F") return false;
      return null;
    default:
      return null;
  }
}

const BOOL_WORDS = "a boolean (1/0, y/n, on/off, true/false)";

function cut(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}… (${s.length} characters)` : s;
}

/**
 * Splits a command line into parameters as the kernel's next_arg does:
 * white space separates them, double quotes protect spaces, and a bare `--`
 * ends the kernel's parameters (the rest is for init).
 */
export function cmdlineParams(cmdline: string): { key: string; value: string | null; text: string }[] {
  const out: { key: string; value: string | null; text: string }[] = [];
  let i = 0;
  while (i < cmdline.length) {
    while (i < cmdline.length && /\s/.test(cmdline[i]!)) i++;
    if (i >= cmdline.length) break;
    let quoted = false;
    const start = i;
    for (; i < cmdline.length; i++) {
      const c = cmdline[i]!;
      if (c === '"') quoted = !quoted;
      else if (!quoted && /\s/.test(c)) break;
    }
    const text = cmdline.slice(start, i);
    if (text === "--") break;
    const unq = text.replace(/"/g, "");
    const eq = unq.indexOf("=");
    out.push(eq < 0 ? { key: unq, value: null, text } : { key: unq.slice(0, eq), value: unq.slice(eq + 1), text });
  }
  return out;
}

/** Module and early parameters compare `-` and `_` as equal (parameq). */
const parameq = (a: string, b: string) => a.replace(/-/g, "_") === b.replace(/-/g, "_");

const splitSubs = (value: string) => value.split(",").filter((s) => s !== "");

interface Ctx {
  arch: Arch;
  note: (option: string, status: CmdlineStatus, message: string) => void;
  error: (message: string) => void;
  early: CmdlineEffect[];
  setup: CmdlineEffect[];
}

const X86_ONLY = "an x86 option: an arm64 kernel has no such parameter and ignores it";
const ARM_ONLY = "an Arm SMMU driver parameter: an x86 kernel does not build that driver";

function boolParam(c: Ctx, key: string, value: string | null): boolean | null {
  const b = kstrtobool(value);
  if (b === null) c.error(`${cut(key)}${value === null ? "" : `=${cut(value)}`}: expected ${BOOL_WORDS}, found ${value === null ? "no value" : `'${cut(value)}'`}`);
  return b;
}

// @kernel: iommu_setup (arch/x86/kernel/pci-dma.c: each comma-separated word matched by prefix, every match applied)
function x86IommuSetup(c: Ctx, value: string): void {
  for (const sub of splitSubs(value)) {
    const opt = `iommu=${sub}`;
    const has = (p: string) => sub.startsWith(p);
    let known = false;
    if (has("pt")) {
      c.early.push({ kind: "default-domain", passthrough: true });
      c.note(opt, "modelled", "iommu_set_default_passthrough: default domains are identity");
      known = true;
    }
    if (has("nopt")) {
      c.early.push({ kind: "default-domain", passthrough: false });
      c.note(opt, "modelled", "iommu_set_default_translated: default domains translate");
      known = true;
    }
    if (has("off")) {
      c.note(opt, "not-modelled", "no_iommu: VT-d and AMD-Vi would not initialise; the scenario's intel-iommu/amd-iommu instances still register (remove them to model this)");
      known = true;
    }
    if (has("forcesac") || has("allowdac") || has("nodac")) {
      c.note(opt, "not-modelled", "the kernel itself ignores it (\"option ignored\")");
      known = true;
    } else if (["force", "noforce", "biomerge", "merge", "nomerge", "panic", "nopanic"].some(has)) {
      c.note(opt, "not-modelled", "a legacy x86 DMA-API/GART flag with no effect on the IOMMU core the model covers");
      known = true;
    }
    if (has("usedac")) {
      c.note(opt, "not-modelled", "disables the VIA DAC quirk, which the model does not have");
      known = true;
    }
    if (has("soft")) {
      c.note(opt, "not-modelled", "swiotlb bounce buffering is not modelled");
      known = true;
    }
    if (["noagp", "noaperture", "fullflush", "nofullflush", "memaper", "allowed"].some(has) || /^\d/.test(sub)) {
      c.note(opt, "not-modelled", "an AMD GART option (gart_parse_options); the GART is not modelled");
      known = true;
    }
    if (!known) c.note(opt, "unknown", "not a word iommu= knows (the kernel ignores it silently)");
  }
}

interface SubOption {
  prefix: string;
  status: CmdlineStatus;
  message: string;
  effect?: CmdlineEffect;
}

// @kernel: intel_iommu_setup (first matching prefix wins, else "Unknown option")
const INTEL_SUBS: SubOption[] = [
  { prefix: "on", status: "modelled", message: "VT-d is enabled, as the model's intel-iommu instances are (CONFIG_INTEL_IOMMU_DEFAULT_ON)" },
  { prefix: "off", status: "not-modelled", message: "dmar_disabled: VT-d would not initialise; the scenario's intel-iommu instances still register (remove them to model this)" },
  { prefix: "igfx_off", status: "not-modelled", message: "the integrated graphics' own DMAR unit is not told apart in the model" },
  { prefix: "forcedac", status: "not-modelled", message: "deprecated alias of iommu.forcedac=1, which is not modelled" },
  { prefix: "strict", status: "modelled", message: "deprecated: iommu_set_dma_strict(), as iommu.strict=1", effect: { kind: "set-dma-strict" } },
  { prefix: "sp_off", status: "not-modelled", message: "super pages off: give the instance page-sizes: [4K] to model it" },
  { prefix: "sm_on", status: "not-modelled", message: "scalable mode is not modelled (the model's VT-d tables are second-stage legacy mode)" },
  { prefix: "sm_off", status: "not-modelled", message: "scalable mode is not modelled (the model's VT-d tables are second-stage legacy mode)" },
  { prefix: "tboot_noforce", status: "not-modelled", message: "tboot is not modelled" },
];

// @kernel: parse_amd_iommu_options (first matching prefix wins, else "Unknown option")
const AMD_SUBS: SubOption[] = [
  { prefix: "fullflush", status: "modelled", message: "deprecated: iommu_set_dma_strict(), as iommu.strict=1", effect: { kind: "set-dma-strict" } },
  { prefix: "force_enable", status: "not-modelled", message: "overrides AMD-Vi's platform checks, which the model does not make" },
  { prefix: "off", status: "not-modelled", message: "amd_iommu_disabled: AMD-Vi would not initialise; the scenario's amd-iommu instances still register (remove them to model this)" },
  { prefix: "force_isolation", status: "not-modelled", message: "AMD-Vi's forced isolation is not modelled" },
  { prefix: "pgtbl_v1", status: "not-modelled", message: "the AMD-Vi page-table formats are not modelled (its domains use a generic format)" },
  { prefix: "pgtbl_v2", status: "not-modelled", message: "the AMD-Vi page-table formats are not modelled (its domains use a generic format)" },
  { prefix: "irtcachedis", status: "not-modelled", message: "interrupt remapping is not modelled" },
  { prefix: "nohugepages", status: "not-modelled", message: "restricts page sizes to 4K: give the instance page-sizes: [4K] to model it" },
  { prefix: "v2_pgsizes_only", status: "not-modelled", message: "restricts page sizes to 4K/2M/1G: give the instance page-sizes to model it" },
];

function driverSubs(c: Ctx, key: string, value: string, table: SubOption[]): void {
  if (splitSubs(value).length === 0) c.note(`${key}=`, "unknown", "no options given (the kernel ignores it)");
  for (const sub of splitSubs(value)) {
    const opt = `${key}=${sub}`;
    const hit = table.find((t) => sub.startsWith(t.prefix));
    if (hit === undefined) {
      c.note(opt, "unknown", `not one of the ${key}= options (the kernel prints "Unknown option" and ignores it)`);
      continue;
    }
    c.note(opt, hit.status, hit.message);
    if (hit.effect !== undefined) c.setup.push(hit.effect);
  }
}

const IVRS_ID = String.raw`=\d+@(?:[0-9a-fA-F]+:)?[0-9a-fA-F]+:[0-9a-fA-F]+\.[0-9a-fA-F]+|\[\d+\]=(?:[0-9a-fA-F]+:)?[0-9a-fA-F]+:[0-9a-fA-F]+\.[0-9a-fA-F]+`;
const IVRS_HID = String.raw`=[^@\s]+@(?:[0-9a-fA-F]+:)?[0-9a-fA-F]+:[0-9a-fA-F]+\.[0-9a-fA-F]+|\[(?:[0-9a-fA-F]+:)?[0-9a-fA-F]+:[0-9a-fA-F]+\.[0-9a-fA-F]+\]=\S+`;

/** One parameter: its note(s), effect or error. */
function classify(c: Ctx, p: { key: string; value: string | null; text: string }): void {
  const { key, value } = p;
  const opt = p.text;
  const x86 = c.arch === "x86";
  if (parameq(key, "iommu.passthrough")) {
    // @kernel: iommu_set_def_domain_type (early_param "iommu.passthrough")
    const b = boolParam(c, key, value);
    if (b !== null) {
      c.early.push({ kind: "default-domain", passthrough: b });
      c.note(opt, "modelled", b ? "iommu_set_default_passthrough: default domains are identity" : "iommu_set_default_translated: default domains translate");
    }
  } else if (parameq(key, "iommu.strict")) {
    // @kernel: iommu_dma_setup (early_param "iommu.strict")
    const b = boolParam(c, key, value);
    if (b !== null) {
      c.early.push({ kind: "dma-strict", strict: b });
      c.note(opt, "modelled", b ? "strict invalidation: DMA domains are DMA, not DMA-FQ" : "lazy invalidation: DMA domains are DMA-FQ");
    }
  } else if (parameq(key, "iommu.forcedac")) {
    // @kernel: iommu_dma_forcedac_setup (early_param "iommu.forcedac")
    const b = boolParam(c, key, value);
    if (b !== null) {
      c.note(opt, b ? "not-modelled" : "modelled", b ? "PCI devices would get IOVAs above 4 GiB first; the model's iommu_dma_alloc_iova still tries below 4 GiB first" : "the default: PCI devices try for a 32-bit IOVA first");
    }
  } else if (key === "iommu") {
    if (!x86) c.note(opt, "unknown", `${X86_ONLY} (use iommu.passthrough= and iommu.strict=)`);
    else if (value === null || value === "") c.error(`iommu: expected iommu=WORD[,WORD…] (pt, nopt, off, …), found ${value === null ? "no value" : "an empty value"}`);
    else x86IommuSetup(c, value);
  } else if (key === "intel_iommu" && value !== null) {
    if (!x86) c.note(opt, "unknown", X86_ONLY);
    else driverSubs(c, "intel_iommu", value, INTEL_SUBS);
  } else if (key === "amd_iommu" && value !== null) {
    if (!x86) c.note(opt, "unknown", X86_ONLY);
    else driverSubs(c, "amd_iommu", value, AMD_SUBS);
  } else if (key.startsWith("amd_iommu_dump")) {
    c.note(opt, x86 ? "not-modelled" : "unknown", x86 ? "dumps the IVRS table to the kernel log; the model has no log" : X86_ONLY);
  } else if (key === "amd_iommu_intr" && value !== null) {
    c.note(opt, x86 ? "not-modelled" : "unknown", x86 ? "interrupt remapping is not modelled" : X86_ONLY);
  } else if (/^ivrs_(ioapic|hpet|acpihid)/.test(key)) {
    const which = /^ivrs_(ioapic|hpet|acpihid)/.exec(key)![0];
    const rest = p.text.replace(/"/g, "").slice(which.length);
    if (!x86) c.note(opt, "unknown", X86_ONLY);
    else if (!new RegExp(`^(?:${which === "ivrs_acpihid" ? IVRS_HID : IVRS_ID})$`).test(rest)) {
      c.error(
        `${cut(which)}: expected ${which === "ivrs_acpihid" ? `${which}=HID:UID@[SSSS:]BB:DD.F` : `${which}=ID@[SSSS:]BB:DD.F`}, found '${cut(p.text)}' (the kernel prints "Invalid command line")`,
      );
    } else c.note(opt, "not-modelled", "an IVRS override for an IOAPIC, HPET or ACPI device; those devices are not modelled");
  } else if (key === "intremap" || key === "nointremap") {
    c.note(opt, x86 ? "not-modelled" : "unknown", x86 ? "interrupt remapping is not modelled" : X86_ONLY);
  } else if (key === "pcie_acs_override") {
    c.note(opt, "unknown", "not a mainline option (an out-of-tree patch some distributions carry); write the devices' acs lists instead");
  } else if (key === "swiotlb") {
    c.note(opt, "not-modelled", "swiotlb bounce buffering is not modelled (dma-direct fails beyond the DMA mask instead)");
  } else if (parameq(key, "arm-smmu.disable_bypass") || parameq(key, "arm-smmu.force_stage") || parameq(key, "arm_smmu_v3.disable_msipolling")) {
    if (x86) c.note(opt, "unknown", ARM_ONLY);
    else if (parameq(key, "arm-smmu.force_stage")) {
      if (value === null || !/^-?\d+$/.test(value)) c.error(`${key}: expected an integer (1 or 2 forces that stage), found ${value === null ? "no value" : `'${cut(value)}'`}`);
      else c.note(opt, "not-modelled", "the model's arm-smmu picks its stage itself");
    } else {
      // A bool module parameter without a value means true (param_set_bool).
      if (value !== null) boolParam(c, key, value);
      if (value === null || kstrtobool(value) !== null) {
        c.note(opt, "not-modelled", parameq(key, "arm-smmu.disable_bypass") ? "bypass of unattached streams is not modelled" : "CMD_SYNC polling is not modelled");
      }
    }
  } else if (key === "pci" && value !== null) {
    for (const sub of splitSubs(value)) {
      const o = `pci=${sub}`;
      if (sub === "noats") c.note(o, "not-modelled", "ATS is always available to the model's PCI devices");
      else if (sub.startsWith("config_acs=") || sub.startsWith("disable_acs_redir=")) c.note(o, "not-modelled", "write the device's acs list in the scenario instead");
      else c.note(o, "unknown", "not a pci= option that bears on the IOMMU; ignored");
    }
  } else {
    c.note(opt, "unknown", "not an IOMMU option the model knows; ignored");
  }
}

/** Parses a kernel command line for `arch`: per option a note, malformed values as errors, effects in the kernel's order. */
export function parseCmdline(cmdline: string, arch: Arch): ParsedCmdline {
  const out: ParsedCmdline = { notes: [], errors: [], early: [], setup: [] };
  const c: Ctx = {
    arch,
    note: (option, status, message) => out.notes.push({ option: cut(option), status, message }),
    error: (message) => out.errors.push(message),
    early: out.early,
    setup: out.setup,
  };
  for (const p of cmdlineParams(cmdline)) classify(c, p);
  return out;
}

/** A note as one line: `option: not modelled: why`. */
export function formatCmdlineNote(n: CmdlineNote): string {
  const status = n.status === "modelled" ? "modelled" : n.status === "not-modelled" ? "not modelled" : "unknown option";
  return `${n.option}: ${status}: ${n.message}`;
}
