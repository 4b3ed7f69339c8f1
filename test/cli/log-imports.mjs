// Loaded with --import by the tests: appends the URL of every module loaded to $IMPORT_LOG.
import { register } from "node:module";

const hooks = `import { appendFileSync } from "node:fs";
export async function load(url, context, next) {
  appendFileSync(process.env.IMPORT_LOG, url + "\\n");
  return next(url, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
