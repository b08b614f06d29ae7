import { randomUUID } from "node:crypto";
import { Queue, QueueEvents } from "bullmq";
import type { Redis } from "ioredis";
import type { JobTransport } from "../transport.js";
import type { JobInput, JobOutput } from "../worker.js";
import { payloadHash, type QueueItem } from "./item.js";
import { connectRedis, programKey, QueueError, type RedisTarget, redact } from "./redis.js";

export interface QueueTransportOptions {
  readonly target: RedisTarget;
  readonly queueName: string;
  readonly version: string;
  /** What the workers rebuild the program from (plain JSON; their resolver knows its shape). */
  readonly program: unknown;
  /** A line worth telling the user: an item taken over from a lost worker, connection trouble. */
  readonly note?: (line: string) => void;
}

/** Items' programs outlive a coordinator that crashed by this long, then Redis drops them. */
const PROGRAM_TTL_S = 7 * 24 * 3600;

interface Pending {
  resolve(out: JobOutput): void;
  reject(e: unknown): void;
}

/**
 * Jobs of a parallel exploration as items of a BullMQ queue, run by `tdplab worker` processes on
 * any machine. Each item has its own id; the coordinator takes the first result that arrives for
 * an id and ignores any other (a worker that lost its lock while another re-ran the item), so a
 * result is never counted twice. An item whose worker died stays locked until its lock expires,
 * then BullMQ's stalled-job check of a live worker puts it back in the queue (worker.ts).
 */
export class QueueTransport implements JobTransport {
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  private readonly run_ = randomUUID().slice(0, 8);
  /** Items put back in the queue after their worker was lost. */
  stalled = 0;

  private constructor(
    private readonly o: QueueTransportOptions,
    private readonly conns: readonly Redis[],
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly hash: string,
  ) {
    events.on("completed", ({ jobId, returnvalue }) => {
      const p = this.pending.get(jobId);
      if (p === undefined) return;
      this.pending.delete(jobId);
      p.resolve((typeof returnvalue === "string" ? JSON.parse(returnvalue) : returnvalue) as JobOutput);
    });
    events.on("failed", ({ jobId, failedReason }) => {
      const p = this.pending.get(jobId);
      if (p === undefined) return;
      this.pending.delete(jobId);
      p.reject(new QueueError(`item ${jobId} failed on a worker: ${redact(o.target, failedReason)}`));
    });
    events.on("stalled", ({ jobId }) => {
      if (!this.pending.has(jobId)) return;
      this.stalled++;
      o.note?.(`queue: item ${jobId} lost its worker; it runs again on another (stalled-job recovery)`);
    });
  }

  static async open(o: QueueTransportOptions): Promise<QueueTransport> {
    const note = (m: string) => o.note?.(`queue ${o.target.shown}: ${m}`);
    const a = await connectRedis(o.target, note);
    let b: Redis;
    try {
      b = await connectRedis(o.target, note);
    } catch (e) {
      a.disconnect();
      throw e;
    }
    const payload = JSON.stringify(o.program);
    const hash = payloadHash(payload);
    await a.set(programKey(o.queueName, hash), payload, "EX", PROGRAM_TTL_S);
    const queue = new Queue(o.queueName, { connection: a });
    const events = new QueueEvents(o.queueName, { connection: b });
    queue.on("error", (e) => note(redact(o.target, e.message)));
    events.on("error", (e) => note(redact(o.target, e.message)));
    await events.waitUntilReady();
    const t = new QueueTransport(o, [a, b], queue, events, hash);
    const workers = await queue.getWorkersCount().catch(() => -1);
    if (workers === 0)
      o.note?.(
        `queue ${o.target.shown}: no worker is connected yet; items wait until one is (tdplab worker --queue …)`,
      );
    return t;
  }

  run(input: JobInput, opts: { readonly signal: AbortSignal }): Promise<JobOutput> {
    const id = `${this.run_}-${++this.seq}`;
    const { spec: _spec, ...rest } = input;
    const item: QueueItem = { version: this.o.version, run: this.run_, program: this.hash, input: rest };
    return new Promise<JobOutput>((resolve, reject) => {
      const abort = () => {
        if (!this.pending.delete(id)) return;
        // A waiting item is taken back; one a worker holds finishes there and is ignored.
        this.queue.remove(id).catch(() => {});
        reject(new Error("aborted"));
      };
      this.pending.set(id, {
        resolve: (out) => {
          opts.signal.removeEventListener("abort", abort);
          resolve(out);
        },
        reject: (e) => {
          opts.signal.removeEventListener("abort", abort);
          reject(e);
        },
      });
      opts.signal.addEventListener("abort", abort, { once: true });
      this.queue
        .add("explore", item, { jobId: id, removeOnComplete: true, removeOnFail: 1000, attempts: 1 })
        .catch((e: Error) => {
          if (!this.pending.delete(id)) return;
          reject(
            new QueueError(
              `cannot queue an item at ${this.o.target.shown}: ${redact(this.o.target, e.message)}`,
            ),
          );
        });
    });
  }

  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [id, p] of this.pending) {
      this.queue.remove(id).catch(() => {});
      p.reject(new Error("closed"));
    }
    this.pending.clear();
    await this.events.close();
    await this.queue.close();
    await Promise.all(this.conns.map((c) => c.quit().catch(() => c.disconnect())));
  }
}
