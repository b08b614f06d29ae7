import {
  decodeReplay as decodeScenarioReplay,
  ReplayError,
  type ReplayFiles,
  recordReplay,
} from "../scenarios/replay.js";
import type { ReplayToken } from "../trace/replay-token.js";
import type { TraceDoc } from "../trace/schema.js";
import { ExploreError } from "./errors.js";

/** Decode a replay string; a malformed one is the user's error. */
export function decodeReplay(replay: string): ReplayToken {
  try {
    return decodeScenarioReplay(replay);
  } catch (e) {
    if (e instanceof ReplayError) throw new ExploreError(e.message);
    throw e;
  }
}

/**
 * The trace document of a replay string (recordReplay, the code path of `tdplab replay`). A
 * string recorded on a scenario file or a variant module replays only with the files passed here
 * (checked against the hashes the string recorded): a replay string never loads a file itself.
 */
export async function traceFromReplay(replay: string, files: ReplayFiles = {}): Promise<TraceDoc> {
  try {
    return (await recordReplay(replay, files)).doc;
  } catch (e) {
    if (e instanceof ReplayError) throw new ExploreError(e.message);
    throw e;
  }
}
