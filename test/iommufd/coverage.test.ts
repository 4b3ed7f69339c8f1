/**
 * docs/iommufd.md's table of the kernel's selftest cases: every row marked
 * ported names a test of ours (its fixture's file declares the variant and
 * the test), and every test of ours has a row marked ported.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const root = new URL("../../", import.meta.url);
const doc = readFileSync(new URL("docs/iommufd.md", root), "utf8");
const FILES: Record<string, string> = {
  iommufd: "test/iommufd/iommufd.test.ts",
  iommufd_ioas: "test/iommufd/iommufd-ioas.test.ts",
  iommufd_mock_domain: "test/iommufd/iommufd-mock-domain.test.ts",
  change_process: "test/iommufd/change-process.test.ts",
  vfio_compat_mock_domain: "test/iommufd/vfio-compat.test.ts",
  iommufd_dirty_tracking: "test/iommufd/dirty-tracking.test.ts",
  iommufd_viommu: "test/iommufd/viommu.test.ts",
  iommufd_device_pasid: "test/iommufd/device-pasid.test.ts",
};

const rows = [...doc.matchAll(/^\| `([a-z_0-9]+)(?:\/([A-Za-z_0-9]+))?: ([a-z_0-9]+)` \| (ported, passing|not yet) \|(.*)\|$/gm)].map((m) => ({
  fixture: m[1]!,
  variant: m[2] ?? "",
  test: m[3]!,
  ported: m[4] === "ported, passing",
  why: m[5]!.trim(),
}));

describe("docs/iommufd.md coverage table", () => {
  it("lists each case once, and says why for every case not ported", () => {
    expect(rows.length).toBe(241);
    const names = rows.map((r) => `${r.fixture}/${r.variant}: ${r.test}`);
    expect(new Set(names).size).toBe(names.length);
    for (const r of rows) expect(r.ported ? r.why : r.why.length > 0, `${r.fixture}/${r.variant}: ${r.test}`).toBe(r.ported ? "" : true);
  });

  it("every ported row names a test of ours, and every test of ours is a ported row", () => {
    const ours = new Set<string>();
    for (const [fixture, file] of Object.entries(FILES)) {
      const src = readFileSync(new URL(file, root), "utf8");
      const variants = fixture === "iommufd" ? [""] : [...src.matchAll(/^ {2}([A-Za-z_0-9]+): \{/gm)].map((m) => m[1]!);
      const tests = fixture === "iommufd" ? [...src.matchAll(/it\("iommufd: ([a-z_0-9]+)"/g)].map((m) => m[1]!) : fixture === "change_process" ? ["basic"] : [...src.matchAll(/T\("([a-z_0-9]+)"/g)].map((m) => m[1]!);
      for (const v of variants) for (const t of tests) ours.add(`${fixture}/${v}: ${t}`);
    }
    const ported = rows.filter((r) => r.ported).map((r) => `${r.fixture}/${r.variant}: ${r.test}`);
    expect(new Set(ported)).toEqual(ours);
  });
});
