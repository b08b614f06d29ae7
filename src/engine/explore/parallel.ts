import { setMaxListeners } from "node:events";
import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import { encodeChoices } from "../replay-codec.js";
import { type Program, runProgram } from "../runtime.js";
import { ReplayScheduler } from "../scheduler.js";
import { DfsSearcher } from "./dfs.js";
import { DEFAULT_MAX_STEPS, type DriverSummary, exploreAsync } from "./explore.js";
import { DporCoordinator } from "./parallel-dpor.js";
import { JobStalled, type JobWatch } from "./pool-watch.js";
import { loadSpec, type ProgramSpec } from "./program-spec.js";
import { PCT_CALIBRATION } from "./sample.js";
import { isParallelState, JobMemo, type JobTransport, piscinaTransport } from "./transport.js";
import type {
  Checkpoint,
  CutReason,
  ExploreOptions,
  ExploreResult,
  ExploreStats,
  Strategy,
} from "./types.js";
import { emptyStats } from "./types.js";
import type { JobInput, JobOptions, JobOutput } from "./worker.js";

/**
 * Parallel exploration over worker_threads (piscina). Programs cannot cross
 * threads, so the API takes a ProgramSpec that every worker imports.
 *
 * - dpor: a coordinator keeps the top of the exploration tree (nodes above
 *   `splitDepth`) with their wakeup trees and sleep sets, and hands every
 *   child at the split depth to a worker as a job: the worker runs
 *   Optimal-DPOR on that subtree and sends back the race reversals that belong
 *   to nodes above it, which the coordinator inserts (possibly creating more
 *   work). A child is put to sleep at its parent when it is started, so later
 *   siblings never duplicate it: every trace is still explored exactly once,
 *   and the execution count equals the sequential one whenever the
 *   exploration is optimal (always without blocking; sleep-set-blocked runs may
 *   differ in number).
 * - exhaustive/bounded: the prefixes of the first `splitDepth` choice points
 *   are independent subtrees.
 * - random/pct: runs are a pure function of (seed, index), so chunks of
 *   indices go to workers; the first violation is the one with the lowest
 *   index, as in a sequential run.
 *
 * Overrides cannot cross threads: the spec's factory returns them beside the
 * program ({ program, overrides }), in every thread. Not supported here:
 * onExecution. maxExecutions is checked when jobs finish, so a parallel run
 * may exceed it by what was in flight.
 *
 * Checkpoints hold the outputs of the jobs that finished (transport.ts,
 * JobMemo): resuming runs the coordinator again from the top and answers those
 * jobs from the checkpoint, so the counts are those of an uninterrupted run.
 */
export interface ParallelOptions extends Omit<ExploreOptions, "overrides" | "onExecution"> {
  /**
   * Worker threads (default: os.availableParallelism()). 1 runs in this thread. With a
   * `transport`, half the number of jobs kept in flight.
   */
  readonly jobs?: number;
  /** Depth of the split (steps for dpor, choice points for exhaustive/bounded). Default 4. */
  readonly splitDepth?: number;
  /** Run jobs there instead of on worker threads of this process (a queue's workers). */
  readonly transport?: JobTransport;
  /**
   * The program runs the user's code: every job is watched for a task that runs this long without
   * reaching a primitive, and the run then throws JobStalled (pool-watch.ts).
   */
  readonly watch?: JobWatch;
  /** Told the first violation's choices as soon as a job reports one, before the run ends. */
  readonly onViolation?: (choices: readonly number[]) => void;
}

/** Whether a checkpoint was written by a parallel run (and so can only resume one). */
export function isParallelCheckpoint(c: Checkpoint): boolean {
  return isParallelState(c.state);
}

/** The module piscina loads in each worker thread (the .mjs bootstrap when running from sources). */
export function workerFile(): string {
  const here = import.meta.url;
  return here.endsWith(".ts") ? new URL("./worker-entry.mjs", here).href : new URL("./worker.js", here).href;
}

const now = (): number => performance.timeOrigin + performance.now();

/** Sums of job summaries. */
/** @internal */
export class Totals {
  executions = 0;
  blocked = 0;
  steps = 0;
  readonly stats: ExploreStats = emptyStats();
  readonly cut = new Set<CutReason>();
  violation: readonly number[] | null = null;
  /** DPOR jobs run again because a late race grew their wakeup tree. */
  reruns = 0;
  /**
   * The run is stopping and has recorded why: a job that ends early because it was asked to
   * reports "interrupted" (or its own deadline), which is not the run's reason.
   */
  stopping = false;
  /** Told the first violation's choices as soon as a job reports it (before the run ends). */
  onViolation: ((choices: readonly number[]) => void) | undefined;

  /** Withdraw a summary added earlier (a job that went stale); maxima are kept. */
  sub(s: DriverSummary): void {
    this.executions -= s.executions;
    this.blocked -= s.blocked;
    this.steps -= s.steps;
    const a = this.stats;
    const b = s.stats;
    a.violatingExecutions -= b.violatingExecutions;
    for (const [k, v] of Object.entries(b.violationsByInvariant)) a.violationsByInvariant[k] -= v;
    a.depthCuts -= b.depthCuts;
    a.races -= b.races;
    a.insertions -= b.insertions;
    a.infeasibleRaces -= b.infeasibleRaces;
    a.deadBranches -= b.deadBranches;
  }

  add(s: DriverSummary): void {
    this.executions += s.executions;
    this.blocked += s.blocked;
    this.steps += s.steps;
    const a = this.stats;
    const b = s.stats;
    a.maxDepth = Math.max(a.maxDepth, b.maxDepth);
    a.violatingExecutions += b.violatingExecutions;
    for (const [k, v] of Object.entries(b.violationsByInvariant)) {
      a.violationsByInvariant[k] = (a.violationsByInvariant[k] ?? 0) + v;
    }
    a.depthCuts += b.depthCuts;
    a.races += b.races;
    a.insertions += b.insertions;
    a.infeasibleRaces += b.infeasibleRaces;
    a.deadBranches += b.deadBranches;
    a.maxWakeupNodes = Math.max(a.maxWakeupNodes, b.maxWakeupNodes);
    a.maxStack = Math.max(a.maxStack, b.maxStack);
    a.sampledRuns += b.sampledRuns;
    for (const n of b.overridesRan ?? []) if (!a.overridesRan.includes(n)) a.overridesRan.push(n);
    for (const c of s.cutBy) {
      if (c === "first-violation") continue;
      if (this.stopping && (c === "interrupted" || c === "time-limit")) continue;
      this.cut.add(c);
    }
    if (this.violation === null && s.violationChoices !== null) {
      this.violation = s.violationChoices;
      this.onViolation?.(s.violationChoices);
    }
  }
}

/** Runs jobs on the pool with a bound on what is in flight; remembers failures. */
/** @internal */
export class Jobs {
  inflight = 0;
  private wake: (() => void) | null = null;
  error: unknown = null;
  private readonly aborter = new AbortController();

  constructor(
    private readonly pool: Pick<JobTransport, "run" | "stop">,
    readonly limit: number,
    /** next() also returns after this long, so budgets, signals and checkpoints are looked at while long jobs run. */
    private readonly tickMs = Number.POSITIVE_INFINITY,
    /** Every job runs the user's code: watch them all for loops that never yield. */
    private readonly watch?: JobWatch,
  ) {
    // Every job in flight listens for the abort: as many listeners as jobs, not a leak.
    setMaxListeners(0, this.aborter.signal);
  }

  run(input: JobInput, done: (out: JobOutput) => void): void {
    this.inflight++;
    this.pool
      .run(this.watch === undefined ? input : { ...input, watch: this.watch }, {
        signal: this.aborter.signal,
      })
      .then(
        (out) => {
          if (this.error !== null || this.aborter.signal.aborted) return;
          if (out.stalled !== undefined) {
            this.error = new JobStalled(out.stalled);
            return;
          }
          try {
            done(out);
          } catch (e) {
            this.error = e;
          }
        },
        (e: unknown) => {
          if (this.error === null && !this.aborter.signal.aborted) this.error = e;
        },
      )
      .finally(() => {
        this.inflight--;
        const w = this.wake;
        this.wake = null;
        w?.();
      });
  }

  /** Wait until some job finishes (or the tick passes). */
  next(): Promise<void> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(this.tickMs) ? setTimeout(resolve, this.tickMs) : undefined;
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  abort(): void {
    this.aborter.abort();
  }

  /** When stop() asked the jobs to end (null: not yet). */
  private stoppedAt: number | null = null;

  /**
   * The run stops: ask the running jobs to end and answer with what they did (their executions and
   * any violation still count). Jobs that cannot be reached, or do not answer within STOP_GRACE_MS,
   * are abandoned by the next tick().
   */
  stop(): void {
    if (this.stoppedAt !== null) return;
    this.stoppedAt = performance.now();
    this.pool.stop?.();
  }

  /** After stop(): abandon what has not answered within the grace. */
  tick(): void {
    if (this.stoppedAt !== null && performance.now() - this.stoppedAt >= STOP_GRACE_MS) this.abort();
  }

  /** Wait for every job in flight (after stop(), at most about STOP_GRACE_MS). */
  async drain(): Promise<void> {
    while (this.inflight > 0) {
      await this.next();
      if (this.error !== null) throw this.error;
      this.tick();
    }
  }
}

/** The run stops (its reason is in totals.cut): ask the running jobs to end. */
function stopJobs(jobs: Jobs, totals: Totals): void {
  totals.stopping = true;
  jobs.stop();
}

/** How long a stopped run waits for its jobs' answers before it abandons them. */
export const STOP_GRACE_MS = 1000;

/** @internal */
export interface Budget {
  readonly opts: ParallelOptions;
  readonly totals: Totals;
  readonly deadline: number | undefined;
  readonly t0: number;
  lastProgress: number;
  /** The run's checkpoints: the memo of finished jobs, and when the last one was handed out. */
  readonly memo?: JobMemo;
  lastCheckpoint?: number;
}

/** The run so far as a checkpoint (its counts are for the record: resuming recomputes them). */
function checkpointOf(b: Budget, strategy: Strategy): Checkpoint | undefined {
  if (b.memo === undefined) return undefined;
  const t = b.totals;
  return {
    version: 1,
    strategy,
    executions: t.executions,
    blockedExecutions: t.blocked,
    steps: t.steps,
    elapsedMs: performance.now() - b.t0,
    cutBy: [...t.cut],
    stats: structuredClone(t.stats),
    state: b.memo.state(),
  };
}

/** Hand out a periodic checkpoint when one is due. */
function periodicCheckpoint(b: Budget): void {
  const { opts } = b;
  if (opts.onCheckpoint === undefined || opts.checkpointEveryMs === undefined) return;
  const t = performance.now();
  if (t - (b.lastCheckpoint ?? b.t0) < opts.checkpointEveryMs) return;
  b.lastCheckpoint = t;
  const c = checkpointOf(b, opts.strategy ?? "dpor");
  if (c !== undefined) opts.onCheckpoint(c);
}

/** Whether to stop dispatching; records the reason. */
function exhaustedBudget(b: Budget, stopOnFirst: boolean): boolean {
  const { opts, totals } = b;
  periodicCheckpoint(b);
  if (opts.signal?.aborted) {
    totals.cut.add("interrupted");
    return true;
  }
  if (stopOnFirst && totals.violation !== null) {
    totals.cut.add("first-violation");
    return true;
  }
  if (opts.maxExecutions !== undefined && totals.executions >= opts.maxExecutions) {
    totals.cut.add("max-executions");
    return true;
  }
  if (b.deadline !== undefined && now() >= b.deadline) {
    totals.cut.add("time-limit");
    return true;
  }
  const t = performance.now();
  if (opts.onProgress && t - b.lastProgress >= 100) {
    b.lastProgress = t;
    opts.onProgress({
      executions: totals.executions,
      steps: totals.steps,
      depth: totals.stats.maxDepth,
      elapsedMs: t - b.t0,
      blockedExecutions: totals.blocked,
    });
  }
  return false;
}

// ---- dpor -----------------------------------------------------------------------

/** Pending jobs the adaptive split aims for, per job slot (2 slots per worker thread). */
export const SPLIT_BACKLOG_PER_SLOT = 4;
/** Runs a job does before it hands back its rest when the coordinator is short of work. */
export const HUNGRY_BUDGET = 64;
/** Runs a job does before it hands back its rest when there is work enough: a long job still comes back. */
export const FED_BUDGET = 4096;

/**
 * The adaptive split: every job runs at most a budget of runs and then gives the rest of its
 * subtree back (its stack with sleep sets and wakeup trees), which the coordinator splits into
 * jobs at the nodes that really branch. The budget is small while the coordinator has fewer than
 * SPLIT_BACKLOG_PER_SLOT jobs waiting per slot, so the tree is split early and where it branches,
 * and large otherwise, so no job keeps a thread busy alone for long while others starve.
 */
export function splitBudget(backlog: number, slots: number): number {
  return backlog < SPLIT_BACKLOG_PER_SLOT * slots ? HUNGRY_BUDGET : FED_BUDGET;
}

/** @internal The dpor coordinator loop, exported so tests can drive it with an in-process pool. */
export async function parallelDpor(
  program: Program,
  spec: ProgramSpec,
  jobs: Jobs,
  budget: Budget,
  jopts: JobOptions,
  /** Fixed split depth; undefined: adaptive (jobs split where the tree branches, see splitBudget). */
  split: number | undefined,
  overrides?: ReadonlyMap<string, Function>,
  /** The adaptive split's budget rule (tests use tiny budgets to split everywhere). */
  budgetOf: (backlog: number, slots: number) => number = splitBudget,
): Promise<boolean> {
  const totals = budget.totals;
  let stopped = false;
  const coord = new DporCoordinator(
    program,
    jopts,
    split ?? 1,
    {
      run: (job, b, done) =>
        jobs.run({ spec, opts: jopts, kind: "dpor", job, ...(b === undefined ? {} : { budget: b }) }, done),
      canStart: () => !stopped && jobs.inflight < jobs.limit,
      budget: (backlog) => budgetOf(backlog, jobs.limit),
      accept: (out, sign) => (sign > 0 ? totals.add(out) : totals.sub(out)),
      blocked: () => {
        totals.blocked++;
      },
      deadBranch: () => {
        totals.stats.deadBranches++;
      },
      insertion: () => {
        totals.stats.insertions++;
      },
      rerun: () => {
        totals.reruns++;
      },
    },
    split === undefined,
    overrides,
  );
  if (!coord.init()) return false;
  coord.pump();
  while (jobs.inflight > 0) {
    await jobs.next();
    if (jobs.error !== null) throw jobs.error;
    if (!stopped && exhaustedBudget(budget, jopts.stopOnFirstViolation)) {
      stopped = true;
      stopJobs(jobs, budget.totals);
    }
    jobs.tick();
    coord.pump();
  }
  if (!stopped && !coord.finished) throw new Error("parallel dpor: work left but nothing running");
  return true;
}

// ---- exhaustive / bounded ---------------------------------------------------------

async function parallelDfs(
  program: Program,
  spec: ProgramSpec,
  jobs: Jobs,
  budget: Budget,
  jopts: JobOptions,
  split: number,
  bound: number,
  overrides?: ReadonlyMap<string, Function>,
): Promise<void> {
  const P = new DfsSearcher({ program, maxSteps: jopts.maxSteps ?? DEFAULT_MAX_STEPS, bound, overrides });
  let plan: number[] = [];
  for (;;) {
    while (jobs.inflight >= jobs.limit) {
      await jobs.next();
      if (jobs.error !== null) throw jobs.error;
    }
    if (exhaustedBudget(budget, jopts.stopOnFirstViolation)) {
      stopJobs(jobs, budget.totals);
      break;
    }
    const pr = P.probe(plan, split);
    jobs.run({ spec, opts: jopts, kind: "dfs", bound, job: { plan: pr.taken } }, (out) =>
      budget.totals.add(out),
    );
    let d = pr.taken.length - 1;
    while (d >= 0 && pr.taken[d] + 1 >= pr.allowed[d]) d--;
    if (d < 0) break;
    plan = pr.taken.slice(0, d);
    plan.push(pr.taken[d] + 1);
  }
  if (P.boundCut) budget.totals.cut.add("preemptions");
  while (jobs.inflight > 0) {
    periodicCheckpoint(budget);
    if (budget.opts.signal?.aborted && !budget.totals.cut.has("interrupted")) {
      // Ctrl-C waits for the last jobs only as long as the grace: the checkpoint has the ones that finished.
      budget.totals.cut.add("interrupted");
      stopJobs(jobs, budget.totals);
    }
    await jobs.next();
    if (jobs.error !== null) throw jobs.error;
    jobs.tick();
  }
}

// ---- random / pct -------------------------------------------------------------------

async function parallelSample(
  spec: ProgramSpec,
  jobs: Jobs,
  budget: Budget,
  jopts: JobOptions,
  strategy: "random" | "pct",
  seed: bigint,
  pctDepth: number,
  total: number,
): Promise<{ executions: number; violationAt: number }> {
  const totals = budget.totals;
  const chunk = 64;
  /** Violating index found so far (lowest) and its choices. */
  let best = Number.POSITIVE_INFINITY;
  let bestChoices: readonly number[] | null = null;
  let k = 0;
  let doneUpTo = 0;
  const finished = new Map<number, number>();
  const submit = (start: number, count: number, onDone?: (o: JobOutput) => void): void => {
    jobs.run(
      { spec, opts: jopts, kind: "sample", strategy, seed: seed.toString(), pctDepth, k, start, count },
      (out) => {
        totals.add(out);
        if (out.violationChoices !== null && start + out.violationIndex < best) {
          best = start + out.violationIndex;
          bestChoices = out.violationChoices;
        }
        finished.set(start, start + count);
        while (finished.has(doneUpTo)) doneUpTo = finished.get(doneUpTo)!;
        onDone?.(out);
      },
    );
  };
  let next = 0;
  if (strategy === "pct") {
    const n = Math.min(PCT_CALIBRATION, total);
    submit(0, n, (o) => {
      k = o.k;
    });
    while (jobs.inflight > 0) await jobs.next();
    if (jobs.error !== null) throw jobs.error;
    next = n;
  }
  const stopOnFirst = jopts.stopOnFirstViolation;
  while (next < total) {
    while (jobs.inflight >= jobs.limit) {
      await jobs.next();
      if (jobs.error !== null) throw jobs.error;
    }
    if (stopOnFirst && best < next) break;
    if (budget.opts.signal?.aborted) {
      totals.cut.add("interrupted");
      stopJobs(jobs, budget.totals);
      break;
    }
    if (budget.deadline !== undefined && now() >= budget.deadline) {
      totals.cut.add("time-limit");
      stopJobs(jobs, budget.totals);
      break;
    }
    const n = Math.min(chunk, total - next);
    submit(next, n);
    next += n;
  }
  await jobs.drain();
  totals.violation = bestChoices;
  if (stopOnFirst && bestChoices !== null) return { executions: best + 1, violationAt: best };
  return { executions: totals.executions, violationAt: best };
}

// ---- entry ----------------------------------------------------------------------------

/**
 * Explore the program built by `spec` on `jobs` worker threads. Same result
 * shape as explore(); with jobs <= 1 it is exploreAsync() in this thread.
 */
export async function exploreParallel(spec: ProgramSpec, opts: ParallelOptions = {}): Promise<ExploreResult> {
  const { program, overrides } = await loadSpec(spec);
  const jobsN = opts.jobs ?? availableParallelism();
  const strategy: Strategy = opts.strategy ?? "dpor";
  const resume = opts.resumeFrom;
  if (resume !== undefined && !isParallelState(resume.state))
    throw new Error("exploreParallel: the checkpoint is a single-job run's (resume it with jobs: 1)");
  if (jobsN <= 1 && opts.transport === undefined) {
    if (resume !== undefined)
      throw new Error("exploreParallel: the checkpoint is a parallel run's (resume it with jobs > 1)");
    return exploreAsync(program, { ...opts, overrides });
  }
  const stopOnFirst = opts.stopOnFirstViolation ?? true;
  const resumedMs = resume?.elapsedMs ?? 0;
  const jopts: JobOptions = {
    maxSteps: opts.maxSteps,
    stopOnFirstViolation: stopOnFirst,
    stopRunAtViolation: opts.stopRunAtViolation ?? stopOnFirst,
    maxExecutions: opts.maxExecutions,
    deadline: opts.timeLimitMs === undefined ? undefined : now() + opts.timeLimitMs - resumedMs,
  };
  const t0 = performance.now() - resumedMs;
  const totals = new Totals();
  totals.onViolation = opts.onViolation;
  const transport =
    opts.transport ??
    piscinaTransport(new Piscina({ filename: workerFile(), minThreads: jobsN, maxThreads: jobsN }));
  // Sampling runs are not resumed (as with one job); the others remember finished jobs for checkpoints.
  const sampling = strategy === "random" || strategy === "pct";
  const memo = sampling
    ? undefined
    : new JobMemo(transport, isParallelState(resume?.state) ? resume.state : undefined);
  const budget: Budget = { opts, totals, deadline: jopts.deadline, t0, lastProgress: t0, memo };
  const jobs = new Jobs(memo ?? transport, Math.max(1, jobsN) * 2, 250, opts.watch);
  const split = opts.splitDepth;
  let exhausted = true;
  let executionsOverride: number | null = null;
  try {
    switch (strategy) {
      // With several jobs the portfolio is its DPOR part: the split already starts many subtrees at once.
      case "portfolio":
      case "dpor": {
        const ok = await parallelDpor(program, spec, jobs, budget, jopts, split, overrides);
        // Nothing to split: one thread (a parallel checkpoint has nothing in it for that search).
        if (!ok) return exploreAsync(program, { ...opts, resumeFrom: undefined, overrides });
        break;
      }
      case "exhaustive":
      case "bounded":
        await parallelDfs(
          program,
          spec,
          jobs,
          budget,
          jopts,
          split ?? 4,
          strategy === "exhaustive" ? Number.POSITIVE_INFINITY : (opts.preemptionBound ?? 2),
          overrides,
        );
        break;
      case "random":
      case "pct": {
        const total = opts.maxExecutions ?? 1000;
        const r = await parallelSample(
          spec,
          jobs,
          budget,
          { ...jopts, maxExecutions: undefined },
          strategy,
          opts.seed ?? 0n,
          opts.pctDepth ?? 3,
          total,
        );
        executionsOverride = r.executions;
        exhausted = false;
        if (!totals.cut.has("interrupted") && !totals.cut.has("time-limit")) totals.cut.add("max-executions");
        if (totals.violation !== null && stopOnFirst) {
          totals.cut.delete("max-executions");
          totals.cut.add("first-violation");
        }
        break;
      }
    }
  } finally {
    await transport.close();
  }
  if (totals.cut.has("first-violation") && totals.violation === null) totals.cut.delete("first-violation");
  if (totals.violation !== null && stopOnFirst) totals.cut.add("first-violation");
  const cutBy = [...totals.cut];
  const complete = exhausted && cutBy.length === 0;
  const checkpoint = complete ? undefined : checkpointOf(budget, strategy);
  let violation: ExploreResult["violation"] = null;
  if (totals.violation !== null) {
    const choices = totals.violation;
    const result = runProgram(program, {
      scheduler: new ReplayScheduler(choices),
      record: true,
      maxSteps: (opts.maxSteps ?? DEFAULT_MAX_STEPS) + 1,
      stopOnViolation: jopts.stopRunAtViolation,
      overrides,
    });
    violation = { result, choices, replay: encodeChoices(choices) };
  }
  return {
    strategy,
    complete,
    cutBy,
    executions: executionsOverride ?? totals.executions,
    steps: totals.steps,
    elapsedMs: performance.now() - t0,
    ...(strategy === "dpor" || strategy === "portfolio" ? { blockedExecutions: totals.blocked } : {}),
    violation,
    stats: totals.stats,
    ...(checkpoint ? { checkpoint } : {}),
  };
}
