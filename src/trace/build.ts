import type { RunResult } from "../engine/runtime.js";
import { TOOL_VERSION } from "../version.js";
import { TRACE_SCHEMA_VERSION, type TraceDoc, type TraceRunInfo } from "./schema.js";

/** Turn a recorded run into the versioned trace document. */
export function buildTraceDoc(r: RunResult, run: TraceRunInfo, replay: string, states?: unknown[]): TraceDoc {
  if (r.trace === null) throw new Error("buildTraceDoc needs a run recorded with record: true");
  const v = r.violations[0];
  return {
    schemaVersion: TRACE_SCHEMA_VERSION,
    tool: { name: "tdplab", version: TOOL_VERSION },
    run,
    replay,
    tasks: r.taskNames.map((name, id) => ({ id, name, lane: r.taskLanes[id] })),
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
    ...(states ? { states } : {}),
  };
}
