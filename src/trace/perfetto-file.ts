import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { toChromeTrace } from "./perfetto.js";
import type { TraceDoc } from "./schema.js";

/** Write `doc` as Chrome Trace Event JSON to `file` (parent directories created); throws on I/O errors. */
export function writeChromeTrace(file: string, doc: TraceDoc): void {
  mkdirSync(dirname(resolve(file)), { recursive: true });
  writeFileSync(file, `${JSON.stringify(toChromeTrace(doc))}\n`);
}
