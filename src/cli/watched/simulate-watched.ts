import type { PlanOutcome } from "../../scenarios/sim/run-plan.js";
import { EXIT } from "../exit-codes.js";
import type { WatchedJob } from "./jobs.js";
import { stallMessage } from "./stall.js";
import { runWatched } from "./watchdog.js";

/** A simulation that had to be killed: what to tell the user, and the exit code. */
export interface KilledSimulation {
  readonly killed: true;
  readonly text: string;
  readonly code: number;
}

export function isKilledSimulation(r: PlanOutcome | KilledSimulation): r is KilledSimulation {
  return (r as KilledSimulation).killed === true;
}

/**
 * runPlan() in a worker thread: this thread stays free for Ctrl-C and sets the stop flag the
 * simulator polls between events, so even one point of seconds ends within a second, with the
 * points finished before it. A variant module of the user's is watched for loops that never yield.
 */
export async function runPlanWatched(
  job: Extract<WatchedJob, { kind: "simulate" }>,
  opts: { signal: AbortSignal; stepTimeoutMs: number; watchTasks: boolean; onPoint: (i: number) => void },
): Promise<PlanOutcome | KilledSimulation> {
  const w = await runWatched(job, {
    signal: opts.signal,
    stepTimeoutMs: opts.stepTimeoutMs,
    choiceCapacity: 0,
    watchTasks: opts.watchTasks,
    onEvent: (e) => {
      if (e.type === "point") opts.onPoint(e.index);
    },
  });
  if (w.kind === "done") return w.value as PlanOutcome;
  const stall = stallMessage(w);
  return stall === null
    ? {
        killed: true,
        text: `simulate: stopped (${w.why}): the simulation did not answer within a second, and what it had finished is lost`,
        code: EXIT.interrupted,
      }
    : {
        killed: true,
        text: `simulate: error in your module: ${stall.message}\n  ${stall.where}`,
        code: EXIT.userError,
      };
}
