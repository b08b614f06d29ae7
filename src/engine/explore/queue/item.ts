import { createHash } from "node:crypto";
import type { JobInput } from "../worker.js";

/** The queue's name unless the user picks another (`--queue-name`). */
export const DEFAULT_QUEUE_NAME = "tdplab";

/** One work item on the queue: a job of a parallel exploration, less the program, which it names by hash. */
export interface QueueItem {
  /** The coordinator's tdplab version; a worker of another version refuses the item. */
  readonly version: string;
  /** The coordinating run, so items of runs sharing a queue are told apart in logs. */
  readonly run: string;
  /** SHA-256 of the program payload, stored once per run under programKey(queue, hash). */
  readonly program: string;
  readonly input: Omit<JobInput, "spec">;
}

/** Hex SHA-256 of a program payload (its JSON text), checked by the coordinator that stores it and by every worker that reads it. */
export function payloadHash(payload: string): string {
  return createHash("sha256").update(payload).digest("hex");
}
