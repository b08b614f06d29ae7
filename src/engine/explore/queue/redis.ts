import { Redis } from "ioredis";

/** A queue that cannot be used: unreachable, refused, misconfigured. Message only, credentials redacted. */
export class QueueError extends Error {
  override name = "QueueError";
}

/** Where the queue lives, parsed once; `shown` is what may be printed (no user name or password). */
export interface RedisTarget {
  readonly url: string;
  readonly shown: string;
  /** Strings that must never be printed (the password, the user name). */
  readonly secrets: readonly string[];
}

/** Parse a redis:// or rediss:// URL, or explain (QueueError) why it is not one, without echoing credentials. */
export function parseRedisUrl(raw: string): RedisTarget {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new QueueError(
      "--queue takes redis://[USER:PASSWORD@]HOST:PORT[/DB] or rediss://… (TLS), and this is not a URL",
    );
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:")
    throw new QueueError(`--queue takes a redis:// or rediss:// URL, not ${u.protocol}//…`);
  if (u.hostname === "") throw new QueueError("--queue: the URL names no host");
  const secrets = [
    u.password,
    u.username,
    decodeURIComponent(u.password),
    decodeURIComponent(u.username),
  ].filter((s) => s.length > 0);
  const cred = u.username !== "" || u.password !== "" ? "***@" : "";
  const shown = `${u.protocol}//${cred}${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  return { url: raw, shown, secrets };
}

/** `text` with every secret of `t` replaced, for messages that quote a driver's error. */
export function redact(t: RedisTarget, text: string): string {
  let out = text.split(t.url).join(t.shown);
  for (const s of t.secrets) out = out.split(s).join("***");
  return out;
}

/**
 * A connection as BullMQ needs it (no per-command retry limit: a blocking read waits as long as
 * it must). Connects now and fails within `timeoutMs` with a QueueError when Redis cannot be
 * reached or refuses the credentials; later errors go to `onError` (ioredis reconnects by itself).
 */
export async function connectRedis(
  t: RedisTarget,
  onError: (message: string) => void,
  timeoutMs = 10_000,
): Promise<Redis> {
  const conn = new Redis(t.url, { maxRetriesPerRequest: null, lazyConnect: true, connectTimeout: timeoutMs });
  let last = "";
  conn.on("error", (e: Error) => {
    const m = redact(t, e.message);
    if (m !== last) onError(m);
    last = m;
  });
  try {
    await Promise.race([
      conn.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error("no answer")), timeoutMs).unref()),
    ]);
    await conn.ping();
  } catch (e) {
    conn.disconnect();
    throw new QueueError(`cannot use the queue at ${t.shown}: ${redact(t, (e as Error).message)}`);
  }
  return conn;
}

/** Redis keys of one queue besides BullMQ's own: the programs its items name by hash. */
export function programKey(queueName: string, hash: string): string {
  return `tdplab:${queueName}:program:${hash}`;
}
