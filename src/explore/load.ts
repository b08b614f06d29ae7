import { readFileSync } from "node:fs";
import { DocError, type ExplorerDoc, parseExplorerDoc } from "./doc.js";
import { ExploreError } from "./errors.js";

/** Read a trace file for the explorer: a checker trace (TraceDoc) or simulator runs (SimTraceDoc). */
export function loadExplorerFile(file: string): ExplorerDoc {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ExploreError(
      `cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ExploreError(`${file}: not JSON: ${(e as Error).message}`);
  }
  try {
    return parseExplorerDoc(json);
  } catch (e) {
    if (e instanceof DocError) throw new ExploreError(`${file}: ${e.message}`);
    throw e;
  }
}
