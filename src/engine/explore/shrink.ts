import type { AccessOp, ChooseOp } from "../op.js";
import { encodeChoices } from "../replay-codec.js";
import { type Program, type RunObserver, type RunResult, Runtime, runProgram } from "../runtime.js";
import { ReplayScheduler, type Scheduler } from "../scheduler.js";
import type { Task } from "../task.js";
import { DfsSearcher } from "./dfs.js";
import { DEFAULT_MAX_STEPS } from "./explore.js";

/**
 * Counterexample shrinking: from a violating choice sequence, find one that
 * still violates the same invariant with the fewest preemptions, then the
 * fewest steps. A preemption is switching away from a task that is still
 * enabled. Every candidate is validated by running it.
 *
 * Phase 1 runs a preemption-bounded search with bound 0, 1, 2, ... (each
 * under a share of the budget); when a bound's search completes without a
 * violation, that many preemptions are proven insufficient. Phase 2 edits the
 * best schedule greedily: the schedule is a list of segments (task, steps);
 * candidates drop a segment, swap two adjacent ones, or move one later; a
 * lenient scheduler follows the segments as far as they apply and then keeps
 * running the current task.
 */

export interface ShrinkOptions {
  readonly maxSteps?: number;
  readonly overrides?: ReadonlyMap<string, Function>;
  /** Runs the shrinker may spend (default 5000). */
  readonly budget?: number;
  /** Invariant to preserve (default: the first violation of the original run). */
  readonly invariant?: string;
}

export interface ShrinkResult {
  readonly choices: readonly number[];
  readonly replay: string;
  /** The shrunk run, re-run with record: true. */
  readonly result: RunResult;
  readonly invariant: string;
  readonly preemptions: number;
  readonly steps: number;
  readonly original: { readonly preemptions: number; readonly steps: number };
  /** Fewest preemptions proven necessary (a bounded search below it completed without the violation). */
  readonly provenMinimal: boolean;
  readonly runs: number;
}

interface Seg {
  readonly task: string;
  readonly n: number;
}

interface Measured {
  readonly ok: boolean;
  readonly choices: readonly number[];
  readonly preemptions: number;
  readonly steps: number;
  readonly segs: readonly Seg[];
  readonly data: readonly number[];
}

/** Observes a run: preemptions, steps as segments of canonical task names, data-choice values. */
class Meter implements RunObserver {
  preemptions = 0;
  private prev = -1;
  private readonly canon: string[] = [];
  private readonly kids: number[] = [];
  private roots = 0;
  readonly segs: { task: string; n: number }[] = [];
  readonly data: number[] = [];

  name(id: number): string {
    return this.canon[id];
  }

  onSpawn(child: Task, parentId: number): void {
    this.canon[child.id] =
      parentId < 0 ? `${this.roots++}` : `${this.canon[parentId]}.${this.kids[parentId]++}`;
    this.kids[child.id] = 0;
  }

  onStep(_i: number, task: Task, _op: AccessOp, enabled: readonly Task[]): void {
    if (this.prev >= 0 && task.id !== this.prev && enabled.some((t) => t.id === this.prev))
      this.preemptions++;
    this.prev = task.id;
    const name = this.canon[task.id];
    const last = this.segs[this.segs.length - 1];
    if (last !== undefined && last.task === name) last.n++;
    else this.segs.push({ task: name, n: 1 });
  }

  onChoice(_i: number, _t: Task, _op: ChooseOp, _n: number, value: number): void {
    this.data.push(value);
  }
}

/** Follows segments leniently, then runs without preempting. */
class SegmentScheduler implements Scheduler {
  private si = 0;
  private left: number;
  private di = 0;
  private prev = -1;

  constructor(
    private readonly segs: readonly Seg[],
    private readonly data: readonly number[],
    private readonly meter: Meter,
  ) {
    this.left = segs.length > 0 ? segs[0].n : 0;
  }

  pickTask(enabled: readonly Task[]): Task {
    while (this.si < this.segs.length) {
      const want = this.segs[this.si].task;
      if (this.left > 0) {
        const t = enabled.find((x) => this.meter.name(x.id) === want);
        if (t !== undefined) return t;
      }
      this.si++;
      this.left = this.si < this.segs.length ? this.segs[this.si].n : 0;
    }
    return enabled.find((t) => t.id === this.prev) ?? enabled[0];
  }

  /** Called for every executed step (also those the runtime did not ask about). */
  stepped(task: Task): void {
    this.prev = task.id;
    if (this.si < this.segs.length && this.meter.name(task.id) === this.segs[this.si].task && this.left > 0) {
      this.left--;
    }
  }

  pickValue(n: number): number {
    const v = this.di < this.data.length ? this.data[this.di] : 0;
    this.di++;
    return v < n ? v : 0;
  }
}

function better(a: Measured, b: Measured): boolean {
  return a.preemptions < b.preemptions || (a.preemptions === b.preemptions && a.steps < b.steps);
}

export function shrink(program: Program, choices: readonly number[], opts: ShrinkOptions = {}): ShrinkResult {
  const maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
  const budget = opts.budget ?? 5000;
  let runs = 0;

  const measure = (
    sched: Scheduler & { stepped?(t: Task): void },
    meter: Meter,
    invariant: string | null,
  ) => {
    runs++;
    const observer: RunObserver = {
      onSpawn: (c, p) => meter.onSpawn(c, p),
      onStep: (i, t, op, en) => {
        meter.onStep(i, t, op, en);
        sched.stepped?.(t);
      },
      onChoice: (i, t, op, n, v) => meter.onChoice(i, t, op, n, v),
    };
    const rt = new Runtime({ scheduler: sched, observer, maxSteps: maxSteps + 1, overrides: opts.overrides });
    rt.start(program);
    if (!rt.stopped) rt.runToEnd();
    const r = rt.result();
    const inv = invariant ?? r.violations[0]?.invariant ?? null;
    const ok = inv !== null && r.violations.some((v) => v.invariant === inv);
    const m: Measured = {
      ok,
      choices: r.choices.slice(),
      preemptions: meter.preemptions,
      steps: r.stats.steps,
      segs: meter.segs.map((s) => ({ ...s })),
      data: meter.data.slice(),
    };
    return { m, inv };
  };

  const first = measure(new ReplayScheduler(choices), new Meter(), opts.invariant ?? null);
  if (!first.m.ok || first.inv === null) {
    throw new Error(
      opts.invariant
        ? `the schedule does not violate ${opts.invariant}`
        : "the schedule does not produce a violation",
    );
  }
  const invariant = first.inv;
  let best = first.m;
  const original = { preemptions: best.preemptions, steps: best.steps };

  // Phase 1: preemption-bounded search, bound 0, 1, ... below the best so far.
  const phase1 = Math.floor(budget * 0.6);
  /** Every bound <= provenBelow was searched completely without the violation. */
  let provenBelow = -1;
  for (let k = 0; k < best.preemptions && runs < phase1; k++) {
    const share = Math.max(1, Math.floor((phase1 - runs) / Math.max(1, best.preemptions - k)));
    const dfs = new DfsSearcher({ program, maxSteps, overrides: opts.overrides, bound: k });
    let used = 0;
    let hit: readonly number[] | null = null;
    let complete = false;
    let depthCut = false;
    while (used < share) {
      const out = dfs.run();
      used++;
      runs++;
      if (out.depthCut) depthCut = true;
      if (out.violations.some((v) => v.invariant === invariant)) {
        hit = out.choices.slice();
        break;
      }
      if (!dfs.advance()) {
        complete = !depthCut;
        break;
      }
    }
    if (hit !== null) {
      const c = measure(new ReplayScheduler(hit), new Meter(), invariant).m;
      if (c.ok && better(c, best)) best = c;
      break;
    }
    if (complete && provenBelow === k - 1) provenBelow = k;
  }
  // Phase 2: greedy segment edits.
  const tryCandidate = (segs: readonly Seg[]): boolean => {
    if (runs >= budget) return false;
    const meter = new Meter();
    const c = measure(new SegmentScheduler(segs, best.data, meter), meter, invariant).m;
    if (c.ok && better(c, best)) {
      best = c;
      return true;
    }
    return false;
  };
  let improved = true;
  while (improved && runs < budget) {
    improved = false;
    const s = best.segs;
    for (let i = 0; i < s.length && !improved; i++) {
      if (tryCandidate(s.slice(0, i).concat(s.slice(i + 1)))) improved = true;
    }
    for (let i = 0; i + 1 < s.length && !improved; i++) {
      const t = s.slice();
      [t[i], t[i + 1]] = [t[i + 1], t[i]];
      if (tryCandidate(t)) improved = true;
    }
    for (let i = 0; i < s.length && !improved; i++) {
      for (let j = i + 2; j <= s.length && !improved; j++) {
        const t = s.slice(0, i).concat(s.slice(i + 1, j), [s[i]], s.slice(j));
        if (tryCandidate(t)) improved = true;
      }
    }
  }

  const provenMinimal = provenBelow >= best.preemptions - 1;
  const result = runProgram(program, {
    scheduler: new ReplayScheduler(best.choices),
    record: true,
    maxSteps: maxSteps + 1,
    overrides: opts.overrides,
  });
  return {
    choices: best.choices,
    replay: encodeChoices(best.choices),
    result,
    invariant,
    preemptions: best.preemptions,
    steps: best.steps,
    original,
    provenMinimal,
    runs,
  };
}
