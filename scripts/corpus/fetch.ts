/**
 * The DTB corpus: every device tree in Debian's arm64 kernel package
 * (linux-image-*-arm64), downloaded with apt-get into a cache of its own
 * (never committed): apt runs with private state and cache directories and
 * the arm64 architecture, so the system's apt configuration is untouched.
 * The cache is $IOMMU_SIM_CORPUS, else ~/.cache/iommu-sim/corpus.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const CORPUS_DIR = process.env.IOMMU_SIM_CORPUS ?? join(homedir(), ".cache", "iommu-sim", "corpus");

function dtbsUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith(".dtb")) out.push(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

/** The corpus's DTB paths and the package they came from; downloads and unpacks it on first use. */
export function corpusDtbs(log: (line: string) => void): { pkg: string; files: string[] } {
  const tree = join(CORPUS_DIR, "tree");
  const debs = join(CORPUS_DIR, "debs");
  const have = existsSync(debs) ? readdirSync(debs).filter((f) => f.endsWith(".deb")) : [];
  if (have.length > 0 && existsSync(tree)) return { pkg: have[0]!, files: dtbsUnder(tree) };
  for (const d of ["lists/partial", "cache/archives/partial", "debs", "tree"]) mkdirSync(join(CORPUS_DIR, d), { recursive: true });
  const apt = [
    "-q",
    "-o", `Dir::State::Lists=${join(CORPUS_DIR, "lists")}`,
    "-o", `Dir::Cache=${join(CORPUS_DIR, "cache")}`,
    "-o", "APT::Architecture=arm64",
    "-o", "APT::Architectures=arm64",
    "-o", "Debug::NoLocking=1",
    "-o", "APT::Sandbox::User=root",
  ];
  log(`corpus: apt-get update (arm64 indexes, into ${CORPUS_DIR})`);
  execFileSync("apt-get", [...apt, "update"], { stdio: ["ignore", "ignore", "inherit"] });
  const deps = execFileSync("apt-cache", [...apt, "depends", "linux-image-arm64"], { encoding: "utf8" });
  const pkg = /Depends: (linux-image-[\w.+-]+-arm64)\b/.exec(deps)?.[1];
  if (pkg === undefined) throw new Error(`linux-image-arm64 names no kernel package:\n${deps}`);
  log(`corpus: apt-get download ${pkg}`);
  execFileSync("apt-get", [...apt, "download", pkg], { cwd: debs, stdio: ["ignore", "ignore", "inherit"] });
  const deb = readdirSync(debs).find((f) => f.endsWith(".deb"))!;
  execFileSync("dpkg-deb", ["-x", join(debs, deb), tree]);
  return { pkg: deb, files: dtbsUnder(tree) };
}
