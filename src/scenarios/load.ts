/**
 * Scenario loader: YAML (or JSON, a subset of YAML) text → validated ScenarioDoc. Every problem with
 * the input becomes a ScenarioError whose line:col points into the text and whose field names the
 * value at fault; nothing else is thrown for bad input.
 */
import { readFileSync } from "node:fs";
import {
  isAlias,
  isCollection,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  parseDocument,
  visit,
  type Document as YamlDocument,
} from "yaml";
import { type core, z } from "zod";
import { DOCUMENT, describeValue, formatPath, ScenarioError, type ScenarioIssue, suggest } from "./errors.js";
import { type ScenarioDoc, ScenarioSchema } from "./schema.js";

type Path = (string | number)[];

/**
 * 1-based line and column of character offsets. Line breaks are LF, CRLF and a lone CR, as in YAML and
 * in editors. (yaml's own LineCounter is fed by the lexer and drifts after some syntax errors.)
 */
export class LineIndex {
  private readonly starts: number[] = [0];
  private readonly text: string;

  constructor(text: string) {
    this.text = text;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) this.starts.push(i + 1);
    }
  }

  /** Position of `offset`, clamped to the text; a column is at most one past the end of its line. */
  at(offset: number): { line: number; col: number } {
    const o = Math.max(0, Math.min(this.text.length, Number.isFinite(offset) ? offset : 0));
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= o) lo = mid;
      else hi = mid - 1;
    }
    const start = this.starts[lo];
    const end = lo + 1 < this.starts.length ? this.starts[lo + 1] : this.text.length;
    const content = this.text.slice(start, end).replace(/\r?\n$|\r$/, "").length;
    return { line: lo + 1, col: Math.min(o - start, content) + 1 };
  }
}

/** Positions of values in the text, from the parsed YAML syntax tree. */
class Locator {
  private readonly lines: LineIndex;
  private readonly doc: YamlDocument.Parsed;

  constructor(lines: LineIndex, doc: YamlDocument.Parsed) {
    this.lines = lines;
    this.doc = doc;
  }

  at(offset: number): { line: number; col: number } {
    return this.lines.at(offset);
  }

  /** Start of the node at `path`, or of its deepest existing ancestor. `key`: the key, not the value. */
  locate(path: readonly PropertyKey[], key = false): { line: number; col: number } {
    let node: unknown = this.doc.contents;
    let best = node && isNode(node) && node.range ? node.range[0] : 0;
    for (let i = 0; i < path.length; i++) {
      if (isAlias(node)) node = node.resolve(this.doc);
      const seg = path[i];
      let next: unknown;
      let keyNode: unknown;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && scalarKey(p.key.value) === String(seg));
        if (pair === undefined) break;
        keyNode = pair.key;
        next = pair.value;
      } else if (isSeq(node) && typeof seg === "number") {
        next = node.items[seg];
      } else break;
      const last = i === path.length - 1;
      const target = key && last && keyNode ? keyNode : next && isNode(next) && next.range ? next : keyNode;
      if (target && isNode(target) && target.range) best = target.range[0];
      if (!next) break;
      node = next;
    }
    return this.at(best);
  }

  /** Path of the innermost key or value whose text contains `offset` (for YAML syntax errors). */
  pathAt(offset: number): Path {
    const path: Path = [];
    let node: unknown = this.doc.contents;
    while (path.length <= MAX_DEPTH) {
      if (isMap(node)) {
        const pair = node.items.find((p) => spans(p.key, p.value, offset));
        if (!pair || !isScalar(pair.key)) return path;
        path.push(scalarKey(pair.key.value));
        if (!covers(pair.value, offset)) return path;
        node = pair.value;
      } else if (isSeq(node)) {
        const i = node.items.findIndex((it) => covers(it, offset));
        if (i < 0) return path;
        path.push(i);
        node = node.items[i];
      } else return path;
    }
    return path;
  }
}

/** Deepest nesting accepted; scenarios need 5 levels. Deeper input is refused before any recursive walk. */
const MAX_DEPTH = 32;

/** Offset of the first node nested deeper than MAX_DEPTH, found without recursion; undefined if none. */
function tooDeep(doc: YamlDocument.Parsed): number | undefined {
  const stack: [unknown, number][] = [[doc.contents, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (!isCollection(node)) continue;
    if (depth >= MAX_DEPTH) return node.range?.[0] ?? 0;
    for (const item of node.items) {
      if (isPair(item)) {
        stack.push([item.key, depth + 1], [item.value, depth + 1]);
      } else stack.push([item, depth + 1]);
    }
  }
  return undefined;
}

/** The JavaScript property name the yaml library gives a scalar key. */
function scalarKey(v: unknown): string {
  return v === null || v === undefined ? "" : String(v);
}

/** Offset lies between the start of a pair's key and the end of its value (tags and anchors included). */
function spans(key: unknown, value: unknown, offset: number): boolean {
  const start = isNode(key) && key.range ? key.range[0] : undefined;
  const end =
    isNode(value) && value.range ? value.range[2] : isNode(key) && key.range ? key.range[2] : undefined;
  return start !== undefined && end !== undefined && start <= offset && offset < end;
}

function covers(n: unknown, offset: number): boolean {
  return (
    isNode(n) && n.range !== undefined && n.range !== null && n.range[0] <= offset && offset < n.range[2]
  );
}

/** Allowed keys of each object that had unknown keys, recorded by the error map during one parse. */
type AllowedKeys = WeakMap<object, readonly string[]>;

const EXPECTED: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  int: "an integer",
  number: "a number",
  string: "a string",
  boolean: "a boolean",
  null: "null",
};

function bound(origin: string, limit: number | bigint, inclusive: boolean | undefined, big: boolean): string {
  const n = Number(limit);
  if (origin === "array") {
    const k = inclusive === false ? (big ? n - 1 : n + 1) : n;
    return `must have ${big ? "at most" : "at least"} ${k} entr${k === 1 ? "y" : "ies"}`;
  }
  if (origin === "string") {
    const k = inclusive === false ? (big ? n - 1 : n + 1) : n;
    return `must be ${big ? "at most" : "at least"} ${k} character${k === 1 ? "" : "s"} long`;
  }
  if (inclusive === false) return `must be ${big ? "less" : "greater"} than ${n}`;
  return `must be ${big ? "at most" : "at least"} ${n}`;
}

function list(values: readonly unknown[]): string {
  return values.map((v) => (typeof v === "string" ? v : String(v))).join(", ");
}

/** Per-parse zod error map: the wording users see. Schema-level messages (in schema.ts) take precedence. */
function errorMap(allowed: AllowedKeys): core.$ZodErrorMap {
  return (iss) => {
    switch (iss.code) {
      case "invalid_type":
        if (iss.input === undefined) return "required key is missing";
        return `expected ${EXPECTED[iss.expected] ?? iss.expected}, got ${describeValue(iss.input)}`;
      case "too_big":
      case "too_small": {
        const got = iss.origin === "array" ? "" : `, got ${describeValue(iss.input)}`;
        const limit = iss.code === "too_big" ? iss.maximum : iss.minimum;
        return `${bound(iss.origin, limit, iss.inclusive, iss.code === "too_big")}${got}`;
      }
      case "invalid_value":
        if (iss.input === undefined) return "required key is missing";
        if (iss.values.length === 1) return `must be ${list(iss.values)}, got ${describeValue(iss.input)}`;
        return `must be one of ${list(iss.values)}; got ${describeValue(iss.input)}`;
      case "invalid_union": {
        if (iss.discriminator === undefined) return undefined;
        const options = (Array.isArray(iss.options) ? iss.options : []).map(String);
        const known = list(options);
        const obj = iss.input as Record<string, unknown> | undefined;
        const v = obj && typeof obj === "object" ? obj[iss.discriminator] : undefined;
        if (v === undefined) return `missing '${iss.discriminator}'; known kinds: ${known}`;
        if (typeof v !== "string")
          return `'${iss.discriminator}' must be a string, got ${describeValue(v)}; known kinds: ${known}`;
        const shown = v.length > 40 ? `${v.slice(0, 37)}...` : v;
        const hint = suggest(v, options);
        return `unknown ${iss.discriminator} '${shown}'${hint ? ` (did you mean '${hint}'?)` : ""}; known kinds: ${known}`;
      }
      case "unrecognized_keys": {
        const inst = iss.inst;
        if (inst instanceof z.ZodObject && iss.input && typeof iss.input === "object") {
          allowed.set(iss.input, Object.keys(inst.shape));
        }
        return undefined;
      }
      case "invalid_format":
        return `${iss.message ?? "has the wrong format"}, got ${describeValue(iss.input)}`;
      default:
        return undefined;
    }
  };
}

/** Zod issues → scenario issues with positions; unknown keys become one issue per key, at the key. */
function toScenarioIssues(
  zodIssues: readonly core.$ZodIssue[],
  loc: Locator,
  allowed: AllowedKeys,
): ScenarioIssue[] {
  const out: ScenarioIssue[] = [];
  // One message per field: a huge integer fails both z.int()'s safe range and the field's own bound,
  // and a value that fails a bound may also fail a cross-field rule. Keep the most specific.
  const fields = zodIssues.map((i) => formatPath(i.path));
  const rank = zodIssues.map((i) => (isSafeRangeIssue(i) ? 2 : i.code === "custom" ? 1 : 0));
  const best = new Map<string, number>();
  for (const [n, f] of fields.entries()) best.set(f, Math.min(best.get(f) ?? rank[n], rank[n]));
  for (const [n, iss] of zodIssues.entries()) {
    if (rank[n] > (best.get(fields[n]) ?? 0)) continue;
    const path = iss.path.filter((p): p is string | number => typeof p !== "symbol");
    if (iss.code === "unrecognized_keys") {
      const keys = (iss.input && typeof iss.input === "object" && allowed.get(iss.input)) || [];
      for (const k of iss.keys) {
        const hint = suggest(k, keys);
        const msg =
          `unknown key '${k}'` +
          (hint ? ` (did you mean '${hint}'?)` : "") +
          `; allowed keys: ${keys.join(", ")}`;
        out.push({ ...loc.locate([...path, k], true), field: formatPath([...path, k]), message: msg });
      }
      continue;
    }
    out.push({ ...loc.locate(path), field: formatPath(path), message: iss.message || "invalid value" });
  }
  return out;
}

function isSafeRangeIssue(iss: core.$ZodIssue): boolean {
  if (iss.code !== "too_big" && iss.code !== "too_small") return false;
  const limit = Math.abs(Number(iss.code === "too_big" ? iss.maximum : iss.minimum));
  return limit === Number.MAX_SAFE_INTEGER;
}

const YAML_MESSAGES: Record<string, (detail: string) => string> = {
  DUPLICATE_KEY: () => "duplicate key",
  MULTIPLE_DOCS: () => "a scenario file holds one YAML document; found a second '---' document",
};

/** Syntax-level checks the yaml library does not turn into errors. */
function structuralIssues(doc: YamlDocument.Parsed, loc: Locator): ScenarioIssue[] {
  const out: ScenarioIssue[] = [];
  const add = (offset: number, message: string) => {
    out.push({ ...loc.at(offset), field: formatPath(loc.pathAt(offset)), message });
  };
  visit(doc, {
    Pair(_, pair) {
      if (pair.key !== null && pair.key !== undefined && isCollection(pair.key)) {
        add(pair.key.range?.[0] ?? 0, "mapping keys must be plain strings, not lists or mappings");
      }
      if (isAlias(pair.key)) add(pair.key.range?.[0] ?? 0, "mapping keys must be plain strings, not aliases");
    },
    Alias(_, alias) {
      if (!alias.resolve(doc))
        add(alias.range?.[0] ?? 0, `alias *${alias.source} has no matching anchor before it`);
    },
  });
  return out;
}

/** Parse and validate scenario text. `file` is used in error messages only. */
export function loadScenarioText(text: string, file: string): ScenarioDoc {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const loc = new Locator(new LineIndex(text), doc);

  const syntax = [...doc.errors, ...doc.warnings].map((e): ScenarioIssue => {
    const path = loc.pathAt(e.pos[0]);
    const field = formatPath(path);
    const detail = /call stack/i.test(e.message) ? "nested too deeply" : e.message;
    let message = YAML_MESSAGES[e.code]?.(detail) ?? `invalid YAML: ${detail}`;
    const last = path[path.length - 1];
    if (e.code === "DUPLICATE_KEY" && typeof last === "string") message = `duplicate key '${last}'`;
    return { ...loc.at(e.pos[0]), field, message };
  });
  if (syntax.length > 0) throw new ScenarioError(file, syntax);
  const deep = tooDeep(doc);
  if (deep !== undefined) {
    const message = `nested more than ${MAX_DEPTH} levels deep; a scenario needs at most 5`;
    throw new ScenarioError(file, [{ ...loc.at(deep), field: formatPath(loc.pathAt(deep)), message }]);
  }
  const structural = structuralIssues(doc, loc);
  if (structural.length > 0) throw new ScenarioError(file, structural);

  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    throw new ScenarioError(file, [
      {
        ...loc.at(0),
        field: DOCUMENT,
        message:
          "the scenario is empty; expected a mapping with schemaVersion, name, kernel, vm, vcpus, tasks",
      },
    ]);
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new ScenarioError(file, [
      { ...loc.at(0), field: DOCUMENT, message: `cannot read the YAML: ${reason}` },
    ]);
  }

  const allowed: AllowedKeys = new WeakMap();
  const result = ScenarioSchema.safeParse(data, { error: errorMap(allowed), reportInput: true });
  if (result.success) return result.data;
  throw new ScenarioError(file, toScenarioIssues(result.error.issues, loc, allowed));
}

/** Read and validate a scenario file (.yaml, .yml or .json). */
export function loadScenarioFile(path: string): ScenarioDoc {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : String(e);
    throw new ScenarioError(path, [
      { line: 0, col: 0, field: DOCUMENT, message: `cannot read scenario: ${reason}` },
    ]);
  }
  return loadScenarioText(text, path);
}
