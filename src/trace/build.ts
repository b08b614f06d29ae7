import type { RunResult } from "../engine/runtime.js";
import { TOOL_VERSION } from "../version.js";
import type { SpawnSite } from "./record.js";
import { TRACE_SCHEMA_VERSION, type TraceDoc, type TraceRunInfo } from "./schema.js";
import type { TraceState } from "./state-schema.js";

/** What a recorded replay adds to a run (src/trace/record.ts). */
export interface TraceExtras {
  readonly spawns?: readonly SpawnSite[];
  readonly initialState?: TraceState;
  readonly states?: readonly TraceState[];
}

/** Turn a recorded run into the versioned trace document. */
export function buildTraceDoc(
  r: RunResult,
  run: TraceRunInfo,
  replay: string,
  extras: TraceExtras = {},
): TraceDoc {
  if (r.trace === null) throw new Error("buildTraceDoc needs a run recorded with record: true");
  const v = r.violations[0];
  const { spawns, states, initialState } = extras;
  if (states !== undefined && states.length !== r.trace.length)
    throw new Error(`buildTraceDoc: ${states.length} states for ${r.trace.length} steps`);
  return {
    schemaVersion: TRACE_SCHEMA_VERSION,
    tool: { name: "tdplab", version: TOOL_VERSION },
    run,
    replay,
    tasks: r.taskNames.map((name, id) => {
      const sp = spawns?.[id];
      return { id, name, lane: r.taskLanes[id], ...(sp ? { parent: sp.parent, spawnStep: sp.step } : {}) };
    }),
    objects: [...r.objectNames],
    steps: r.trace.map((s, i) => ({ i, task: s.task, kind: s.kind, obj: s.obj, fn: s.fn, step: s.step })),
    violation: v
      ? {
          invariant: v.invariant,
          message: v.message,
          task: v.task,
          taskName: v.taskName,
          step: v.step,
          fn: v.fn,
          details: JSON.parse(JSON.stringify(v.details)) as Record<string, unknown>,
        }
      : null,
    ...(initialState ? { initialState } : {}),
    ...(states ? { states: [...states] } : {}),
  };
}
