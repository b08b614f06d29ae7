import { createHash } from "node:crypto";
import type { Piscina } from "piscina";
import { runOnPool, stopFlag } from "./pool-watch.js";
import type { CutReason } from "./types.js";
import type { JobInput, JobOutput } from "./worker.js";

/**
 * Where the jobs of a parallel exploration run: worker threads of this process (piscina) or the
 * workers of a queue (queue-transport.ts). The coordinator only submits jobs and awaits outputs;
 * it never learns which machine ran one.
 */
export interface JobTransport {
  /** Run one job; rejects if it fails. After `signal` aborts, the outcome is ignored. */
  run(input: JobInput, opts: { readonly signal: AbortSignal }): Promise<JobOutput>;
  /**
   * Ask every running job to end now and answer with what it did (a stop of the run), where the
   * transport can reach running jobs; otherwise they run on until aborted.
   */
  stop?(): void;
  close(): Promise<void>;
}

export function piscinaTransport(pool: Piscina): JobTransport {
  // A job aborted as the run stops (time limit, Ctrl-C) may still answer from its worker; piscina
  // reports that answer as an 'error' event of the pool, which with no listener would end the
  // process with a stack trace. Once a job was aborted such answers are expected and ignored;
  // before that, a pool error fails the next job, so it is reported like any other failure.
  let stopping = false;
  let failure: unknown = null;
  const flag = stopFlag();
  pool.on("error", (e: unknown) => {
    if (!stopping) failure ??= e;
  });
  return {
    run: (input, opts) => {
      if (failure !== null) return Promise.reject(failure);
      opts.signal.addEventListener(
        "abort",
        () => {
          stopping = true;
        },
        { once: true },
      );
      return runOnPool(pool, input, flag.buffer, opts.signal);
    },
    stop: () => {
      stopping = true;
      flag.raise();
    },
    close: () => {
      stopping = true;
      return pool.destroy();
    },
  };
}

/** Cuts after which a job's output depends on when it ran, not only on what it was given. */
const TIMING_CUTS: ReadonlySet<CutReason> = new Set(["time-limit", "max-executions", "interrupted"]);

/**
 * What identifies a job's output: the job itself and the options, less the deadline (absolute
 * time, different in every leg of a resumed run). A job's output is a pure function of this, so
 * two jobs with the same key explore the same subtree the same way.
 */
export function jobKey(input: JobInput): string {
  const { spec: _spec, opts, watch: _w, stop: _s, beacon: _b, ...job } = input;
  const { deadline: _deadline, ...o } = opts;
  return createHash("sha256")
    .update(JSON.stringify([o, job]))
    .digest("hex")
    .slice(0, 32);
}

/** The state of a parallel run's checkpoint: every finished job's output, by key. */
export interface ParallelState {
  readonly parallel: 1;
  readonly done: readonly (readonly [string, JobOutput])[];
}

export function isParallelState(state: unknown): state is ParallelState {
  return (
    typeof state === "object" &&
    state !== null &&
    (state as ParallelState).parallel === 1 &&
    Array.isArray((state as ParallelState).done)
  );
}

/**
 * Remembers the output of every job that finished on its own (no budget cut), so a checkpoint can
 * carry them and a resumed run answers those jobs from memory. The resumed coordinator starts from
 * the top again and makes the same decisions as the first leg for the same outputs, so it reaches
 * the same jobs; only the ones that had not finished run again. A job that went stale in the first
 * leg has another key (its wakeup subtree grew), so its old output is never taken for the new one.
 */
export class JobMemo implements JobTransport {
  private readonly done = new Map<string, JobOutput>();
  /** Jobs answered from the checkpoint. */
  hits = 0;

  constructor(
    private readonly inner: JobTransport,
    resumed?: ParallelState,
  ) {
    for (const [k, out] of resumed?.done ?? []) this.done.set(k, out);
  }

  run(input: JobInput, opts: { readonly signal: AbortSignal }): Promise<JobOutput> {
    const key = jobKey(input);
    const hit = this.done.get(key);
    if (hit !== undefined) {
      this.hits++;
      return Promise.resolve(hit);
    }
    return this.inner.run(input, opts).then((out) => {
      if (!out.cutBy.some((c) => TIMING_CUTS.has(c))) this.done.set(key, out);
      return out;
    });
  }

  stop(): void {
    this.inner.stop?.();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  state(): ParallelState {
    return { parallel: 1, done: [...this.done] };
  }
}
