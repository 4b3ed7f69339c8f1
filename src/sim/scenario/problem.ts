/**
 * A problem with a scenario: where (file, line, column, key path) and what
 * (a sentence saying what was expected and what was found). ScenarioError
 * carries every problem a file has; nothing else is thrown for bad input.
 */
import { capMessage } from "./suggest.ts";

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

const PLAIN_KEY = /^[A-Za-z_#][\w#-]*$/;

/** A key path as `devices[0].iommus[1]`; odd keys quoted, long ones cut. */
export function formatPath(path: KeyPath): string {
  let s = "";
  for (const seg of path) {
    if (typeof seg === "number") s += `[${seg}]`;
    else {
      const cut = seg.length > 40 ? `${seg.slice(0, 40)}…` : seg;
      const key = PLAIN_KEY.test(seg) || /^[\w@:./\\-]+$/.test(seg) ? cut : JSON.stringify(cut);
      s += s === "" ? key : `.${key}`;
    }
  }
  return s === "" ? "(top level)" : s;
}

export function formatProblem(file: string, p: Problem): string {
  const where = p.line !== undefined ? `${file}:${p.line}:${p.col}` : file;
  return `${where}: ${formatPath(p.path)}: ${capMessage(p.message)}`;
}

/** The problems as plain data, for JSON output. */
export function problemRecords(file: string, problems: readonly Problem[]): { file: string; line: number | null; col: number | null; path: string; message: string }[] {
  return problems.map((p) => ({ file, line: p.line ?? null, col: p.col ?? null, path: formatPath(p.path), message: capMessage(p.message) }));
}
