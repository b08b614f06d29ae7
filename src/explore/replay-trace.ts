import { BUILTIN_SCENARIOS } from "../scenarios/builtin/index.js";
import { decodeReplay as decodeScenarioReplay, ReplayError, recordReplay } from "../scenarios/replay.js";
import { BUILTIN_VARIANTS } from "../scenarios/variants/index.js";
import type { ReplayHeader, ReplayToken } from "../trace/replay-token.js";
import type { TraceDoc } from "../trace/schema.js";
import { ExploreError } from "./errors.js";

/**
 * Which scenario and variant references a replay string may name. Built-in names are always fine.
 * A file reference loads (and, for a .ts/.js module, runs) that file, so a server regenerating
 * traces from URLs takes only the files of the trace it was started on.
 */
export type FileRefPolicy = "any" | ReadonlySet<string>;

const isBuiltinScenario = (ref: string) => BUILTIN_SCENARIOS.some((s) => s.name === ref);
const isBuiltinVariant = (ref: string) => BUILTIN_VARIANTS.some((v) => v.name === ref);

/** The file references (scenario and variant) a replay header names, besides built-in names. */
export function fileRefsOf(h: ReplayHeader): string[] {
  const out: string[] = [];
  if (!isBuiltinScenario(h.s)) out.push(h.s);
  if (h.v && !isBuiltinVariant(h.v)) out.push(h.v);
  return out;
}

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
 * The trace document of a replay string (recordReplay, the code path of `tdplab replay`), after
 * checking that it names no file outside `files`.
 */
export async function traceFromReplay(replay: string, files: FileRefPolicy = "any"): Promise<TraceDoc> {
  const h = decodeReplay(replay).header;
  if (files !== "any") {
    const refused = fileRefsOf(h).filter((r) => !files.has(r));
    if (refused.length > 0)
      throw new ExploreError(
        `this replay string names ${refused.map((r) => `'${r}'`).join(" and ")}, which is not built in; the explorer regenerates traces of built-in scenarios and variants, and of the files of the trace it was started on`,
      );
  }
  try {
    return (await recordReplay(replay)).doc;
  } catch (e) {
    if (e instanceof ReplayError) throw new ExploreError(e.message);
    throw e;
  }
}
