/**
 * YAML scenario text to plain data, with positions kept for messages. The
 * text is parsed in three bounded steps, so that no input can overflow the
 * stack or expand without limit: the CST parser (iterative) stops at a
 * nesting depth no scenario needs; the composed document's aliases are
 * checked (defined before use, not inside their own anchor, a bounded
 * expansion); only then is it converted to JS, itself with the yaml
 * library's alias limit.
 */
import { Composer, isAlias, isMap, isPair, isScalar, isSeq, Lexer, LineCounter, Parser, type Document, type Node } from "yaml";
import { ScenarioError, type KeyPath, type Problem } from "./problem.ts";
import { quoteString } from "./suggest.ts";

/** Nesting levels (mappings and lists) a document may have; a scenario needs about 10. */
export const MAX_DEPTH = 64;
/** Nodes aliases may add to a document, all expansions together. */
export const MAX_ALIAS_NODES = 100_000;
/** The yaml library's own alias-count limit, a second guard at conversion. */
const YAML_MAX_ALIAS_COUNT = 10_000;

export interface ParsedSource {
  raw: unknown;
  /** The 1-based line and column of the node at `path` (or its deepest existing ancestor). */
  locate(path: KeyPath): { line: number; col: number } | null;
}

function rangeStart(n: unknown): number | null {
  return (n as { range?: [number] } | null)?.range?.[0] ?? null;
}

/** The source offset of the node at `path` (or of the deepest existing ancestor). */
function offsetOf(doc: Document, path: KeyPath): number | null {
  let node: unknown = doc.contents;
  let offset = rangeStart(node);
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) break;
      offset = rangeStart(pair.key) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg];
      if (item === undefined) break;
      node = item;
      offset = rangeStart(item) ?? offset;
    } else {
      break;
    }
  }
  return offset;
}

/** CST tokens, refused past MAX_DEPTH levels of nesting (the CST parser keeps its own stack, so this cannot overflow). */
function tokensOf(text: string, lc: LineCounter, fail: (offset: number, message: string) => never) {
  const parser = new Parser(lc.addNewLine);
  lc.addNewLine(0);
  const tokens = [];
  for (const lexeme of new Lexer().lex(text)) {
    for (const t of parser.next(lexeme)) tokens.push(t);
    if (parser.stack.length > MAX_DEPTH + 2) {
      fail(parser.offset, `expected at most ${MAX_DEPTH} levels of nested mappings and lists (a scenario needs about 10), found deeper nesting here`);
    }
  }
  for (const t of parser.end()) tokens.push(t);
  return tokens;
}

interface Extent {
  size: number;
  height: number;
}

/** Aliases: each names an anchor set before it, not one it sits inside, and together they expand to a bounded size and depth. */
function aliasProblems(doc: Document): { offset: number | null; message: string }[] {
  const out: { offset: number | null; message: string }[] = [];
  const anchors = new Map<string, Node>();
  const done = new Map<Node, Extent>();
  const open = new Set<Node>();
  let added = 0;
  const leaf: Extent = { size: 1, height: 0 };
  const walk = (node: unknown, depth: number): Extent => {
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      const name = quoteString(`*${node.source}`, 40);
      if (target === undefined) {
        out.push({ offset: rangeStart(node), message: `alias ${name} names no anchor: expected an anchor &${node.source.slice(0, 40)} earlier in the file` });
        return leaf;
      }
      if (open.has(target)) {
        out.push({ offset: rangeStart(node), message: `alias ${name} sits inside the node its anchor names: expected an alias to a complete node, found a cycle` });
        return leaf;
      }
      const ext = done.get(target) ?? leaf;
      added += ext.size;
      if (added > MAX_ALIAS_NODES && added - ext.size <= MAX_ALIAS_NODES) {
        out.push({ offset: rangeStart(node), message: `aliases expand too far: expected at most ${MAX_ALIAS_NODES} nodes added by aliases, found more at alias ${name}` });
      }
      if (depth + ext.height > MAX_DEPTH) {
        out.push({ offset: rangeStart(node), message: `alias ${name} nests too deep: expected at most ${MAX_DEPTH} levels once expanded, found ${depth + ext.height}` });
      }
      return ext;
    }
    if (node === null || typeof node !== "object") return leaf;
    const n = node as Node;
    if (n.anchor !== undefined) anchors.set(n.anchor, n);
    let ext = leaf;
    if (isMap(n) || isSeq(n)) {
      open.add(n);
      let size = 1;
      let height = 0;
      for (const item of n.items as unknown[]) {
        const parts = isPair(item) ? [item.key, item.value] : [item];
        for (const part of parts) {
          const e = walk(part, depth + 1);
          size += e.size;
          height = Math.max(height, e.height + 1);
        }
      }
      open.delete(n);
      ext = { size, height };
    }
    done.set(n, ext);
    return ext;
  };
  walk(doc.contents, 0);
  return out;
}

/** Parses YAML scenario text; throws ScenarioError for anything that is not one bounded YAML document. */
export function parseYamlSource(text: string, file: string): ParsedSource {
  const lc = new LineCounter();
  const at = (offset: number | null) => {
    if (offset === null) return {};
    const pos = lc.linePos(offset);
    return { line: Math.max(pos.line, 1), col: pos.col };
  };
  const fail = (offset: number | null, message: string): never => {
    throw new ScenarioError(file, [{ path: [], message, ...at(offset) }]);
  };
  const tokens = tokensOf(text, lc, fail);
  const docs = [...new Composer({ uniqueKeys: true, prettyErrors: false }).compose(tokens, true, text.length)];
  if (docs.length > 1) fail(rangeStart(docs[1]!.contents), "expected one YAML document, found several (a line '---' starts another)");
  const doc = docs[0]!;
  const syntax: Problem[] = [...doc.errors, ...doc.warnings].map((e) => ({
    path: [],
    message: `not valid YAML: ${e.message.split("\n")[0]!}`,
    ...at(e.pos[0]),
  }));
  if (syntax.length > 0) throw new ScenarioError(file, syntax);
  const c = doc.contents;
  if (c === null || (isScalar(c) && c.range !== undefined && c.range[0] === c.range[1])) {
    fail(null, "expected a scenario (a mapping with at least a name), found an empty document");
  }
  const aliases = aliasProblems(doc);
  if (aliases.length > 0) throw new ScenarioError(file, aliases.map((a) => ({ path: [], message: a.message, ...at(a.offset) })));
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: YAML_MAX_ALIAS_COUNT });
  } catch (e) {
    if (e instanceof ReferenceError || e instanceof RangeError) fail(null, `the YAML cannot be expanded: ${e.message.slice(0, 120)}`);
    throw e;
  }
  return {
    raw,
    locate(path) {
      const off = offsetOf(doc, path);
      return off === null ? null : (at(off) as { line: number; col: number });
    },
  };
}
