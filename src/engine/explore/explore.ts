import { encodeChoices } from "../replay-codec.js";
import { type Program, runProgram } from "../runtime.js";
import { ReplayScheduler } from "../scheduler.js";
import { DfsSearcher, type DfsStateJson } from "./dfs.js";
import { DporSearcher, type DporStateJson } from "./dpor.js";
import type { Searcher } from "./outcome.js";
import { PortfolioSearcher, type PortfolioStateJson } from "./portfolio.js";
import { PctSearcher, RandomSearcher } from "./sample.js";
import {
  type Checkpoint,
  type CutReason,
  type ExploreOptions,
  type ExploreResult,
  type ExploreStats,
  emptyStats,
  type Strategy,
} from "./types.js";

export const DEFAULT_MAX_STEPS = 10_000;
const SAMPLING_DEFAULT_EXECUTIONS = 1000;
const PROGRESS_EVERY_MS = 100;
/** exploreAsync() yields to the event loop this often, so signals and timers run. */
const YIELD_EVERY_MS = 50;

function isSampling(s: Strategy): boolean {
  return s === "pct" || s === "random";
}

export function makeSearcher(program: Program, strategy: Strategy, opts: ExploreOptions): Searcher {
  const maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
  const stopRunAtViolation = opts.stopRunAtViolation ?? opts.stopOnFirstViolation ?? true;
  const base = {
    program,
    maxSteps,
    overrides: opts.overrides,
    stopRunAtViolation,
    coverage: opts.coverage === true,
  };
  const dporBase = { ...base, plainDependence: opts.plainDependence === true };
  const resume = opts.resumeFrom;
  switch (strategy) {
    case "dpor": {
      const s = new DporSearcher(dporBase);
      if (resume) s.restore(resume.state as DporStateJson);
      return s;
    }
    case "portfolio": {
      const seed = opts.seed ?? 0n;
      const s = new PortfolioSearcher(
        new DporSearcher(dporBase),
        new RandomSearcher({ ...base, seed }),
        // Another stream than the random walk's, from the same seed.
        new PctSearcher({ ...base, seed: seed ^ 0x9e3779b97f4a7c15n }, opts.pctDepth ?? 3),
      );
      if (resume) s.restore(resume.state as PortfolioStateJson);
      return s;
    }
    case "exhaustive":
    case "bounded": {
      const bound = strategy === "exhaustive" ? Number.POSITIVE_INFINITY : (opts.preemptionBound ?? 2);
      const s = new DfsSearcher({ ...base, bound });
      if (resume) s.restore(resume.state as DfsStateJson);
      return s;
    }
    case "random":
      return new RandomSearcher({ ...base, seed: opts.seed ?? 0n });
    case "pct":
      return new PctSearcher({ ...base, seed: opts.seed ?? 0n }, opts.pctDepth ?? 3);
  }
}

/**
 * One exploration, stepped a run at a time so that explore() and
 * exploreAsync() share everything but the waiting.
 */
export class Driver {
  readonly strategy: Strategy;
  private readonly searcher: Searcher;
  private readonly t0: number;
  private lastProgress: number;
  private executions: number;
  private blocked: number;
  private steps: number;
  private readonly stats: ExploreStats;
  private readonly cut = new Set<CutReason>();
  private violationChoices: readonly number[] | null = null;
  /** Run index (0-based, blocked runs included) of the first violation. */
  private violationIndex = -1;
  private exhausted = false;
  private done = false;
  private readonly maxExecutions: number;
  private readonly stopOnFirst: boolean;

  constructor(
    private readonly program: Program,
    private readonly opts: ExploreOptions,
    searcher?: Searcher,
  ) {
    const resume = opts.resumeFrom;
    if (resume && resume.version !== 1) throw new Error(`unsupported checkpoint version ${resume.version}`);
    this.strategy = opts.strategy ?? resume?.strategy ?? "dpor";
    if (resume && resume.strategy !== this.strategy) {
      throw new Error(`checkpoint is for strategy ${resume.strategy}, not ${this.strategy}`);
    }
    if (resume && isSampling(this.strategy)) throw new Error(`${this.strategy} runs cannot be resumed`);
    this.searcher = searcher ?? makeSearcher(program, this.strategy, opts);
    this.t0 = performance.now() - (resume?.elapsedMs ?? 0);
    this.lastProgress = performance.now();
    this.executions = resume?.executions ?? 0;
    this.blocked = resume?.blockedExecutions ?? 0;
    this.steps = resume?.steps ?? 0;
    this.stats = resume ? structuredClone(resume.stats) : emptyStats();
    // Bound cuts of the earlier leg stay true of the whole run; budget cuts do not.
    for (const c of resume?.cutBy ?? []) if (c === "depth" || c === "preemptions") this.cut.add(c);
    this.maxExecutions =
      opts.maxExecutions ??
      (isSampling(this.strategy) ? SAMPLING_DEFAULT_EXECUTIONS : Number.POSITIVE_INFINITY);
    this.stopOnFirst = opts.stopOnFirstViolation ?? true;
  }

  /** Run executions until finished or `sliceMs` has passed; returns true when finished. */
  work(sliceMs: number): boolean {
    const { opts } = this;
    const sliceEnd = performance.now() + sliceMs;
    while (!this.done) {
      if (opts.signal?.aborted) return this.stop("interrupted");
      if (this.executions >= this.maxExecutions) return this.stop("max-executions");
      const now = performance.now();
      if (opts.timeLimitMs !== undefined && now - this.t0 >= opts.timeLimitMs) return this.stop("time-limit");
      if (now >= sliceEnd) return false;
      this.runOne();
    }
    return true;
  }

  private stop(reason: CutReason): true {
    this.cut.add(reason);
    this.done = true;
    return true;
  }

  private readonly stopCheck = (): boolean => {
    const { opts } = this;
    if (opts.signal?.aborted) {
      this.midRunStop = "interrupted";
      return true;
    }
    if (opts.timeLimitMs !== undefined && performance.now() - this.t0 >= opts.timeLimitMs) {
      this.midRunStop = "time-limit";
      return true;
    }
    return false;
  };
  private midRunStop: CutReason | null = null;

  private runOne(): void {
    const out = this.searcher.run(this.stopCheck);
    if (out.interrupted) {
      this.stop(this.midRunStop ?? "interrupted");
      return;
    }
    this.opts.onExecution?.(out);
    const st = this.stats;
    this.steps += out.steps;
    for (const n of out.overridesRan ?? []) if (!st.overridesRan.includes(n)) st.overridesRan.push(n);
    if (out.sampled === true) {
      st.sampledRuns++;
      if (out.violations.length > 0 && this.violationChoices === null) {
        this.violationChoices = out.choices.slice();
        this.violationIndex = this.executions + this.blocked;
      }
      this.searcher.advance();
      if (this.violationChoices !== null && this.stopOnFirst) this.stop("first-violation");
      return;
    }
    if (out.blocked) this.blocked++;
    else {
      this.executions++;
      if (out.functionsRun !== undefined) {
        if (st.coverage === undefined) st.coverage = {};
        const cov = st.coverage;
        for (const f of out.functionsRun) cov[f] = (cov[f] ?? 0) + 1;
      }
    }
    if (out.steps > st.maxDepth) st.maxDepth = out.steps;
    if (out.depthCut) {
      st.depthCuts++;
      this.cut.add("depth");
    }
    if (out.violations.length > 0) {
      // A blocked run's violation is real (and may be reported), but only complete executions are counted:
      // each of them is one trace, so the counts do not depend on the exploration order.
      if (!out.blocked) {
        st.violatingExecutions++;
        for (const v of out.violations) {
          st.violationsByInvariant[v.invariant] = (st.violationsByInvariant[v.invariant] ?? 0) + 1;
        }
      }
      if (this.violationChoices === null) {
        this.violationChoices = out.choices.slice();
        this.violationIndex = this.executions + this.blocked - 1;
      }
    }
    const now = performance.now();
    if (now - this.lastProgress >= PROGRESS_EVERY_MS) {
      this.lastProgress = now;
      this.gauge();
      this.opts.onProgress?.({
        executions: this.executions,
        steps: this.steps,
        depth: out.steps,
        elapsedMs: now - this.t0,
        blockedExecutions: this.blocked,
      });
    }
    if (!this.searcher.advance()) {
      this.exhausted = true;
      this.done = true;
      return;
    }
    if (this.violationChoices !== null && this.stopOnFirst) this.stop("first-violation");
  }

  private gauge(): void {
    const m = this.searcher.memory();
    if (m.stack > this.stats.maxStack) this.stats.maxStack = m.stack;
    if (m.wakeupNodes > this.stats.maxWakeupNodes) this.stats.maxWakeupNodes = m.wakeupNodes;
  }

  /**
   * The run so far as a checkpoint, or undefined when there is nothing left to explore. Valid
   * between two executions: at the end, or when work() has returned false.
   */
  checkpoint(
    cutBy: readonly CutReason[] = [...this.cut],
    elapsedMs = performance.now() - this.t0,
  ): Checkpoint | undefined {
    const state = this.exhausted ? null : this.searcher.checkpointState();
    if (state === null) return undefined;
    Object.assign(this.stats, this.searcher.counters);
    return {
      version: 1,
      strategy: this.strategy,
      executions: this.executions,
      blockedExecutions: this.blocked,
      steps: this.steps,
      elapsedMs,
      cutBy: [...cutBy],
      stats: structuredClone(this.stats),
      state: structuredClone(state),
    };
  }

  /** Raw counters without re-running the violation (for workers of a parallel exploration). */
  summary(): DriverSummary {
    this.gauge();
    if (this.searcher.boundCut) this.cut.add("preemptions");
    Object.assign(this.stats, this.searcher.counters);
    return {
      executions: this.executions,
      blocked: this.blocked,
      steps: this.steps,
      exhausted: this.exhausted,
      cutBy: [...this.cut],
      stats: this.stats,
      violationChoices: this.violationChoices,
      violationIndex: this.violationIndex,
    };
  }

  result(): ExploreResult {
    this.gauge();
    if (this.searcher.boundCut) this.cut.add("preemptions");
    const st = this.stats;
    Object.assign(st, this.searcher.counters);
    const cutBy = [...this.cut];
    const elapsedMs = performance.now() - this.t0;
    let violation: ExploreResult["violation"] = null;
    if (this.violationChoices !== null) {
      const choices = this.violationChoices;
      const result = runProgram(this.program, {
        scheduler: new ReplayScheduler(choices),
        record: true,
        maxSteps: (this.opts.maxSteps ?? DEFAULT_MAX_STEPS) + 1,
        overrides: this.opts.overrides,
        stopOnViolation: this.opts.stopRunAtViolation ?? this.opts.stopOnFirstViolation ?? true,
      });
      violation = { result, choices, replay: encodeChoices(choices) };
    }
    const complete = this.exhausted && cutBy.length === 0;
    const checkpoint = this.checkpoint(cutBy, elapsedMs);
    return {
      strategy: this.strategy,
      complete,
      cutBy,
      executions: this.executions,
      steps: this.steps,
      elapsedMs,
      ...(this.strategy === "dpor" || this.strategy === "portfolio"
        ? { blockedExecutions: this.blocked }
        : {}),
      violation,
      stats: st,
      ...(checkpoint ? { checkpoint } : {}),
    };
  }
}

export interface DriverSummary {
  readonly executions: number;
  readonly blocked: number;
  readonly steps: number;
  /** The searcher ran out of schedules (no budget cut, no early stop). */
  readonly exhausted: boolean;
  readonly cutBy: readonly CutReason[];
  readonly stats: ExploreStats;
  readonly violationChoices: readonly number[] | null;
  readonly violationIndex: number;
}

/**
 * Explore `program` with the chosen strategy and return what was found, as
 * data. Synchronous: an AbortSignal can only fire from another thread here;
 * use exploreAsync() to let Ctrl-C and timers run during the search.
 */
export function explore(program: Program, opts: ExploreOptions = {}): ExploreResult {
  const d = new Driver(program, opts);
  while (!d.work(Number.POSITIVE_INFINITY)) {}
  return d.result();
}

/** As explore(), yielding to the event loop every ~50 ms (so AbortSignal and onProgress consumers run). */
export async function exploreAsync(program: Program, opts: ExploreOptions = {}): Promise<ExploreResult> {
  const d = new Driver(program, opts);
  const every = opts.onCheckpoint === undefined ? undefined : opts.checkpointEveryMs;
  let lastCheckpoint = performance.now();
  while (!d.work(YIELD_EVERY_MS)) {
    if (every !== undefined && performance.now() - lastCheckpoint >= every) {
      const c = d.checkpoint();
      if (c !== undefined) opts.onCheckpoint!(c);
      lastCheckpoint = performance.now();
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return d.result();
}
