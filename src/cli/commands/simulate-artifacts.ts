import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { SimResult } from "../../engine/sim/simulator.js";
import { simPerfetto } from "../../trace/perfetto-sim.js";
import { buildSimTraceDoc } from "../../trace/sim-trace.js";
import { SimTraceDoc } from "../../trace/sim-trace-schema.js";
import { UsageError } from "../exit-codes.js";

/**
 * The trace files `tdplab simulate` writes from the runs' timelines: --perfetto (Chrome Trace Event
 * JSON for ui.perfetto.dev) and --trace (the explorer's sim trace document, src/trace/sim-trace-schema.ts).
 * The converters live in src/trace/.
 */

export interface TimelineRun {
  readonly label: string;
  readonly kernel: string;
  readonly result: SimResult;
}

function write(flag: string, file: string, text: string): void {
  try {
    mkdirSync(dirname(resolve(file)), { recursive: true });
    writeFileSync(file, text);
  } catch (e) {
    throw new UsageError(`${flag}: cannot write '${file}': ${(e as Error).message}`);
  }
}

export async function writeSimArtifact(
  flag: "--perfetto" | "--trace",
  file: string,
  runs: readonly TimelineRun[],
  scenario: string,
): Promise<void> {
  if (runs.length === 0 || runs.some((r) => r.result.timeline === undefined)) {
    throw new UsageError(
      `${flag}: ${scenario} returned no timeline for its runs, so there is nothing to write`,
    );
  }
  if (flag === "--perfetto") {
    write(flag, file, `${JSON.stringify(simPerfetto(runs))}\n`);
    return;
  }
  // Validated against the schema the explorer loads with, so a file written here always opens there.
  const doc = SimTraceDoc.parse(buildSimTraceDoc(runs, scenario));
  write(flag, file, `${JSON.stringify(doc)}\n`);
}
