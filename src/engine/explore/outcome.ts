import type { Violation } from "../violation.js";

/** What one run of a searcher produced, as the driver needs it. */
export interface RunOutcome {
  readonly violations: readonly Violation[];
  /** The runtime's recorded choices: replayable with a ReplayScheduler. */
  readonly choices: readonly number[];
  readonly steps: number;
  /** Abandoned as redundant (sleep-set blocked): not counted as an execution. */
  readonly blocked: boolean;
  /** Truncated at maxSteps. */
  readonly depthCut: boolean;
  /**
   * Stopped mid-run by the time limit or the AbortSignal. The searcher has
   * rolled back to its state before the run, so a resumed search re-runs it.
   */
  readonly interrupted: boolean;
  /** Names of the overrides the run called. */
  readonly overridesRan?: readonly string[];
  /** Model functions the run entered (coverage on). */
  readonly functionsRun?: readonly string[];
  /** A run a portfolio sampled beside its exhaustive search: it adds counterexamples, not coverage. */
  readonly sampled?: boolean;
}

/** Checked every INTERRUPT_EVERY steps inside a run. */
export type StopCheck = () => boolean;
export const INTERRUPT_EVERY = 1024;

/**
 * A search strategy, driven one run at a time by explore(): run() executes
 * the next schedule, advance() moves to the following one and returns false
 * when the space is exhausted.
 */
export interface Searcher {
  run(stop?: StopCheck): RunOutcome;
  advance(): boolean;
  /** Some schedule was pruned by a bound of the strategy itself (the preemption bound). */
  readonly boundCut: boolean;
  /** Plain-JSON state for resuming, taken between runs (after advance()); null if not resumable. */
  checkpointState(): unknown;
  /** Strategy counters merged into the result's stats. */
  readonly counters: Partial<Record<"races" | "insertions" | "infeasibleRaces" | "deadBranches", number>>;
  /** Memory gauges: current stack depth and wakeup-tree nodes held. */
  memory(): { stack: number; wakeupNodes: number };
}
