import { EventEmitter } from "node:events";
import type { Piscina } from "piscina";
import { describe, expect, it } from "vitest";
import { piscinaTransport } from "./transport.js";
import type { JobInput } from "./worker.js";

/** A pool that answers every job with `out` and can emit pool errors, as piscina does. */
function fakePool(): EventEmitter & { run: () => Promise<unknown>; destroy: () => Promise<void> } {
  return Object.assign(new EventEmitter(), {
    run: () => Promise.resolve({ ok: true }),
    destroy: () => Promise.resolve(),
  });
}

const job = {} as JobInput;

describe("piscinaTransport", () => {
  it("an answer from an aborted job (a pool 'error' event) does not end the process once the run stops", async () => {
    const pool = fakePool();
    const t = piscinaTransport(pool as unknown as Piscina);
    const stop = new AbortController();
    await t.run(job, { signal: stop.signal });
    stop.abort();
    // Without a listener, EventEmitter throws on 'error': this is what crashed `check --jobs 2 --time-limit`.
    expect(() => pool.emit("error", new Error("Unexpected message from Worker"))).not.toThrow();
    await t.close();
  });

  it("a pool error before any job was aborted fails the next job", async () => {
    const pool = fakePool();
    const t = piscinaTransport(pool as unknown as Piscina);
    pool.emit("error", new Error("worker died"));
    await expect(t.run(job, { signal: new AbortController().signal })).rejects.toThrow("worker died");
  });
});
