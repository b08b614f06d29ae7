/**
 * Errors a scenario file can produce. One type for every kind of bad input (unreadable file, YAML
 * syntax, schema violation, cross-field rule) so the CLI has one thing to catch and one exit code.
 */

/** One problem at one place in a scenario file. line/col are 1-based; 0 means "no position". */
export interface ScenarioIssue {
  readonly line: number;
  readonly col: number;
  /** Dotted/indexed path of the field at fault, e.g. `tasks[2].faults[0].gfn`; DOCUMENT for the whole file. */
  readonly field: string;
  readonly message: string;
}

/** `field` of issues that concern the whole document rather than one field. */
export const DOCUMENT = "(document)";

/** Exit code the CLI uses for usage, config and scenario-validation errors (see ts-ecosystem.md §5). */
export const SCENARIO_EXIT_CODE = 2;

/** At most this many issues are kept; a badly broken file would otherwise print thousands. */
export const MAX_ISSUES = 50;

/**
 * A scenario file that cannot be used. The fields describe the first issue in file order;
 * `issues` holds the first MAX_ISSUES issues found, in file order (at least one), and `omitted` counts the rest.
 */
export class ScenarioError extends Error {
  override name = "ScenarioError";
  readonly exitCode = SCENARIO_EXIT_CODE;
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly field: string;
  readonly issues: readonly ScenarioIssue[];
  readonly omitted: number;

  constructor(file: string, issues: readonly ScenarioIssue[]) {
    if (issues.length === 0) throw new TypeError("ScenarioError needs at least one issue");
    const seen = new Set<string>();
    const sorted = [...issues]
      .sort((a, b) => a.line - b.line || a.col - b.col)
      .filter((i) => {
        const k = `${i.line}:${i.col}:${i.field}:${i.message}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      });
    const first = sorted[0];
    super(first.message);
    this.file = file;
    this.line = first.line;
    this.col = first.col;
    this.field = first.field;
    this.issues = sorted.slice(0, MAX_ISSUES);
    this.omitted = sorted.length - this.issues.length;
  }

  /** `file:line:col: field: message` for the first issue. */
  override toString(): string {
    return formatIssue(this.file, this.issues[0]);
  }

  /** Every kept issue, one per line, in file order. */
  report(): string {
    const lines = this.issues.map((i) => formatIssue(this.file, i));
    if (this.omitted > 0)
      lines.push(`${this.file}: ${this.omitted} more issue${this.omitted === 1 ? "" : "s"} not shown`);
    return lines.join("\n");
  }
}

/** `file:line:col: field: message`; without a position (line 0) just `file: field: message`. */
export function formatIssue(file: string, issue: ScenarioIssue): string {
  const where = issue.line > 0 ? `${file}:${issue.line}:${issue.col}` : file;
  return `${where}: ${issue.field}: ${issue.message}`;
}

/** `["tasks", 2, "faults", 0, "gfn"]` → `tasks[2].faults[0].gfn`; `[]` → DOCUMENT. Long paths are elided. */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return DOCUMENT;
  if (path.length > 16) {
    const tail = path.slice(-4).map((seg) => segment(seg, false));
    return `${formatPath(path.slice(0, 8))}...(${path.length - 12} more)...${tail.join("")}`;
  }
  return path.map((seg, i) => segment(seg, i === 0)).join("");
}

function segment(seg: PropertyKey, first: boolean): string {
  if (typeof seg === "number") return `[${seg}]`;
  const full = String(seg);
  const s = full.length > 40 ? `${full.slice(0, 37)}...` : full;
  if (/^[A-Za-z_$][\w$-]*$/.test(s)) return first ? s : `.${s}`;
  return `[${JSON.stringify(s)}]`;
}

/** A short, quoted rendering of a user value for messages. */
export function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (typeof v === "string") {
    const s = v.length > 40 ? `${v.slice(0, 37)}...` : v;
    return `a string (${JSON.stringify(s)})`;
  }
  if (typeof v === "number") {
    if (Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return v > 0 ? "Infinity" : "-Infinity";
    return Number.isInteger(v) ? `the integer ${v}` : `the number ${v}`;
  }
  if (typeof v === "boolean") return `the boolean ${v}`;
  if (typeof v === "bigint") return `the integer ${v}`;
  if (Array.isArray(v)) return "a list";
  if (v instanceof Date) return "a timestamp";
  if (v instanceof Map) return "a map with non-string keys";
  if (v instanceof Set) return "a set";
  if (v instanceof Uint8Array) return "binary data";
  if (typeof v === "object") return "a mapping";
  return typeof v;
}

/** Edit distance counting a swap of two adjacent characters as one edit (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** The closest candidate to `word` if it is plausibly a typo of it (case-insensitive). */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}
