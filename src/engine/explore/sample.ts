import type { ChooseOp } from "../op.js";
import { SplitMix64 } from "../rng.js";
import type { Program, RunObserver } from "../runtime.js";
import type { Scheduler } from "../scheduler.js";
import type { Task } from "../task.js";
import { driveRun } from "./drive-run.js";
import { RunAbort } from "./errors.js";
import { INTERRUPT_EVERY, type RunOutcome, type Searcher, type StopCheck } from "./outcome.js";

export interface SampleConfig {
  readonly program: Program;
  readonly maxSteps: number;
  readonly overrides?: ReadonlyMap<string, Function>;
  readonly stopRunAtViolation?: boolean;
  readonly coverage?: boolean;
  readonly seed: bigint;
}

/**
 * Base of the sampling strategies: each execution draws its own 64-bit seed
 * from a master SplitMix64, so a run is a pure function of (seed, index) and
 * the same seed gives the same executions.
 */
abstract class SamplingSearcher implements Searcher, Scheduler, RunObserver {
  readonly counters = {};
  readonly boundCut = false;
  private readonly master: SplitMix64;
  protected rng: SplitMix64 = new SplitMix64(0);
  /** Index of the next execution. */
  index = 0;

  constructor(protected readonly cfg: SampleConfig) {
    this.master = new SplitMix64(cfg.seed);
  }

  /** Position on execution `i` (only forward): runs are a pure function of (seed, index). */
  skipTo(i: number): void {
    while (this.index < i) {
      this.master.nextBigInt();
      this.index++;
    }
  }

  protected abstract begin(): void;
  protected abstract end(steps: number): void;
  abstract pickTask(enabled: readonly Task[], stepIndex: number): Task;

  private stop: StopCheck | undefined;

  run(stop?: StopCheck): RunOutcome {
    this.stop = stop;
    this.rng = new SplitMix64(this.master.nextBigInt());
    this.index++;
    this.begin();
    const { result: r, abort } = driveRun(this.cfg, this);
    this.end(r.stats.steps);
    const interrupted = abort?.why === "interrupted";
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
    return true;
  }

  pickValue(n: number, _op: ChooseOp): number {
    return this.rng.nextInt(n);
  }

  onStep(index: number, task: Task): void {
    if (index >= this.cfg.maxSteps) throw new RunAbort("depth");
    if (index % INTERRUPT_EVERY === INTERRUPT_EVERY - 1 && this.stop?.()) throw new RunAbort("interrupted");
    this.stepped(index, task);
  }

  protected stepped(_index: number, _task: Task): void {}

  checkpointState(): null {
    return null;
  }

  memory(): { stack: number; wakeupNodes: number } {
    return { stack: 0, wakeupNodes: 0 };
  }
}

/** Random walk: every choice uniform. */
export class RandomSearcher extends SamplingSearcher {
  protected begin(): void {}
  protected end(): void {}
  pickTask(enabled: readonly Task[], stepIndex: number): Task {
    if (stepIndex >= this.cfg.maxSteps) throw new RunAbort("depth");
    return enabled[this.rng.nextInt(enabled.length)];
  }
}

/** PCT's first runs, without change points, measure k (steps per run). */
export const PCT_CALIBRATION = 8;

/**
 * PCT (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS'10): tasks get
 * random distinct priorities >= d, the highest enabled one runs; at d-1 random
 * change points (steps in [0, k)) the task about to run drops to priority
 * 1..d-1. Finds a bug of depth d with probability at least 1/(n k^(d-1)) per
 * run. Tasks spawned later get fresh random priorities. k is the longest of the
 * first PCT_CALIBRATION runs (run with priorities only), then fixed, so that
 * every run depends only on (seed, index, k) and runs can be split across
 * workers.
 */
export class PctSearcher extends SamplingSearcher {
  /** Steps per run, as measured by the calibration runs (or given). */
  k = 0;
  private readonly prio: number[] = [];
  private readonly change = new Map<number, number>();

  constructor(
    cfg: SampleConfig,
    private readonly depth: number,
  ) {
    super(cfg);
  }

  protected begin(): void {
    this.prio.length = 0;
    this.change.clear();
    if (this.index > PCT_CALIBRATION && this.k > 0) {
      for (let j = this.depth - 1; j >= 1; j--) this.change.set(this.rng.nextInt(this.k), j);
    }
  }

  protected end(steps: number): void {
    if (this.index <= PCT_CALIBRATION && steps > this.k) this.k = steps;
  }

  private priority(t: Task): number {
    let p = this.prio[t.id];
    if (p === undefined) {
      p = this.depth + this.rng.nextInt(1 << 30);
      this.prio[t.id] = p;
    }
    return p;
  }

  private highest(enabled: readonly Task[]): Task {
    let best = enabled[0];
    let bp = this.priority(best);
    for (let i = 1; i < enabled.length; i++) {
      const p = this.priority(enabled[i]);
      if (p > bp) {
        best = enabled[i];
        bp = p;
      }
    }
    return best;
  }

  pickTask(enabled: readonly Task[], stepIndex: number): Task {
    if (stepIndex >= this.cfg.maxSteps) throw new RunAbort("depth");
    const j = this.change.get(stepIndex);
    if (j !== undefined) {
      this.prio[this.highest(enabled).id] = j;
      this.change.delete(stepIndex);
    }
    return this.highest(enabled);
  }

  protected override stepped(index: number, task: Task): void {
    const j = this.change.get(index);
    if (j !== undefined) {
      // A change point at a step with a single enabled task still demotes it.
      this.prio[task.id] = j;
      this.change.delete(index);
    }
  }
}
