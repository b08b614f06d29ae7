import type { SimResult } from "../engine/sim/simulator.js";
import { TOOL_VERSION } from "../version.js";
import { SIM_TRACE_SCHEMA_VERSION, type SimTraceDoc, type SimTraceRun } from "./sim-trace-schema.js";

/** One labelled simulator run recorded with SimOptions.timeline. */
export interface SimRunInput {
  readonly label: string;
  /** Kernel preset of the run, when the caller knows it. */
  readonly kernel?: string | null;
  readonly result: SimResult;
}

/**
 * The explorer's document for timed runs. Every field is copied out as plain data, so the document
 * is independent of the simulator's objects; spans are ordered by start time, steps before waits of
 * the same instant, which is the order the explorer's cursor walks.
 */
export function buildSimTraceDoc(runs: readonly SimRunInput[], scenario: string): SimTraceDoc {
  return {
    schemaVersion: SIM_TRACE_SCHEMA_VERSION,
    kind: "sim",
    tool: { name: "tdplab", version: TOOL_VERSION },
    scenario,
    runs: runs.map(simTraceRun),
  };
}

function simTraceRun(run: SimRunInput): SimTraceRun {
  const r = run.result;
  const tl = r.timeline;
  if (tl === undefined)
    throw new Error(`buildSimTraceDoc: run '${run.label}' has no timeline (simulate with timeline: true)`);
  const byStart = <T extends { startNs: number }>(a: T, b: T) => a.startNs - b.startNs;
  return {
    label: run.label,
    kernel: run.kernel ?? null,
    virtualNs: r.virtualNs,
    status: r.status,
    tasks: r.perTask.map((t, id) => ({ id, name: t.name, lane: t.lane, cpu: t.cpu })),
    steps: tl.steps
      .map((s) => ({
        task: s.task,
        cpu: s.cpu,
        startNs: s.startNs,
        endNs: s.endNs,
        kind: s.kind,
        fn: s.fn,
        step: s.step,
        objName: s.objName,
        weight: s.weight,
      }))
      .sort(byStart),
    waits: tl.waits
      .map((w) => ({
        task: w.task,
        cpu: w.cpu,
        startNs: w.startNs,
        endNs: w.endNs,
        kind: w.kind,
        fn: w.fn,
        step: w.step,
        objName: w.objName,
      }))
      .sort(byStart),
  };
}
