import { BEACON } from "../beacon.js";
import { SharedBeacon } from "../shared-beacon.js";
import { type DfsJob, DfsSearcher } from "./dfs.js";
import { type DporJob, type DporRest, DporSearcher, type ExportedInsertion } from "./dpor.js";
import { DEFAULT_MAX_STEPS, Driver, type DriverSummary } from "./explore.js";
import type { Searcher } from "./outcome.js";
import type { JobWatch, Stalled } from "./pool-watch.js";
import { loadSpec, type ProgramSpec } from "./program-spec.js";
import { PctSearcher, RandomSearcher } from "./sample.js";

/** Options every job shares. timeLimitMs counts from the job's start. */
export interface JobOptions {
  readonly maxSteps?: number;
  readonly stopOnFirstViolation: boolean;
  readonly stopRunAtViolation: boolean;
  readonly maxExecutions?: number;
  /** Absolute deadline (performance.timeOrigin + performance.now() scale), if any. */
  readonly deadline?: number;
}

export type JobInput = {
  readonly spec: ProgramSpec;
  readonly opts: JobOptions;
  /** The job runs the user's code: watch it for loops that never yield (pool-watch.ts). */
  readonly watch?: JobWatch;
  /** Set by a pool on this machine: a flag the submitter raises to end the job early (pool-watch.ts). */
  readonly stop?: SharedArrayBuffer;
  /** Set by a pool on this machine for a watched job: where the job publishes what it runs. */
  readonly beacon?: SharedArrayBuffer;
} & (
  | {
      readonly kind: "dpor";
      readonly job: DporJob;
      /** Runs (blocked ones included) after which the job stops and gives back what is left. */
      readonly budget?: number;
    }
  | { readonly kind: "dfs"; readonly bound: number; readonly job: DfsJob }
  | {
      readonly kind: "sample";
      readonly strategy: "random" | "pct";
      readonly seed: string;
      readonly pctDepth: number;
      readonly k: number;
      readonly start: number;
      readonly count: number;
    }
);

export interface JobOutput extends DriverSummary {
  readonly exported: readonly ExportedInsertion[];
  /** pct calibration: the k measured. */
  readonly k: number;
  /** A dpor job stopped by its budget: the work it leaves to the coordinator. */
  readonly rest?: DporRest;
  /** A queue worker found the job's task code looping: the run stops with the user's error. */
  readonly stalled?: Stalled;
}

/** An AbortSignal's `aborted` read from a shared flag another thread raises. */
function flagSignal(buffer: SharedArrayBuffer): AbortSignal {
  const flag = new Int32Array(buffer);
  return {
    get aborted() {
      return Atomics.load(flag, 0) !== 0;
    },
  } as AbortSignal;
}

/** Ends a search after `budget` runs, keeping what it had left. */
class Budgeted implements Searcher {
  private runs = 0;
  rest: DporRest | undefined;

  constructor(
    private readonly inner: DporSearcher,
    private readonly budget: number,
  ) {}

  get boundCut(): boolean {
    return this.inner.boundCut;
  }
  get counters(): Searcher["counters"] {
    return this.inner.counters;
  }
  run: Searcher["run"] = (stop) => this.inner.run(stop);
  checkpointState = (): unknown => null;
  memory: Searcher["memory"] = () => this.inner.memory();

  advance(): boolean {
    if (!this.inner.advance()) return false;
    if (++this.runs < this.budget) return true;
    this.rest = this.inner.restState();
    return false;
  }
}

/** Run one job of a parallel exploration (piscina task). */
export default async function runJob(input: JobInput): Promise<JobOutput> {
  // One job at a time per thread: the beacon is this job's until it answers.
  const beacon = input.beacon === undefined ? null : new SharedBeacon(input.beacon);
  BEACON.current = beacon;
  try {
    return await runJobWith(input);
  } finally {
    BEACON.current = null;
  }
}

async function runJobWith(input: JobInput): Promise<JobOutput> {
  // Not watched: loading tdplab's model takes seconds on a busy machine. A user's module that loops
  // at its top level is caught before any thread loads it (the CLI imports it watched first).
  const { program, overrides } = await loadSpec(input.spec);
  const o = input.opts;
  const maxSteps = o.maxSteps ?? DEFAULT_MAX_STEPS;
  const base = { program, maxSteps, stopRunAtViolation: o.stopRunAtViolation, overrides };
  let searcher: Searcher;
  let dpor: DporSearcher | null = null;
  let pct: PctSearcher | null = null;
  let budgeted: Budgeted | null = null;
  let maxExecutions = o.maxExecutions;
  switch (input.kind) {
    case "dpor":
      dpor = new DporSearcher(base);
      dpor.setupJob(input.job);
      searcher = dpor;
      if (input.budget !== undefined) searcher = budgeted = new Budgeted(dpor, input.budget);
      break;
    case "dfs": {
      const s = new DfsSearcher({ ...base, bound: input.bound });
      s.setupJob(input.job);
      searcher = s;
      break;
    }
    case "sample": {
      const cfg = { ...base, seed: BigInt(input.seed) };
      const s = input.strategy === "pct" ? new PctSearcher(cfg, input.pctDepth) : new RandomSearcher(cfg);
      if (s instanceof PctSearcher) {
        pct = s;
        s.k = input.k;
      }
      s.skipTo(input.start);
      searcher = s;
      maxExecutions = Math.min(maxExecutions ?? input.count, input.count);
      break;
    }
  }
  const now = performance.timeOrigin + performance.now();
  const driver = new Driver(
    program,
    {
      strategy: input.kind === "sample" ? input.strategy : input.kind === "dpor" ? "dpor" : "exhaustive",
      maxSteps,
      stopOnFirstViolation: o.stopOnFirstViolation,
      stopRunAtViolation: o.stopRunAtViolation,
      overrides,
      maxExecutions,
      timeLimitMs: o.deadline === undefined ? undefined : Math.max(0, o.deadline - now),
      ...(input.stop === undefined ? {} : { signal: flagSignal(input.stop) }),
    },
    searcher,
  );
  while (!driver.work(Number.POSITIVE_INFINITY)) {}
  const rest = budgeted?.rest;
  return { ...driver.summary(), exported: dpor?.exported ?? [], k: pct?.k ?? 0, ...(rest ? { rest } : {}) };
}
