import { Worker } from "node:worker_threads";
import type { Progress } from "../../engine/explore/types.js";
import { type BeaconSnapshot, beaconBuffer, readBeacon } from "../../engine/shared-beacon.js";
import { UsageError } from "../exit-codes.js";
import type { JobEvent, WatchedJob } from "./jobs.js";

/** Messages from a watched thread. */
export type WorkerMessage =
  | JobEvent
  | { readonly type: "done"; readonly value: unknown }
  /** A job of a parallel run (another thread, or a queue's worker) found the user's task code looping. */
  | { readonly type: "stalled"; readonly beacon: BeaconSnapshot; readonly stalledMs: number }
  | { readonly type: "error"; readonly usage: boolean; readonly message: string; readonly stack?: string };

export interface WatchOptions {
  /** Aborting asks the thread to stop cleanly; one that does not answer within GRACE_MS is killed. */
  readonly signal: AbortSignal;
  /** A task's code that runs this long without reaching a primitive is stopped as the user's loop. */
  readonly stepTimeoutMs: number;
  /**
   * The run's own time limit, counted from the thread's start of work: the thread stops itself
   * there; one still running GRACE_MS later is killed.
   */
  readonly timeLimitMs?: number;
  /** Choices per run the beacon can publish (a longer stalled run gets no replay string). */
  readonly choiceCapacity: number;
  /**
   * Watch the tasks' code for loops that never yield (the job runs the user's modules). Without
   * it the thread publishes nothing, and only stop requests and the time limit apply.
   */
  readonly watchTasks: boolean;
  readonly onEvent?: (e: JobEvent) => void;
  /** How long a stop may take before the thread is killed (default GRACE_MS). */
  readonly graceMs?: number;
}

/** How a watched job ended: it answered, or it had to be killed. */
export type Watched =
  | { readonly kind: "done"; readonly value: unknown }
  | {
      readonly kind: "killed";
      /** What stopped it: its own task's loop, Ctrl-C (or another stop signal), or the time limit. */
      readonly why: "step-timeout" | "interrupted" | "time-limit";
      /** Where it was: the task, model function and the current run's choices. */
      readonly beacon: BeaconSnapshot;
      /** How long that task's code had run without reaching a primitive (null: the engine's own code ran). */
      readonly stalledMs: number | null;
      /** The last progress the thread reported (its statistics), if any. */
      readonly progress: Progress | null;
      /** The choices of a counterexample the thread had found (not shrunk), if any. */
      readonly found: readonly number[] | null;
    };

/** How long a thread asked to stop (signal, time limit) may take before it is killed. */
export const GRACE_MS = 1000;
const POLL_MS = 50;

function workerUrl(): URL {
  const here = import.meta.url;
  return new URL(here.endsWith(".ts") ? "./worker-entry.mjs" : "./worker.js", here);
}

/**
 * Run `job` in a worker thread this thread watches. The worker publishes, through a shared
 * beacon, whether a task's code is running and how often control came back to the engine; this
 * thread is free the whole time, so a stop signal or a time limit always works, and a task that
 * never yields is found and named instead of hanging the process.
 */
export function runWatched(job: WatchedJob, opts: WatchOptions): Promise<Watched> {
  const sab = beaconBuffer({ choiceCapacity: opts.choiceCapacity });
  // Set on a stop request: code that cannot see messages (a simulation point) polls it.
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(workerUrl(), {
    workerData: { job, beacon: sab, stop: stop.buffer, watchTasks: opts.watchTasks },
  });
  return new Promise<Watched>((resolve, reject) => {
    let settled = false;
    let progress: Progress | null = null;
    let lastCounter = -1;
    let lastChange = performance.now();
    let startedAt: number | null = null;
    let stopRequestedAt: number | null = null;
    let stopWhy: "interrupted" | "time-limit" = "interrupted";
    let found: readonly number[] | null = null;

    const finish = (w: Watched | Error) => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      opts.signal.removeEventListener("abort", onAbort);
      // Whatever the worker was doing, nothing more is wanted from it.
      void worker.terminate();
      if (w instanceof Error) reject(w);
      else resolve(w);
    };
    const kill = (why: "step-timeout" | "interrupted" | "time-limit", now: number) => {
      const b = readBeacon(sab);
      finish({
        kind: "killed",
        why,
        beacon: b,
        stalledMs: b.inTask ? now - lastChange : null,
        progress,
        found,
      });
    };
    const onAbort = () => {
      stopWhy = "interrupted";
      stopRequestedAt ??= performance.now();
      Atomics.store(stop, 0, 1);
      worker.postMessage({ type: "abort" });
    };
    const poll = () => {
      const now = performance.now();
      const b = readBeacon(sab);
      if (b.counter !== lastCounter) {
        lastCounter = b.counter;
        lastChange = now;
      } else if (b.inTask && now - lastChange >= opts.stepTimeoutMs) {
        kill("step-timeout", now);
        return;
      }
      if (opts.timeLimitMs !== undefined && startedAt !== null && stopRequestedAt === null) {
        if (now - startedAt >= opts.timeLimitMs) {
          stopWhy = "time-limit";
          stopRequestedAt = now;
        }
      }
      if (stopRequestedAt !== null && now - stopRequestedAt >= (opts.graceMs ?? GRACE_MS)) kill(stopWhy, now);
    };
    const timer = setInterval(poll, POLL_MS);
    if (opts.signal.aborted) onAbort();
    else opts.signal.addEventListener("abort", onAbort);

    worker.on("message", (m: WorkerMessage) => {
      switch (m.type) {
        case "done":
          finish({ kind: "done", value: m.value });
          return;
        case "error":
          if (m.usage) finish(new UsageError(m.message));
          else finish(Object.assign(new Error(m.message), { stack: m.stack ?? m.message }));
          return;
        case "stalled":
          finish({
            kind: "killed",
            why: "step-timeout",
            beacon: m.beacon,
            stalledMs: m.stalledMs,
            progress,
            found,
          });
          return;
        case "started":
          startedAt = performance.now();
          break;
        case "found":
          found = m.choices;
          break;
        case "progress":
          progress = m.progress;
          break;
        default:
          break;
      }
      opts.onEvent?.(m);
    });
    worker.on("error", (e) => finish(e));
    worker.on("exit", (code) => finish(new Error(`the watched worker thread exited with code ${code}`)));
  });
}
