import { type Job, UnrecoverableError, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { Piscina } from "piscina";
import { workerFile } from "../parallel.js";
import { JobStalled, runOnPool, stopFlag } from "../pool-watch.js";
import type { ProgramSpec } from "../program-spec.js";
import { emptyStats } from "../types.js";
import type { JobInput, JobOutput } from "../worker.js";
import { payloadHash, type QueueItem } from "./item.js";
import { connectRedis, programKey, type RedisTarget, redact } from "./redis.js";

export interface QueueWorkerOptions {
  readonly target: RedisTarget;
  readonly queueName: string;
  /** This tdplab's version: items from another are refused. */
  readonly version: string;
  /** Items run at once, each on its own thread. */
  readonly concurrency: number;
  /**
   * How long an item stays locked to a worker that stopped answering before another worker takes
   * it over (BullMQ's lockDuration; the stalled-job check runs as often).
   */
  readonly lockDurationMs: number;
  /** Turn a program payload into a spec that this machine's threads can load (files written by content). */
  readonly resolveProgram: (payload: unknown) => Promise<ProgramSpec>;
  readonly log: (line: string) => void;
  /** Log every item's start and end. */
  readonly verbose?: boolean;
  /** Stop taking items; the ones in hand are finished first. */
  readonly signal: AbortSignal;
}

export interface QueueWorkerSummary {
  readonly items: number;
  readonly refused: number;
  readonly executions: number;
}

/**
 * A worker of the queue: takes items, runs each on a thread of its own pool, returns the job's
 * output as the item's result. The item is run off this thread so that BullMQ keeps renewing its
 * lock while it runs: a lock that expired would let another worker run it a second time.
 */
/** An item's result when its task code stalled: nothing counted, and where the loop was. */
function stalledOutput(e: JobStalled): JobOutput {
  return {
    executions: 0,
    blocked: 0,
    steps: 0,
    exhausted: false,
    cutBy: [],
    stats: emptyStats(),
    violationChoices: null,
    violationIndex: -1,
    exported: [],
    k: 0,
    stalled: e.stalled,
  };
}

export async function runQueueWorker(o: QueueWorkerOptions): Promise<QueueWorkerSummary> {
  const note = (m: string) => o.log(`queue ${o.target.shown}: ${m}`);
  const conns: Redis[] = [];
  try {
    conns.push(await connectRedis(o.target, note));
    conns.push(await connectRedis(o.target, note));
  } catch (e) {
    for (const c of conns) c.disconnect();
    throw e;
  }
  const [data, blocking] = conns;
  const pool = new Piscina({ filename: workerFile(), minThreads: o.concurrency, maxThreads: o.concurrency });
  const programs = new Map<string, Promise<ProgramSpec>>();
  const never = stopFlag();
  const noAbort = new AbortController().signal;
  let items = 0;
  let refused = 0;
  let executions = 0;

  /** The program an item names, fetched once per hash and checked against it. */
  const programOf = (hash: string): Promise<ProgramSpec> => {
    let p = programs.get(hash);
    if (p === undefined) {
      p = (async () => {
        const payload = await data.get(programKey(o.queueName, hash));
        if (payload === null)
          throw new UnrecoverableError(`program ${hash.slice(0, 16)} is not on the queue`);
        if (payloadHash(payload) !== hash)
          throw new UnrecoverableError(`program ${hash.slice(0, 16)} does not match its hash`);
        return o.resolveProgram(JSON.parse(payload));
      })();
      // A failure is not remembered: the next item asks again.
      p.catch(() => programs.delete(hash));
      programs.set(hash, p);
    }
    return p;
  };

  const process_ = async (job: Job<QueueItem>): Promise<JobOutput> => {
    const item = job.data;
    if (item.version !== o.version) {
      refused++;
      o.log(`refused item ${job.id}: it is from tdplab ${item.version}, this worker is ${o.version}`);
      throw new UnrecoverableError(
        `refused by a worker of tdplab ${o.version}: the item is from tdplab ${item.version}`,
      );
    }
    const spec = await programOf(item.program);
    if (o.verbose) o.log(`item ${job.id}: started`);
    let out: JobOutput;
    try {
      // Never raised: an item runs to its end (its deadline, if any, stops it).
      out = await runOnPool(pool, { ...item.input, spec } as JobInput, never.buffer, noAbort);
    } catch (e) {
      if (!(e instanceof JobStalled)) throw e;
      // The user's loop: the thread was ended; the coordinator stops the run with where it was.
      o.log(`item ${job.id}: ${e.message}`);
      return stalledOutput(e);
    }
    items++;
    executions += out.executions;
    if (o.verbose) o.log(`item ${job.id}: ${out.executions} executions`);
    return out;
  };

  const worker = new Worker<QueueItem, JobOutput>(o.queueName, process_, {
    connection: blocking,
    concurrency: o.concurrency,
    lockDuration: o.lockDurationMs,
    stalledInterval: o.lockDurationMs,
    // An item may lose several workers in a row before it is given up as failing.
    maxStalledCount: 5,
  });
  worker.on("error", (e) => note(redact(o.target, e.message)));
  worker.on("failed", (job, e) => {
    if (job !== undefined && !(e instanceof UnrecoverableError)) o.log(`item ${job.id} failed: ${e.message}`);
  });
  await worker.waitUntilReady();
  o.log(
    `tdplab worker ${o.version}: queue '${o.queueName}' at ${o.target.shown}, ${o.concurrency} item${o.concurrency === 1 ? "" : "s"} at a time`,
  );
  if (!o.signal.aborted) await new Promise((r) => o.signal.addEventListener("abort", r, { once: true }));
  o.log("stopping: finishing the items in hand");
  try {
    await worker.close();
    await pool.destroy();
  } finally {
    await Promise.all(conns.map((c) => c.quit().catch(() => c.disconnect())));
  }
  return { items, refused, executions };
}
