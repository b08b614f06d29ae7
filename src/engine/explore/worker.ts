import { type DfsJob, DfsSearcher } from "./dfs.js";
import { type DporJob, DporSearcher, type ExportedInsertion } from "./dpor.js";
import { DEFAULT_MAX_STEPS, Driver, type DriverSummary } from "./explore.js";
import type { Searcher } from "./outcome.js";
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

export type JobInput = { readonly spec: ProgramSpec; readonly opts: JobOptions } & (
  | { readonly kind: "dpor"; readonly job: DporJob }
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
}

/** Run one job of a parallel exploration (piscina task). */
export default async function runJob(input: JobInput): Promise<JobOutput> {
  const { program, overrides } = await loadSpec(input.spec);
  const o = input.opts;
  const maxSteps = o.maxSteps ?? DEFAULT_MAX_STEPS;
  const base = { program, maxSteps, stopRunAtViolation: o.stopRunAtViolation, overrides };
  let searcher: Searcher;
  let dpor: DporSearcher | null = null;
  let pct: PctSearcher | null = null;
  let maxExecutions = o.maxExecutions;
  switch (input.kind) {
    case "dpor":
      dpor = new DporSearcher(base);
      dpor.setupJob(input.job);
      searcher = dpor;
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
    },
    searcher,
  );
  while (!driver.work(Number.POSITIVE_INFINITY)) {}
  return { ...driver.summary(), exported: dpor?.exported ?? [], k: pct?.k ?? 0 };
}
