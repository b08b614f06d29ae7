import type { Features } from "../../mmu/features.js";
import { machineSettingsOf, SimParamError, type SimPlan } from "./params.js";
import type { SimScenarioRun } from "./types.js";

/** One finished run and the index of the sweep point it belongs to. */
export interface SimRecord {
  readonly point: number;
  readonly run: SimScenarioRun;
}

export interface RunPlanOptions {
  readonly seed?: number;
  readonly timeline?: boolean;
  /** A variant's overrides, applied in every run. */
  readonly overrides?: ReadonlyMap<string, Function>;
  /** Feature values on top of every run's kernel preset (SimRunOptions.features). */
  readonly features?: Partial<Features>;
  /** Called before point `i` starts (for a progress line). */
  readonly onPoint?: (i: number) => void;
  /**
   * Asked before each point and now and then inside its runs (SimOptions.stop); true stops the
   * sweep, and a point cut short is left out (e.g. after SIGINT).
   */
  readonly stop?: () => boolean;
}

export interface PlanOutcome {
  readonly records: SimRecord[];
  /** Points that ran to the end. */
  readonly completed: number;
  readonly interrupted: boolean;
}

/**
 * Run every point of a plan in order, keeping the runs the kernel filter allows. Between points it
 * yields to the event loop once, so that a SIGINT handler gets to run; inside a point the simulator
 * asks `stop` itself, so a stop flag another thread sets (simulate runs in a worker) cuts even a
 * point of seconds short. A RangeError from a scenario (a combination of parameters it refuses)
 * becomes a SimParamError.
 */
export async function runPlan(plan: SimPlan, o: RunPlanOptions = {}): Promise<PlanOutcome> {
  const records: SimRecord[] = [];
  const kernelsSeen = new Set<string>();
  for (let i = 0; i < plan.points.length; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (o.stop?.()) return { records, completed: i, interrupted: true };
    o.onPoint?.(i);
    const point = plan.points[i];
    let runs: SimScenarioRun[];
    try {
      runs = plan.scenario.run(point.params, point.costs, {
        seed: o.seed,
        timeline: o.timeline,
        overrides: o.overrides,
        features: o.features,
        stop: o.stop,
        machine: machineSettingsOf(plan.scenario, point.params),
      });
    } catch (e) {
      // A scenario may refuse the partial result of a run cut short: that is the stop, not an error.
      if (o.stop?.()) return { records, completed: i, interrupted: true };
      if (e instanceof RangeError) {
        throw new SimParamError(
          `${plan.scenario.name}${point.label ? ` at ${plan.sweep?.key}=${point.label}` : ""}: ${e.message}`,
        );
      }
      throw e;
    }
    if (runs.some((r) => r.results?.some((x) => x.status === "interrupted")))
      return { records, completed: i, interrupted: true };
    for (const run of runs) {
      kernelsSeen.add(run.kernel);
      if (plan.kernelFilter === null || run.kernel === plan.kernelFilter) records.push({ point: i, run });
    }
    if (plan.kernelFilter !== null && i === 0 && records.length === 0) {
      throw new SimParamError(
        `--kernel: ${plan.scenario.name} has no run on ${plan.kernelFilter}; its runs are on ${[...kernelsSeen].join(", ")}`,
      );
    }
  }
  return { records, completed: plan.points.length, interrupted: false };
}
