/**
 * Reading a scenario file (.yaml or .json): YAML parsing that keeps
 * positions, schema validation, then the cross-reference checks. Every
 * problem is reported with the file, line and column, the key path and a
 * sentence; nothing is thrown past the caller but a ScenarioError.
 */
import { readFileSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from "yaml";
import { scenarioSchema, type Scenario } from "./schema.ts";
import { checkScenario } from "./check.ts";

export type KeyPath = (string | number)[];

export interface Problem {
  path: KeyPath;
  message: string;
  line?: number;
  col?: number;
}

export class ScenarioError extends Error {
  constructor(
    readonly file: string,
    readonly problems: Problem[],
  ) {
    super(problems.map((p) => formatProblem(file, p)).join("\n"));
    this.name = "ScenarioError";
  }
}

export function formatPath(path: KeyPath): string {
  let s = "";
  for (const seg of path) s += typeof seg === "number" ? `[${seg}]` : s === "" ? seg : `.${seg}`;
  return s === "" ? "(top level)" : s;
}

export function formatProblem(file: string, p: Problem): string {
  const where = p.line !== undefined ? `${file}:${p.line}:${p.col}` : file;
  return `${where}: ${formatPath(p.path)}: ${p.message}`;
}

/** The source offset of the node at `path` (or of the deepest existing ancestor). */
function offsetOf(doc: Document, path: KeyPath): number | null {
  let node: unknown = doc.contents;
  let offset: number | null = (node as { range?: [number] } | null)?.range?.[0] ?? null;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === seg);
      if (pair === undefined) break;
      offset = (pair.key as { range?: [number] }).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg];
      if (item === undefined) break;
      node = item;
      offset = (item as { range?: [number] }).range?.[0] ?? offset;
    } else {
      break;
    }
  }
  return offset;
}

function locate(doc: Document, lc: LineCounter, p: Problem): Problem {
  const off = offsetOf(doc, p.path);
  if (off === null) return p;
  const pos = lc.linePos(off);
  return { ...p, line: pos.line, col: pos.col };
}

/** Parses and validates scenario text; `file` names it in messages. */
export function parseScenario(text: string, file: string): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ScenarioError(
      file,
      doc.errors.map((e) => {
        const pos = lc.linePos(e.pos[0]);
        return { path: [], message: `not valid YAML/JSON: ${e.message.split("\n")[0]}`, line: pos.line, col: pos.col };
      }),
    );
  }
  const raw: unknown = doc.toJS();
  const parsed = scenarioSchema.safeParse(raw);
  if (!parsed.success) {
    const problems: Problem[] = parsed.error.issues.map((iss) => {
      const path = iss.path.filter((s): s is string | number => typeof s !== "symbol");
      if (iss.code === "unrecognized_keys") {
        return { path: [...path, iss.keys[0]!], message: `unknown key${iss.keys.length > 1 ? "s" : ""} ${iss.keys.map((k) => `'${k}'`).join(", ")}` };
      }
      return { path, message: iss.message };
    });
    throw new ScenarioError(file, problems.map((p) => locate(doc, lc, p)));
  }
  const problems = checkScenario(parsed.data);
  if (problems.length > 0) throw new ScenarioError(file, problems.map((p) => locate(doc, lc, p)));
  return parsed.data;
}

export function loadScenarioFile(path: string): Scenario {
  if (!/\.(ya?ml|json)$/i.test(path)) {
    throw new ScenarioError(path, [{ path: [], message: "not a scenario file: expected a .yaml, .yml or .json file" }]);
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ScenarioError(path, [{ path: [], message: `cannot read the file: ${(e as Error).message}` }]);
  }
  return parseScenario(text, path);
}
