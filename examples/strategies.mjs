// Boot one machine under both ops-resolution strategies (README, "Library use").
import { readFileSync } from "node:fs";
import { URL } from "node:url";
import { boot } from "iommu-sim";

const scenario = readFileSync(new URL("../scenarios/x86-mock-wrong-ops.yaml", import.meta.url), "utf8");

for (const ops_resolution of ["upstream", "ask-each"]) {
  const { snapshot, failures } = boot(scenario, { strategy: { ops_resolution }, trace: false });
  const mock = snapshot.devices.find((d) => d.name === "iommufd_mock0");
  console.log(`${snapshot.strategy.ops_resolution}: iommufd_mock0 iommu=${mock.iommu} ops=${mock.ops}; ${failures.length} failure(s)`);
}

// An option boot() does not take is refused, not ignored.
try {
  boot(scenario, { opsResolution: "ask-each" });
} catch (e) {
  console.log(`${e.name}: ${e.message}`);
}
