import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type ChromeTrace, toChromeTrace } from "./perfetto.js";
import { type SimRunForTrace, simPerfetto } from "./perfetto-sim.js";
import type { TraceDoc } from "./schema.js";

function writeJson(file: string, trace: ChromeTrace): void {
  mkdirSync(dirname(resolve(file)), { recursive: true });
  writeFileSync(file, `${JSON.stringify(trace)}\n`);
}

/** Write `doc` as Chrome Trace Event JSON to `file` (parent directories created); throws on I/O errors. */
export function writeChromeTrace(file: string, doc: TraceDoc): void {
  writeJson(file, toChromeTrace(doc));
}

/** Write simulator runs (simulated with timeline: true) as Chrome Trace Event JSON; throws on I/O errors. */
export function writeSimChromeTrace(file: string, runs: readonly SimRunForTrace[]): void {
  writeJson(file, simPerfetto(runs));
}
