/**
 * The README's ```console blocks are real output: each `$ iommu-sim ARGS`
 * line is run (in-process, as the command's main() with stdout not a
 * terminal) and what it prints must be exactly the lines that follow it.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { main } from "../src/cli/main.ts";

interface Example {
  argv: string[];
  output: string;
}

function examples(markdown: string): Example[] {
  const out: Example[] = [];
  for (const m of markdown.matchAll(/^```console\n([\s\S]*?)^```$/gm)) {
    let cur: { argv: string[]; lines: string[] } | null = null;
    const flush = () => cur !== null && out.push({ argv: cur.argv, output: cur.lines.join("\n") });
    for (const line of m[1]!.replace(/\n$/, "").split("\n")) {
      if (line.startsWith("$ iommu-sim ")) {
        flush();
        cur = { argv: line.slice("$ iommu-sim ".length).split(/\s+/), lines: [] };
      } else if (cur !== null) cur.lines.push(line);
      else throw new Error(`a console block must start with a "$ iommu-sim" line: ${line}`);
    }
    flush();
  }
  return out;
}

describe("README console examples", () => {
  const list = examples(readFileSync("README.md", "utf8"));

  it("there are some (diff and --kernel among them)", () => {
    expect(list.some((e) => e.argv[0] === "diff")).toBe(true);
    expect(list.some((e) => e.argv.includes("--kernel"))).toBe(true);
  });

  it.each(list.map((e) => [e.argv.join(" "), e] as const))("$ iommu-sim %s prints what the README shows", async (_name, e) => {
    const out: string[] = [];
    await main(e.argv, { out: (s) => out.push(s), err: () => {}, tty: false });
    expect(out.join("\n").replace(/\n$/, "")).toBe(e.output);
  });
});
