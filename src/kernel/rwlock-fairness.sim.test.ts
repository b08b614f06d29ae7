import { describe, expect, it } from "vitest";
import { host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import type { SimResult } from "../engine/sim/simulator.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "./atomic.js";
import { lock_acquired } from "./lockdep.js";
import { bootMachine } from "./machine.js";
import { RwLock, read_lock, read_unlock, write_lock, write_unlock } from "./rwlock.js";
import { preempt_disable } from "./sched.js";
import { op } from "./shared.js";
import { simulateKernel as simulate, taskStats as task } from "./sim-fixtures.js";
import { simMachineConfig } from "./sim-view.js";

/**
 * A writer arriving behind a stream of readers, in virtual time: R readers on R CPUs take mmu_lock
 * for read, hold it HOLD ns and take it again, staggered so that the reader count never drops to
 * zero while the stream lasts; the writer asks for the lock on its own CPU at ARRIVE ns. With the
 * queued rwlock's fairness the writer waits for the readers already inside (at most one hold), not
 * for the stream; a reader-preferring lock (the test's own, below) starves it until the stream ends.
 */
const R = 4;
const HOLD = 10_000;
const ROUNDS = 50;
const ARRIVE = 5 * HOLD;

type ReadLock = (l: RwLock) => Gen<void>;

/** A reader-preferring read_lock, for contrast: only a writer that holds the lock keeps it out. */
function* unfair_read_lock(l: RwLock): Gen<void> {
  yield op("acquire", l, "read_lock", () => l.writer === -1);
  l.readers.push(host().current.id);
  preempt_disable();
  lock_acquired(l, "read");
}

function readerStream(lock: ReadLock): Program {
  return ({ spawn }) => {
    bootMachine(simMachineConfig("none"));
    const l = new RwLock("mmu_lock");
    const data = new Atomic("data");
    for (let i = 0; i < R; i++) {
      spawn(
        `reader${i}`,
        (function* (): Gen<void> {
          // Code before a task's first access runs at spawn, unpriced: start with one.
          yield* READ_ONCE(data);
          host().cost("ns", (i * HOLD) / R);
          yield* READ_ONCE(data);
          for (let k = 0; k < ROUNDS; k++) {
            yield* lock(l);
            host().cost("ns", HOLD);
            yield* READ_ONCE(data);
            yield* read_unlock(l);
          }
        })(),
      );
    }
    spawn(
      "writer",
      (function* (): Gen<void> {
        yield* READ_ONCE(data);
        host().cost("ns", ARRIVE);
        yield* READ_ONCE(data);
        yield* write_lock(l);
        yield* WRITE_ONCE(data, 1);
        yield* write_unlock(l);
      })(),
    );
  };
}

function run(lock: ReadLock): SimResult {
  return simulate(readerStream(lock), {
    cpus: R + 1,
    preemption: "none",
    binding: (n) => (n === "writer" ? R : Number(n.slice("reader".length))),
    costs: { extra: { ns: 1 } },
  });
}

describe("qrwlock writer fairness in virtual time", () => {
  it("a writer behind a stream of readers waits about one read hold, not for the stream", () => {
    const r = run(read_lock);
    expect(r.status).toBe("ok");
    const w = task(r, "writer");
    // The writer spins only inside write_lock(): its blocked time is its wait for the lock.
    expect(w.blockedNs).toBeGreaterThan(0);
    expect(w.blockedNs).toBeLessThanOrEqual(HOLD + 2_000);
    // The stream went on after the writer: readers queued behind it got in once it let go.
    const streamEnd = Math.max(...[...Array(R).keys()].map((i) => task(r, `reader${i}`).doneNs ?? 0));
    expect(streamEnd).toBeGreaterThan(w.doneNs! + 10 * HOLD);
  });

  it("a reader-preferring lock starves the same writer until the stream ends", () => {
    const r = run(unfair_read_lock);
    expect(r.status).toBe("ok");
    const w = task(r, "writer");
    const streamEnd = Math.max(...[...Array(R).keys()].map((i) => task(r, `reader${i}`).doneNs ?? 0));
    expect(w.blockedNs).toBeGreaterThan(ROUNDS * HOLD - ARRIVE - 2 * HOLD);
    expect(w.firstStepNs! + w.busyNs + w.blockedNs).toBeGreaterThanOrEqual(streamEnd - HOLD);
    expect(w.blockedNs).toBeGreaterThan(20 * task(run(read_lock), "writer").blockedNs);
  });
});
