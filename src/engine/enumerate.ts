import type { ChooseOp } from "./op.js";
import { type Program, type RunOptions, type RunResult, runProgram } from "./runtime.js";
import type { Scheduler } from "./scheduler.js";
import type { Task } from "./task.js";

/**
 * Plain exhaustive enumeration: every schedule, by depth-first search over the
 * choice tree, re-running the program from scratch along each prefix. No
 * reduction at all; it is the oracle the smarter explorers are checked against.
 */
class PrefixScheduler implements Scheduler {
  /** For each choice point met in this run: [index taken, number of options]. */
  readonly path: [number, number][] = [];
  private pos = 0;
  constructor(private readonly prefix: readonly number[]) {}

  private next(n: number): number {
    const i = this.pos < this.prefix.length ? this.prefix[this.pos] : 0;
    this.pos++;
    this.path.push([i, n]);
    return i;
  }
  pickTask(enabled: readonly Task[]): Task {
    return enabled[this.next(enabled.length)];
  }
  pickValue(n: number, _op: ChooseOp): number {
    return this.next(n);
  }
}

export interface EnumerateOptions extends Omit<RunOptions, "scheduler"> {
  /** Stop after this many executions (the result then says complete: false). */
  readonly maxExecutions?: number;
  /** Stop at the first execution with a violation. */
  readonly stopOnFirst?: boolean;
}

export interface EnumerateResult {
  readonly executions: number;
  readonly complete: boolean;
  readonly results: RunResult[] | null;
  readonly firstViolation: RunResult | null;
}

/**
 * Run `program` under every schedule. `visit` sees each run's result; keep
 * `collect` off for large spaces.
 */
export function enumerateAll(
  program: Program,
  opts: EnumerateOptions = {},
  visit?: (r: RunResult) => void,
  collect = false,
): EnumerateResult {
  const max = opts.maxExecutions ?? 1_000_000;
  const results: RunResult[] | null = collect ? [] : null;
  let prefix: number[] = [];
  let executions = 0;
  let firstViolation: RunResult | null = null;
  for (;;) {
    if (executions >= max) return { executions, complete: false, results, firstViolation };
    const sched = new PrefixScheduler(prefix);
    const r = runProgram(program, { ...opts, scheduler: sched });
    executions++;
    visit?.(r);
    results?.push(r);
    if (r.status === "violation" && firstViolation === null) {
      firstViolation = r;
      if (opts.stopOnFirst) return { executions, complete: false, results, firstViolation };
    }
    // Backtrack: bump the deepest choice point that has an untried option.
    const path = sched.path;
    let d = path.length - 1;
    while (d >= 0 && path[d][0] + 1 >= path[d][1]) d--;
    if (d < 0) return { executions, complete: true, results, firstViolation };
    prefix = path.slice(0, d).map((p) => p[0]);
    prefix.push(path[d][0] + 1);
  }
}
