// Loaded with --import by the tests: `import "iommu-sim"` resolves to this checkout's
// src/index.ts, whatever package.json's exports point at (a built dist/ or not).
import { register } from "node:module";
import { URL } from "node:url";

const index = new URL("../../src/index.ts", import.meta.url).href;
const hooks = `export async function resolve(specifier, context, next) {
  return next(specifier === "iommu-sim" ? ${JSON.stringify(index)} : specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
