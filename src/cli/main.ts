/**
 * The command line: `iommu-sim run FILE [--json] [--trace]`,
 * `iommu-sim check FILE [--json]`, `iommu-sim validate FILE [--json]`,
 * `iommu-sim --version`. FILE `-` is stdin. Exit codes are in exit.ts.
 *
 * Only commander and small modules load here: the model is imported when a
 * command runs, so `--version` and `--help` do not pay for it.
 */
import { Command, CommanderError, Option } from "commander";
import { EXIT_INVALID, EXIT_MODEL_BUG, EXIT_OK, EXIT_USAGE } from "./exit.ts";
import { processIo, type Io } from "./io.ts";
import type { PictureFormat } from "./picture.ts";
import { packageVersion } from "./version.ts";

export type { Io } from "./io.ts";

const PGTABLE_MEMORY_HELP = "cap on the memory of all IO page tables (bytes, or 64M, 1G, 0x...; default 128M): a map beyond it fails with ENOMEM";
const FILE_HELP = "scenario file (.yaml, .yml or .json), or - to read it from stdin";

/** The axes, their strategies and the kernel presets for the help, loaded only when help is asked for. */
async function designHelp(argv: string[]): Promise<{ strategy: string; kernel: string }> {
  const help = argv.includes("-h") || argv.includes("--help") || argv[0] === "help";
  if (!help || !argv.some((a) => a === "run" || a === "check" || a === "diff" || a === "explore" || a === "view")) return { strategy: "", kernel: "" };
  const { AXES, AXIS_NAMES } = await import("../designs/registry.ts");
  const { PRESET_NAMES } = await import("../designs/presets.ts");
  return {
    strategy: ` (${AXIS_NAMES.map((a) => `${a}: ${AXES[a].names.join("|")}`).join("; ")})`,
    kernel: ` (${PRESET_NAMES.join(", ")})`,
  };
}

/** Collects a repeatable option's values. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  let code = EXIT_OK;
  const design = await designHelp(argv);
  const program = new Command()
    .name("iommu-sim")
    .description("An executable model of the Linux IOMMU core: boot a described machine through the IOMMU lifecycle and check its rules.")
    .version(packageVersion(), "-V, --version", "print the version")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .addHelpText(
      "after",
      "\nExit codes: 0 everything held; 1 an expectation, invariant or event (without expect_error) failed, or explore found a failing schedule; 2 invalid input; 3 a bug in the model; 64 a usage error.",
    );
  const strategyHelp = `AXIS=NAME: run with this strategy on that axis, over the scenario's and the kernel preset's (repeatable)${design.strategy}`;
  const kernelHelp = `run with the design choices of this kernel release, instead of the scenario's${design.kernel}`;
  const commands = () => import("./commands.ts");

  program
    .command("run")
    .description("boot the scenario, play its events, print the resulting state")
    .argument("<file>", FILE_HELP)
    .option("--json", "print the snapshot as one JSON document")
    .option("--trace", "print the trace of core calls")
    .option("--steps", "with --json: the snapshot after every boot event, event and scheduler step, each with its trace (docs/view.md)")
    .addOption(new Option("--format <format>", "print the final topology and its IOMMU groups as a graph: Graphviz dot or Mermaid").choices(["dot", "mermaid"] satisfies PictureFormat[]))
    .option("--schedule <string>", "play the concurrently blocks on this schedule, e.g. a3b/-, as `explore` prints it (default: each task runs until it blocks or ends)")
    .option("--strategy <axis=name>", strategyHelp, collect)
    .option("--kernel <version>", kernelHelp)
    .option("--pgtable-memory <size>", PGTABLE_MEMORY_HELP)
    .action(async (file: string, o: Record<string, string | boolean | undefined>) => {
      code = await (await commands()).runCommand(file, o, io);
    });

  program
    .command("check")
    .description("run the scenario and report only its expectations, invariants and failed events")
    .argument("<file>", FILE_HELP)
    .option("--json", "print the report as one JSON document")
    .option("--strategy <axis=name>", strategyHelp, collect)
    .option("--kernel <version>", kernelHelp)
    .option("--pgtable-memory <size>", PGTABLE_MEMORY_HELP)
    .option("--workers <n>", "worker threads of the search a scenario's explore: key asks for (default: one per core)")
    .action(async (file: string, o: Record<string, string | boolean | undefined>) => {
      code = await (await commands()).checkCommand(file, o, io);
    });

  program
    .command("diff")
    .description("run the scenario under two designs and show where they part: the traces, the snapshots, the event results")
    .argument("<file>", FILE_HELP)
    .option("--a <set>", `the first design: a kernel preset, or AXIS=NAME[,AXIS=NAME]${design.kernel}`)
    .option("--b <set>", "the second design, likewise")
    .option("--json", "print the comparison as one JSON document")
    .option("--context <lines>", "trace lines shown around the divergence (default 3)")
    .action(async (file: string, o: Record<string, string | boolean | undefined>) => {
      code = await (await commands()).diffCommand(file, o, io);
    });

  program
    .command("explore")
    .description("search the schedules of the scenario's concurrently blocks for one that breaks an invariant, an expectation, or deadlocks; print it shrunk, its trace and the command that replays it")
    .argument("<file>", FILE_HELP)
    .option("--bound <k>", "preemptions per schedule in the systematic search (default: the scenario's explore.bound, else 2)")
    .option("--random <n>", "run n random schedules instead of the systematic search")
    .option("--seed <s>", "the seed of --random (default 1)")
    .option("--workers <n>", "worker threads (default: one per core)")
    .option("--json", "print the outcome as one JSON document")
    .option("--strategy <axis=name>", strategyHelp, collect)
    .option("--kernel <version>", kernelHelp)
    .option("--pgtable-memory <size>", PGTABLE_MEMORY_HELP)
    .action(async (file: string, o: Record<string, string | boolean | undefined>) => {
      code = await (await import("./explore.ts")).exploreCommand(file, o, io);
    });

  program
    .command("view")
    .description("write one self-contained HTML page that steps through the run: the topology, the groups, the trace of each step; with --a and --b, two designs side by side (docs/view.md)")
    .argument("<file>", FILE_HELP)
    .option("--out <page.html>", "the page's file, or - for stdout (default: the scenario's name with .html, in the current directory)")
    .option("--schedule <string>", "play the concurrently blocks on this schedule, as for run")
    .option("--strategy <axis=name>", strategyHelp, collect)
    .option("--kernel <version>", kernelHelp)
    .option("--a <set>", `the first of two designs shown side by side: a kernel preset, or AXIS=NAME[,AXIS=NAME]${design.kernel}`)
    .option("--b <set>", "the second design, likewise")
    .option("--pgtable-memory <size>", PGTABLE_MEMORY_HELP)
    .action(async (file: string, o: Record<string, string | undefined> & { strategy?: string[] }) => {
      code = await (await import("./view-command.ts")).viewCommand(file, o, io);
    });

  program
    .command("validate")
    .description("check that a file is a valid scenario, without running it")
    .argument("<file>", FILE_HELP)
    .option("--json", "print the verdict as one JSON document")
    .action(async (file: string, o: { json?: boolean }) => {
      code = await (await commands()).validateCommand(file, o, io);
    });

  program
    .command("import")
    .description("turn a dump of a real machine into a scenario (YAML on stdout): lspci FILE, the output of lspci -vv (or -vvv, -vvnn, with -D, -PP, -xxx); dtb FILE, a flattened device tree; acpi DIR, the DMAR, IVRS and IORT tables acpidump -b or acpixtract -a wrote")
    .argument("<kind>", "lspci, dtb or acpi")
    .argument("<file>", "the dump (lspci: or - for stdin), the DTB, or the directory of ACPI tables (or one table file)")
    .option("--iommu <which>", "intel or amd: the IOMMU, instead of the one the host bridge's vendor implies")
    .option("--lspci <dump>", "import acpi: an lspci -vv dump of the same machine; its PCI functions become the devices, each served by the DRHD or IVHD that covers it, or the SMMU its IORT root complex maps it to")
    .action(async (kind: string, file: string, o: { iommu?: string; lspci?: string }) => {
      code = await (await import("./import-command.ts")).importCommand(kind, file, o, io);
    });

  const whatIfHelp = "re-run with a change and print the difference in groups (repeatable): acs-override=downstream,multifunction[,id:vvvv:dddd] (the out-of-tree pcie_acs_override patch), id:BB:DD.F (treat a function as isolated), move:BB:DD.F=BB:DD.F (a device moved under another port)";
  const groupsCmds = () => import("./groups-command.ts");
  program
    .command("groups")
    .description("list the IOMMU groups of a scenario or an lspci dump, with whether VFIO can claim each")
    .argument("<file>", "a scenario, or lspci -vv output (- for stdin)")
    .option("--json", "print the groups as one JSON document")
    .addOption(new Option("--format <format>", "print the topology with the groups as clusters, as Graphviz dot").choices(["dot"]))
    .option("--what-if <change>", whatIfHelp, collect)
    .option("--iommu <which>", "for an lspci dump: intel or amd")
    .action(async (file: string, o: { json?: boolean; format?: "dot"; whatIf?: string[]; iommu?: string }) => {
      code = await (await groupsCmds()).groupsCommand(file, o, io);
    });

  program
    .command("explain")
    .description("say who shares a device's IOMMU group and why, rule by rule, and what VFIO needs")
    .argument("<file>", "a scenario, or lspci -vv output (- for stdin)")
    .argument("<device>", "BB:DD.F, SSSS:BB:DD.F or a scenario device name")
    .option("--json", "print the explanation as one JSON document")
    .option("--what-if <change>", whatIfHelp, collect)
    .option("--iommu <which>", "for an lspci dump: intel or amd")
    .action(async (file: string, device: string, o: { json?: boolean; whatIf?: string[]; iommu?: string }) => {
      code = await (await groupsCmds()).explainCommand(file, device, o, io);
    });

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return EXIT_OK;
      // A flag's value the command refuses is invalid input; anything else commander refuses is usage.
      return e.code === "commander.invalidArgument" ? EXIT_INVALID : EXIT_USAGE;
    }
    const err = e as Error;
    io.err(`iommu-sim: internal error (a bug in the model, please report it): ${err.message}`);
    if (process.env.IOMMU_SIM_DEBUG) io.err(err.stack ?? "");
    else io.err("iommu-sim: set IOMMU_SIM_DEBUG=1 for the stack");
    return EXIT_MODEL_BUG;
  }
  return code;
}
