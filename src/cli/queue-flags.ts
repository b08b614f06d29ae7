import { DEFAULT_QUEUE_NAME } from "../engine/explore/queue/item.js";
import { parseRedisUrl, QueueError, type RedisTarget } from "../engine/explore/queue/redis.js";
import { MODEL_VERSION, TOOL_VERSION } from "../version.js";
import { UsageError } from "./exit-codes.js";

/** What a queue's coordinator and workers compare: an item is only run by the same tdplab and model. */
export const QUEUE_VERSION = `${TOOL_VERSION} (model ${MODEL_VERSION})`;

export interface QueueFlags {
  readonly target: RedisTarget;
  readonly queueName: string;
}

/** --queue URL and --queue-name NAME, checked; the URL's credentials never reach a message. */
export function queueFlags(url: string, name: string | undefined): QueueFlags {
  let target: RedisTarget;
  try {
    target = parseRedisUrl(url);
  } catch (e) {
    if (e instanceof QueueError) throw new UsageError(e.message);
    throw e;
  }
  const queueName = name ?? DEFAULT_QUEUE_NAME;
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(queueName))
    throw new UsageError(`--queue-name takes letters, digits, '.', '_' and '-', not '${queueName}'`);
  return { target, queueName };
}
