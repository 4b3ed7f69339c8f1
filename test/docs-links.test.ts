import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const pages = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

describe("README and docs link only to files inside the repository", () => {
  it.each(pages)("%s", (page) => {
    const text = readFileSync(join(root, page), "utf8");
    const targets = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/i.test(t) && !t.startsWith("#"));
    for (const t of targets) {
      const abs = resolve(dirname(join(root, page)), t.split("#")[0]!);
      expect(relative(root, abs).startsWith(".."), `${page} links to ${t}, outside the repository`).toBe(false);
    }
  });
});
