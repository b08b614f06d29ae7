import type { Program } from "../runtime.js";
import { explore } from "./explore.js";
import type { ExploreOptions, Strategy } from "./types.js";

export interface MeasureOptions extends ExploreOptions {
  /** Untimed warm-up exploration first, so the JIT has settled (default 200 ms). */
  readonly warmupMs?: number;
  /** Timed repetitions; the median is reported (default 3). */
  readonly repeat?: number;
}

export interface Measurement {
  readonly strategy: Strategy;
  readonly executions: number;
  readonly steps: number;
  readonly elapsedMs: number;
  readonly executionsPerSec: number;
  readonly stepsPerSec: number;
  /** Whether each timed exploration covered the whole space. */
  readonly complete: boolean;
  readonly blockedExecutions: number;
  /** All repetitions, for spread. */
  readonly samples: readonly { readonly executionsPerSec: number; readonly stepsPerSec: number }[];
}

/**
 * Micro-benchmark of one strategy on one program: executions/s and steps/s,
 * median of `repeat` timed explorations after a warm-up. Bound the work with
 * maxExecutions or timeLimitMs in the options for large spaces.
 */
export function measure(program: Program, opts: MeasureOptions = {}): Measurement {
  const { warmupMs = 200, repeat = 3, ...explorePlain } = opts;
  const base: ExploreOptions = { stopOnFirstViolation: false, ...explorePlain };
  if (warmupMs > 0)
    explore(program, { ...base, timeLimitMs: Math.min(warmupMs, base.timeLimitMs ?? warmupMs) });
  const runs: { ex: number; steps: number; ms: number; complete: boolean; blocked: number }[] = [];
  for (let i = 0; i < Math.max(1, repeat); i++) {
    const t = performance.now();
    const r = explore(program, base);
    const ms = Math.max(performance.now() - t, 1e-3);
    runs.push({
      ex: r.executions,
      steps: r.steps,
      ms,
      complete: r.complete,
      blocked: r.blockedExecutions ?? 0,
    });
  }
  const samples = runs.map((r) => ({
    executionsPerSec: (r.ex * 1000) / r.ms,
    stepsPerSec: (r.steps * 1000) / r.ms,
  }));
  const order = runs
    .map((_, i) => i)
    .sort((a, b) => samples[a].executionsPerSec - samples[b].executionsPerSec);
  const mid = order[Math.floor(order.length / 2)];
  const m = runs[mid];
  return {
    strategy: base.strategy ?? "dpor",
    executions: m.ex,
    steps: m.steps,
    elapsedMs: m.ms,
    executionsPerSec: samples[mid].executionsPerSec,
    stepsPerSec: samples[mid].stepsPerSec,
    complete: runs.every((r) => r.complete),
    blockedExecutions: m.blocked,
    samples,
  };
}
