import type { Piscina } from "piscina";
import { type BeaconSnapshot, beaconBuffer, beaconPulse, readBeacon } from "../shared-beacon.js";
import type { JobInput, JobOutput } from "./worker.js";

/**
 * Jobs of a parallel run on the threads of a piscina pool, each where the thread that submitted it
 * can stop it: a job is handed a stop flag (shared memory: the job ends after the run in progress,
 * or within INTERRUPT_EVERY steps, and answers with what it did) and, when it runs the user's code
 * (JobInput.watch), a beacon. A job whose task code runs `stepTimeoutMs` without reaching a
 * primitive never answers, so the submitting thread reads the beacon, ends the job's thread
 * (piscina terminates the worker of an aborted task) and reports where the loop is.
 */

/** What a job that runs the user's code is watched with (travels with the job, also to a queue). */
export interface JobWatch {
  readonly stepTimeoutMs: number;
  /** Choices of one run the beacon publishes (a longer stalled run gets no replay string). */
  readonly choiceCapacity: number;
}

/** Where a job's thread was found looping, and for how long. */
export interface Stalled {
  readonly beacon: BeaconSnapshot;
  readonly stalledMs: number;
}

/** A job ran the user's code too long without reaching a primitive: the run must stop. */
export class JobStalled extends Error {
  constructor(readonly stalled: Stalled) {
    super(
      `a job's task ${stalled.beacon.task ?? "?"} ran ${Math.round(stalled.stalledMs)} ms without reaching a primitive`,
    );
    this.name = "JobStalled";
  }
}

const POLL_MS = 50;

/** A stop flag jobs share: set once, every job of the run ends early. */
export function stopFlag(): { readonly buffer: SharedArrayBuffer; raise(): void } {
  const buffer = new SharedArrayBuffer(4);
  const flag = new Int32Array(buffer);
  return { buffer, raise: () => Atomics.store(flag, 0, 1) };
}

/**
 * Run `input` on `pool` with the run's stop flag. With input.watch, rejects with JobStalled when the
 * job's task code stalls (after ending its thread). `signal` abandons the job (its thread ends).
 */
export function runOnPool(
  pool: Piscina,
  input: JobInput,
  stop: SharedArrayBuffer,
  signal: AbortSignal,
): Promise<JobOutput> {
  const watch = input.watch;
  if (watch === undefined) return pool.run({ ...input, stop }, { signal }) as Promise<JobOutput>;
  const beacon = beaconBuffer({ choiceCapacity: watch.choiceCapacity });
  const own = new AbortController();
  const onAbort = () => own.abort();
  if (signal.aborted) own.abort();
  else signal.addEventListener("abort", onAbort, { once: true });
  return new Promise<JobOutput>((resolve, reject) => {
    let counter = -1;
    let since = performance.now();
    let stalled: Stalled | null = null;
    const timer = setInterval(() => {
      const now = performance.now();
      const p = beaconPulse(beacon);
      if (p.counter !== counter) {
        counter = p.counter;
        since = now;
      } else if (p.inTask && now - since >= watch.stepTimeoutMs) {
        stalled = { beacon: readBeacon(beacon), stalledMs: now - since };
        clearInterval(timer);
        own.abort();
      }
    }, POLL_MS);
    const settle = () => {
      clearInterval(timer);
      signal.removeEventListener("abort", onAbort);
    };
    (pool.run({ ...input, stop, beacon }, { signal: own.signal }) as Promise<JobOutput>).then(
      (out) => {
        settle();
        resolve(out);
      },
      (e: unknown) => {
        settle();
        reject(stalled === null ? e : new JobStalled(stalled));
      },
    );
  });
}
