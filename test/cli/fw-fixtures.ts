/**
 * The firmware fixtures, compiled at test time: DTS (test/fixtures/dts/)
 * with dtc, ASL (test/fixtures/acpi/) with iasl, both Debian's
 * (device-tree-compiler, acpica-tools; .ci/run installs them).
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/main.ts";

const ROOT = new URL("../fixtures/", import.meta.url).pathname;
let work: string | null = null;
const dir = () => (work ??= mkdtempSync(join(tmpdir(), "iommu-sim-fw-")));

/** test/fixtures/dts/NAME.dts compiled to a DTB; its path. */
export function dtb(name: string): string {
  const out = join(dir(), `${name}.dtb`);
  execFileSync("dtc", ["-q", "-I", "dts", "-O", "dtb", "-o", out, join(ROOT, "dts", `${name}.dts`)]);
  return out;
}

/** The .asl files of test/fixtures/acpi/NAME/ compiled with iasl into a fresh directory, as acpixtract would leave them (one .aml per table); the directory. */
export function acpiDir(name: string): string {
  const src = join(ROOT, "acpi", name);
  const out = join(dir(), `acpi-${name}`);
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(src).filter((f) => f.endsWith(".asl"))) {
    copyFileSync(join(src, f), join(out, f));
    execFileSync("iasl", ["-vs", "-vi", join(out, f)], { stdio: "ignore" });
  }
  return out;
}

/** Removes what dtb() and acpiDir() compiled (for afterAll). */
export function removeCompiled(): void {
  if (work !== null) rmSync(work, { recursive: true, force: true });
  work = null;
}

export async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s), tty: false });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** A small deterministic generator (mulberry32) for the fuzz tests. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
