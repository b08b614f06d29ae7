import type { StepRecord } from "./runtime.js";

/**
 * A run's tail that repeats one cycle of steps: the shape of a livelock (a lasso: a stem, then the
 * same loop again and again).
 *
 * What it proves, and what it does not. Tasks are deterministic generators, so a task's future
 * depends on its local state and on the values it will observe. If the whole system's state (every
 * shared value and every task's local state) were the same at the start of two consecutive
 * cycles, the schedule that repeats the cycle would repeat it forever: an infinite execution. The
 * engine sees neither: it sees which task made which access to which object, in which model
 * function, not the values read nor the tasks' local variables. Equal steps are therefore only
 * evidence: `while (i++ < 1e9) yield* READ_ONCE(x)` repeats the same step a billion times and ends.
 * A lasso found here is a *suspected* livelock; a caller must not report it as a violation.
 */
export interface Lasso {
  /** Index of the first step of the repeating tail. */
  readonly fromStep: number;
  /** Steps per cycle. */
  readonly period: number;
  /** Complete cycles in the tail (at least `minRepeats`). */
  readonly repeats: number;
  /** Tasks (ids) that take steps in the cycle, in order of first appearance. */
  readonly tasks: readonly number[];
  /** Model functions the cycle's steps are in, in order of first appearance. */
  readonly fns: readonly string[];
}

/**
 * The repeating tail of `trace`, if its last steps are at least `minRepeats` copies of one cycle:
 * of the cycles that do, the one whose repeats cover the most steps (the shortest on a tie), taken
 * as far back as it repeats. Null when the tail does not repeat. A periodic tail holds no task's
 * last step (the task steps again a cycle later), so no task finishes in it; a spawn would show as
 * steps of a new task id, which never repeat.
 */
export function findLasso(trace: readonly StepRecord[], minRepeats = 2): Lasso | null {
  const n = trace.length;
  // One small integer per distinct step, so that the scans compare numbers.
  const ids = new Map<string, number>();
  const code = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const s = trace[i];
    const key = `${s.task}\u0000${s.kind}\u0000${s.obj}\u0000${s.fn}\u0000${s.step}`;
    let id = ids.get(key);
    if (id === undefined) {
      id = ids.size;
      ids.set(key, id);
    }
    code[i] = id;
  }
  let best: { period: number; repeats: number } | null = null;
  for (let p = 1; p * minRepeats <= n; p++) {
    // Length of the tail that is p-periodic: every step equals the one p steps before it.
    let i = n - 1;
    while (i >= p && code[i] === code[i - p]) i--;
    const repeats = Math.floor((n - 1 - i + p) / p);
    if (repeats < minRepeats) continue;
    if (best === null || repeats * p > best.repeats * best.period) best = { period: p, repeats };
    // Nothing covers more than the whole run.
    if (best.repeats * best.period === n) break;
  }
  if (best === null) return null;
  const { period, repeats } = best;
  const fromStep = n - repeats * period;
  const tasks: number[] = [];
  const fns: string[] = [];
  for (let j = fromStep; j < fromStep + period; j++) {
    if (!tasks.includes(trace[j].task)) tasks.push(trace[j].task);
    if (!fns.includes(trace[j].fn)) fns.push(trace[j].fn);
  }
  return { fromStep, period, repeats, tasks, fns };
}
