import type { ChooseOp } from "../op.js";
import type { Program, RunObserver } from "../runtime.js";
import type { Scheduler } from "../scheduler.js";
import type { Task } from "../task.js";
import { driveRun } from "./drive-run.js";
import { RunAbort } from "./errors.js";
import { INTERRUPT_EVERY, type RunOutcome, type Searcher, type StopCheck } from "./outcome.js";

export interface DfsConfig {
  readonly program: Program;
  readonly maxSteps: number;
  readonly overrides?: ReadonlyMap<string, Function>;
  readonly stopRunAtViolation?: boolean;
  readonly coverage?: boolean;
  /** Preemption bound; Infinity for plain exhaustive enumeration. */
  readonly bound: number;
}

/** A subtree for a worker: every extension of `plan` (the first plan.length choices are fixed). */
export interface DfsJob {
  readonly plan: readonly number[];
}

/** A prefix probe: the choices taken up to the cut, and how many were allowed at each. */
export interface DfsProbe {
  readonly taken: readonly number[];
  readonly allowed: readonly number[];
  /** The run ended before reaching the requested number of choice points. */
  readonly ended: boolean;
}

export interface DfsStateJson {
  readonly plan: readonly number[];
  readonly boundCut: boolean;
}

/**
 * Depth-first enumeration of the choice tree, re-running the program along
 * each prefix, optionally preemption-bounded (Musuvathi & Qadeer, PLDI'07).
 * At a scheduling point the options are ordered "keep running the last task"
 * first, so option 0 never preempts; a preemption is switching away from a
 * task that is still enabled. Data choices are not preemptions. Memory is the
 * current path only.
 */
export class DfsSearcher implements Searcher, Scheduler, RunObserver {
  readonly counters = {};
  private plan: number[] = [];
  /** Per choice point of the last run: taken, allowed, total. */
  private taken: number[] = [];
  private allowed: number[] = [];
  private pos = 0;
  private prev = -1;
  private preempts = 0;
  private cut = false;
  private readonly opts: Task[] = [];
  /** Choice points below this index are fixed (job mode). */
  private base = 0;
  /** Probe mode: stop when this many choices have been made. */
  private stopAfter = -1;

  constructor(private readonly cfg: DfsConfig) {}

  get boundCut(): boolean {
    return this.cut;
  }

  private stop: StopCheck | undefined;

  run(stop?: StopCheck): RunOutcome {
    this.stop = stop;
    this.taken = [];
    this.allowed = [];
    this.pos = 0;
    this.prev = -1;
    this.preempts = 0;
    const { result: r, abort } = driveRun(this.cfg, this);
    const interrupted = abort?.why === "interrupted";
    if (interrupted) this.taken = [];
    return {
      violations: interrupted ? [] : r.violations,
      overridesRan: r.overridesRan,
      functionsRun: r.functionsRun,
      choices: r.choices,
      steps: r.stats.steps,
      blocked: false,
      depthCut: abort?.why === "depth",
      interrupted,
    };
  }

  advance(): boolean {
    let d = this.taken.length - 1;
    while (d >= this.base && this.taken[d] + 1 >= this.allowed[d]) d--;
    if (d < this.base) return false;
    this.plan = this.taken.slice(0, d);
    this.plan.push(this.taken[d] + 1);
    return true;
  }

  private next(allowed: number): number {
    if (this.pos === this.stopAfter) throw new RunAbort("probe");
    const i = this.pos < this.plan.length ? this.plan[this.pos] : 0;
    this.pos++;
    this.taken.push(i);
    this.allowed.push(allowed);
    return i;
  }

  pickTask(enabled: readonly Task[], stepIndex: number): Task {
    if (stepIndex >= this.cfg.maxSteps) throw new RunAbort("depth");
    const opts = this.opts;
    opts.length = 0;
    let prevEnabled = false;
    for (const t of enabled) {
      if (t.id === this.prev) {
        prevEnabled = true;
        opts.push(t);
      }
    }
    for (const t of enabled) if (t.id !== this.prev) opts.push(t);
    let allowed = opts.length;
    if (prevEnabled && this.preempts >= this.cfg.bound) {
      allowed = 1;
      this.cut = true;
    }
    const pick = opts[this.next(allowed)];
    if (prevEnabled && pick.id !== this.prev) this.preempts++;
    return pick;
  }

  pickValue(n: number, _op: ChooseOp): number {
    return this.next(n);
  }

  onStep(index: number, task: Task): void {
    if (index >= this.cfg.maxSteps) throw new RunAbort("depth");
    if (index % INTERRUPT_EVERY === INTERRUPT_EVERY - 1 && this.stop?.()) throw new RunAbort("interrupted");
    this.prev = task.id;
  }

  memory(): { stack: number; wakeupNodes: number } {
    return { stack: this.taken.length, wakeupNodes: 0 };
  }

  setupJob(job: DfsJob): void {
    this.plan = job.plan.slice();
    this.base = job.plan.length;
  }

  /** Follow `plan` and stop at choice point number `depth` (or at the end of the run). */
  probe(plan: readonly number[], depth: number): DfsProbe {
    this.plan = plan.slice();
    this.stopAfter = depth;
    try {
      this.run();
    } finally {
      this.stopAfter = -1;
    }
    return { taken: this.taken.slice(), allowed: this.allowed.slice(), ended: this.taken.length < depth };
  }

  checkpointState(): DfsStateJson {
    return { plan: this.plan.slice(), boundCut: this.cut };
  }

  restore(s: DfsStateJson): void {
    this.plan = s.plan.slice();
    this.cut = s.boundCut;
  }
}
