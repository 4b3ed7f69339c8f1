/**
 * The package version, read at run time from package.json: two levels up
 * from this module (src/cli/ under tsx, dist/cli/ once compiled), else the
 * nearest iommu-sim package.json above it.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function versionIn(path: string | URL): string | null {
  try {
    const pkg = JSON.parse(readFileSync(path, "utf8")) as { name?: unknown; version?: unknown };
    return pkg.name === "iommu-sim" && typeof pkg.version === "string" ? pkg.version : null;
  } catch {
    return null;
  }
}

/** The version of the iommu-sim package `moduleUrl` belongs to, or "unknown". */
export function packageVersionFrom(moduleUrl: string | URL): string {
  const near = versionIn(new URL("../../package.json", moduleUrl));
  if (near !== null) return near;
  let dir = dirname(fileURLToPath(moduleUrl));
  for (;;) {
    const v = versionIn(join(dir, "package.json"));
    if (v !== null) return v;
    const up = dirname(dir);
    if (up === dir) return "unknown";
    dir = up;
  }
}

export function packageVersion(): string {
  return packageVersionFrom(import.meta.url);
}
