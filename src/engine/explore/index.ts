/**
 * The exploration engine of the checker: explores any Program (see
 * ../runtime.ts) and returns what it found as data. It knows nothing of locks,
 * RCU or KVM: dependency is read off the access ops (a step writes `obj` for
 * write/rmw/acquire/release, reads it for read/wait, reads every id in `objs`).
 *
 * - explore(program, opts) / exploreAsync(program, opts): strategies "dpor"
 *   (Optimal-DPOR with wakeup trees and sleep sets, one execution per
 *   Mazurkiewicz trace), "bounded" (preemption-bounded DFS), "pct", "random",
 *   "exhaustive" (plain DFS); checkpoint/resume for dpor, exhaustive, bounded.
 * - exploreParallel(spec, opts): the same over worker_threads.
 * - shrink(program, choices): fewest preemptions, then fewest steps.
 * - measure(program, opts): executions/s and steps/s.
 *
 * Assumptions the reduction relies on (true of the kernel layer's primitives):
 * an op's enabled() predicate and a data choice's range depend only on the
 * objects the op names and on the task's own state; shared state changes only
 * inside steps. Checks registered with addCheck() see one linearisation per
 * trace: a check that depends on the interleaving of independent steps (a
 * transient global state) can miss a state another linearisation of the same
 * trace passes through; such an invariant must read its objects through ops,
 * or be checked where the state is stable.
 */
export { explore, exploreAsync } from "./explore.js";
export { type Measurement, type MeasureOptions, measure } from "./measure.js";
export { exploreParallel, type ParallelOptions } from "./parallel.js";
export type { ProgramSpec } from "./program-spec.js";
export { type ShrinkOptions, type ShrinkResult, shrink } from "./shrink.js";
export type {
  Checkpoint,
  CutReason,
  ExploreOptions,
  ExploreResult,
  ExploreStats,
  ExploreViolation,
  Progress,
  RunSummary,
  Strategy,
} from "./types.js";
