/**
 * Reading a scenario: text to data (JSON.parse for JSON, the bounded YAML
 * parser for YAML), schema validation, then the cross-reference checks.
 * Every problem is reported with the file, line and column, the key path and
 * a sentence saying what was expected and what was found; nothing is thrown
 * past the caller but a ScenarioError.
 */
import { readFileSync } from "node:fs";
import { scenarioSchema, type Scenario } from "./schema.ts";
import { checkScenario } from "./check.ts";
import { issueProblems, keysAt } from "./issues.ts";
import { closest } from "./suggest.ts";
import { ScenarioError, type KeyPath, type Problem } from "./problem.ts";
import { parseJsonSource } from "./json-source.ts";
import { parseYamlSource, type ParsedSource } from "./yaml-source.ts";

export { formatPath, formatProblem, ScenarioError, type KeyPath, type Problem } from "./problem.ts";

export type ScenarioFormat = "yaml" | "json";

/** The name stdin goes by in messages. */
export const STDIN_NAME = "<stdin>";

/** JSON if the text starts (after white space) with `{` or `[`, else YAML (for stdin and inline text). */
export function sniffFormat(text: string): ScenarioFormat {
  const m = /^\s*([{[])/.exec(text.slice(0, 4096));
  return m === null ? "yaml" : "json";
}

/** At most this many problems are reported (a fuzzed file can have thousands). */
const MAX_PROBLEMS = 50;

/** Validates plain data as a scenario; `src` locates problems in the text it came from. */
export function validateScenario(raw: unknown, file: string, src: ParsedSource | null = null): Scenario {
  const parsed = scenarioSchema.safeParse(raw, { reportInput: true });
  let problems: Problem[];
  let total: number;
  if (parsed.success) {
    problems = checkScenario(parsed.data);
    total = problems.length;
    if (total === 0) return parsed.data;
  } else {
    // Where a mapping has an unknown key, a refinement's complaint about it, and "missing" for the
    // key the unknown one is a slip of, are noise: the unknown key's "did you mean" says it all.
    const key = (p: PropertyKey[]) => p.map(String).join("\0");
    const unknownAt = new Set<string>();
    const slipOf = new Set<string>();
    for (const i of parsed.error.issues) {
      if (i.code !== "unrecognized_keys") continue;
      unknownAt.add(key(i.path));
      const allowed = keysAt(scenarioSchema, i.path.filter((s): s is string | number => typeof s !== "symbol"));
      for (const k of i.keys) for (const c of closest(k, allowed)) slipOf.add(key([...i.path, c]));
    }
    const missing = (i: (typeof parsed.error.issues)[number]) => (i.code === "invalid_type" || i.code === "invalid_union") && i.input === undefined;
    const issues = parsed.error.issues.filter((i) => !(i.code === "custom" && unknownAt.has(key(i.path))) && !(missing(i) && slipOf.has(key(i.path))));
    total = issues.length;
    problems = issues.slice(0, MAX_PROBLEMS).flatMap((iss) => issueProblems(iss, raw, scenarioSchema));
  }
  // In the order they appear in the text.
  problems = problems
    .slice(0, MAX_PROBLEMS)
    .map((p) => {
      const pos = src?.locate(p.path) ?? null;
      return pos === null ? p : { ...p, line: pos.line, col: pos.col };
    })
    .sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0));
  if (total > MAX_PROBLEMS) problems.push({ path: [], message: `and ${total - MAX_PROBLEMS} more problems` });
  throw new ScenarioError(file, problems);
}

/**
 * Parses and validates scenario text; `file` names it in messages. The
 * format is JSON or YAML as given; without one, a name ending in .json means
 * JSON, and otherwise text that starts with `{` or `[` is JSON, the rest YAML.
 */
export function parseScenario(text: string, file: string, format?: ScenarioFormat): Scenario {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const byName = /\.json$/i.test(file);
  const fmt = format ?? (byName ? "json" : sniffFormat(text));
  const src = fmt === "json" ? parseJsonSource(text, file, format === undefined && !byName) : parseYamlSource(text, file);
  return validateScenario(src.raw, file, src);
}

/** Reads and validates a scenario file (.yaml, .yml or .json). */
export function loadScenarioFile(path: string): Scenario {
  const json = /\.json$/i.test(path);
  if (!json && !/\.ya?ml$/i.test(path)) {
    throw new ScenarioError(path, [{ path: [], message: "not a scenario file: expected a .yaml, .yml or .json file" }]);
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ScenarioError(path, [{ path: [], message: `cannot read the file: ${(e as Error).message.slice(0, 200)}` }]);
  }
  return parseScenario(text, path, json ? "json" : "yaml");
}

/** Where a key path stands in scenario text, for a problem found after loading (a schedule that does not fit the file). */
export function locateInText(text: string, file: string, path: KeyPath): { line: number; col: number } | null {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    const json = /\.json$/i.test(file) || (!/\.ya?ml$/i.test(file) && sniffFormat(text) === "json");
    const src = json ? parseJsonSource(text, file, false) : parseYamlSource(text, file);
    return src.locate(path);
  } catch {
    return null;
  }
}
