import type { RunResult } from "../runtime.js";
import type { Violation } from "../violation.js";

export type Strategy = "dpor" | "portfolio" | "bounded" | "pct" | "random" | "exhaustive";

/**
 * Why an exploration did not cover its whole space. Every bound that cut
 * something is named; nothing is cut silently.
 * - max-executions, time-limit: the budget ran out (sampling strategies always end this way);
 * - depth: some execution reached maxSteps and was truncated;
 * - preemptions: the preemption bound pruned some schedule;
 * - interrupted: the AbortSignal fired;
 * - first-violation: the search stopped at the first violation (stopOnFirstViolation).
 */
export type CutReason =
  | "max-executions"
  | "time-limit"
  | "depth"
  | "preemptions"
  | "interrupted"
  | "first-violation";

export interface Progress {
  readonly executions: number;
  readonly steps: number;
  /** Depth (steps) of the execution just finished. */
  readonly depth: number;
  readonly elapsedMs: number;
  readonly blockedExecutions: number;
}

export interface RunSummary {
  readonly violations: readonly Violation[];
  readonly choices: readonly number[];
  readonly steps: number;
  readonly blocked: boolean;
  readonly depthCut: boolean;
}

export interface ExploreOptions {
  /** Default "dpor". */
  readonly strategy?: Strategy;
  /** Default: unlimited for dpor/exhaustive/bounded, 1000 for pct/random. */
  readonly maxExecutions?: number;
  readonly timeLimitMs?: number;
  /** Depth bound: steps per execution (default 10000). A truncated execution is reported as cutBy "depth". */
  readonly maxSteps?: number;
  /** For "bounded" (default 2). */
  readonly preemptionBound?: number;
  /** For "pct": the bug depth d (default 3). */
  readonly pctDepth?: number;
  /** For "pct" and "random" (default 0). */
  readonly seed?: bigint;
  /** Default true. */
  readonly stopOnFirstViolation?: boolean;
  /**
   * End each run at its first violation. Default: the value of stopOnFirstViolation. With the
   * default (stop everything at the first violation) the verdict is exact: DPOR runs exactly the
   * executions it would run without stopping until the first violation. When the search goes on
   * (stopOnFirstViolation false) runs continue past violations by default, so that every distinct
   * violation of every trace is seen; truncating runs there could hide a second violation that
   * only some linearisation of the same trace reaches before the first one.
   */
  readonly stopRunAtViolation?: boolean;
  /** Count, per model function, the executions that enter it (ExploreStats.coverage). */
  readonly coverage?: boolean;
  /**
   * DPOR and portfolio: ignore declared commutativity classes and completions, so every access
   * depends on every other access of its objects (a cross-check; slower). Default false.
   */
  readonly plainDependence?: boolean;
  readonly overrides?: ReadonlyMap<string, Function>;
  /** Called at most every ~100 ms. */
  readonly onProgress?: (p: Progress) => void;
  /** Aborting stops the run cleanly: the result says cutBy "interrupted" and carries a checkpoint. */
  readonly signal?: AbortSignal;
  /**
   * Called after every run (tests, coverage tools): its violations, choices, steps, and whether it
   * was abandoned as redundant (blocked) or truncated at the depth bound.
   */
  readonly onExecution?: (run: RunSummary) => void;
  /** Continue an exhaustive (dpor/exhaustive/bounded) run from the checkpoint of an earlier result. */
  readonly resumeFrom?: Checkpoint;
  /**
   * exploreAsync() only: every `checkpointEveryMs` (between two executions), hand `onCheckpoint` a
   * checkpoint of the run so far, from which resumeFrom continues exactly as the run itself does.
   * A crash or kill then loses at most that much work.
   */
  readonly checkpointEveryMs?: number;
  readonly onCheckpoint?: (c: Checkpoint) => void;
}

export interface ExploreViolation {
  /** The violating run, re-run with record: true (so it has a trace). */
  readonly result: RunResult;
  readonly choices: readonly number[];
  /** encodeChoices(choices): feed to a ReplayScheduler to reproduce it. */
  readonly replay: string;
}

export interface ExploreStats {
  /** Longest execution (steps). */
  maxDepth: number;
  /** Executions (not counting blocked runs) that ended with at least one violation. */
  violatingExecutions: number;
  /** Violations per invariant name, over those executions. */
  violationsByInvariant: Record<string, number>;
  /** Executions truncated by maxSteps. */
  depthCuts: number;
  /** DPOR: races found, reversals inserted into wakeup trees, reversals dropped as infeasible. */
  races: number;
  insertions: number;
  infeasibleRaces: number;
  /** DPOR: wakeup-tree branches found infeasible (their first step blocked) and dropped. */
  deadBranches: number;
  /** Largest wakeup-tree node count on the stack after an execution (memory gauge). */
  maxWakeupNodes: number;
  /** Deepest exploration stack seen (memory gauge). */
  maxStack: number;
  /** Portfolio: random and PCT runs made beside DPOR (not counted as executions). */
  sampledRuns: number;
  /** Overrides (by kernel name) that at least one run called. */
  overridesRan: string[];
  /** With coverage on: per model function, the executions (not sampled runs) that entered it. */
  coverage?: Record<string, number>;
}

/** Plain-JSON exploration state; `explore(program, { resumeFrom })` continues from it. */
export interface Checkpoint {
  readonly version: 1;
  readonly strategy: Strategy;
  readonly executions: number;
  readonly blockedExecutions: number;
  readonly steps: number;
  readonly elapsedMs: number;
  readonly cutBy: readonly CutReason[];
  readonly stats: ExploreStats;
  /** Strategy-specific search state (see dfs.ts and dpor-state.ts). */
  readonly state: unknown;
}

export interface ExploreResult {
  readonly strategy: Strategy;
  /** The whole space (up to nothing) was explored: no cut, no early stop. */
  readonly complete: boolean;
  readonly cutBy: readonly CutReason[];
  /** Executions run to their end (or to a violation, or truncated at the depth bound). */
  readonly executions: number;
  /** Total steps executed over all runs. */
  readonly steps: number;
  readonly elapsedMs: number;
  /** DPOR: runs abandoned because every continuation was already covered (sleep-set blocked). */
  readonly blockedExecutions?: number;
  readonly violation: ExploreViolation | null;
  readonly stats: ExploreStats;
  /** For dpor/exhaustive/bounded runs that stopped early: pass as resumeFrom to continue. */
  readonly checkpoint?: Checkpoint;
}

export function emptyStats(): ExploreStats {
  return {
    maxDepth: 0,
    violatingExecutions: 0,
    violationsByInvariant: {},
    depthCuts: 0,
    races: 0,
    insertions: 0,
    infeasibleRaces: 0,
    deadBranches: 0,
    maxWakeupNodes: 0,
    maxStack: 0,
    sampledRuns: 0,
    overridesRan: [],
  };
}
