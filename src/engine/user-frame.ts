import { UserCodeError } from "./violation.js";

/**
 * Telling the user's code from tdplab's in an error's stack: a frame is tdplab's when its file is
 * under this package's src/, dist/ or web/ (or a dependency, or Node itself); every other file (a
 * variant module, a scenario module, anything they import) is the user's.
 */
// Neither node:url nor new URL(…, import.meta.url) here: the browser explorer's bundle reaches this
// module, and the bundler would take the latter for an asset to emit.
const ROOT = pathOf(import.meta.url).replace(/[^/]+\/[^/]+\/[^/]+$/, "");
const OWN = ["src/", "dist/", "web/"].map((d) => ROOT + d);

const FRAME = /\(?((?:file:\/\/)?\/[^()\s]+?):(\d+):(\d+)\)?\s*$/;

/** The path of a file: URL (POSIX). */
function pathOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname);
}

interface Frame {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

function frames(stack: string): Frame[] {
  const out: Frame[] = [];
  for (const line of stack.split("\n")) {
    if (!/^\s*at /.test(line)) continue;
    const m = FRAME.exec(line);
    if (m === null) continue;
    const file = m[1].startsWith("file://") ? pathOf(m[1]) : m[1];
    out.push({ file, line: Number(m[2]), col: Number(m[3]) });
  }
  return out;
}

function isOwn(file: string): boolean {
  return OWN.some((d) => file.startsWith(d)) || file.includes("/node_modules/");
}

export interface ErrorOrigin {
  /** The error is the user's: thrown in their code, or a UserCodeError. */
  readonly user: boolean;
  /** FILE:LINE:COL of the innermost frame in the user's code, if the stack has one. */
  readonly where: string | null;
}

/** Whose error `e` is, and where in the user's code it happened. */
export function errorOrigin(e: unknown): ErrorOrigin {
  const stack = e instanceof Error ? (e.stack ?? "") : "";
  const fs = frames(stack);
  const mine = fs.find((f) => !isOwn(f.file));
  const where = mine ? `${mine.file}:${mine.line}:${mine.col}` : null;
  const user = e instanceof UserCodeError || (fs.length > 0 && !isOwn(fs[0].file));
  return { user, where };
}

/** What a value is, for messages about the wrong kind of value. */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "function") return `a function (${v.name || "anonymous"})`;
  if (typeof v === "object") return "an object that is not a generator";
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** A generator object (anything the engine can step through with next()). */
export function isGenerator(v: unknown): boolean {
  return typeof v === "object" && v !== null && typeof (v as { next?: unknown }).next === "function";
}
