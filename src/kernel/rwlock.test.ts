import { describe, expect, it } from "vitest";
import { enumerateAll } from "../engine/enumerate.js";
import type { AccessOp, Gen } from "../engine/op.js";
import { type Program, runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { Atomic, READ_ONCE } from "./atomic.js";
import { bootMachine, ktask, type PreemptionModel } from "./machine.js";
import {
  cond_resched_rwlock_read,
  cond_resched_rwlock_write,
  describeRwLock,
  RwLock,
  read_lock,
  read_unlock,
  rwlock_needbreak,
  write_lock,
  write_unlock,
} from "./rwlock.js";
import { WARN_ON } from "./warn.js";

function runOnce(p: Program) {
  return runProgram(p, { scheduler: new RoundRobinScheduler() });
}

/** A test-only step that blocks until `cond` holds (it reads the lock word). */
function awaitCond(l: RwLock, what: string, cond: () => boolean): AccessOp {
  return { kind: "wait", obj: l.id, fn: "test", step: what, enabled: cond };
}

describe("qrwlock: read and write modes", () => {
  it("readers share, a writer excludes everyone, over all schedules", () => {
    let bothReadersInside = false;
    const r = enumerateAll(({ spawn }) => {
      bootMachine();
      const l = new RwLock("mmu_lock");
      let readers = 0;
      let writers = 0;
      const reader = function* (): Gen<void> {
        yield* read_lock(l);
        readers++;
        WARN_ON(writers > 0, "reader inside with a writer");
        if (readers === 2) bothReadersInside = true;
        yield* READ_ONCE(new Atomic("data"));
        readers--;
        yield* read_unlock(l);
      };
      spawn("r1", reader());
      spawn("r2", reader());
      spawn(
        "w",
        (function* () {
          yield* write_lock(l);
          writers++;
          WARN_ON(readers > 0 || writers > 1, "writer inside with others");
          yield* READ_ONCE(new Atomic("data"));
          writers--;
          yield* write_unlock(l);
        })(),
      );
    });
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
    expect(bothReadersInside).toBe(true);
  });

  it("read_lock and write_lock disable preemption until the unlock", () => {
    const counts: number[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const l = new RwLock("mmu_lock");
      spawn(
        "t",
        (function* () {
          yield* read_lock(l);
          counts.push(ktask().preemptCount);
          yield* read_unlock(l);
          yield* write_lock(l);
          counts.push(ktask().preemptCount);
          yield* write_unlock(l);
          counts.push(ktask().preemptCount);
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(counts).toEqual([1, 1, 0]);
  });
});

describe("qrwlock fairness", () => {
  /**
   * r1 holds the read lock; w asks for the write lock (it queues and sets
   * _QW_WAITING); only then r2 asks for a read lock. r2 must not get in until
   * w has had the lock and released it, in every schedule: a waiting writer
   * blocks new readers.
   */
  it("a waiting writer blocks new readers, over all schedules", () => {
    let runs = 0;
    const r = enumerateAll(({ spawn }) => {
      bootMachine();
      const l = new RwLock("mmu_lock");
      let r1Holds = false;
      let writerDone = false;
      spawn(
        "r1",
        (function* () {
          yield* read_lock(l);
          r1Holds = true;
          yield awaitCond(l, "until a writer waits", () => l.waiting);
          yield* read_unlock(l);
        })(),
      );
      spawn(
        "w",
        (function* () {
          yield awaitCond(l, "until r1 holds the lock", () => r1Holds);
          yield* write_lock(l);
          yield* write_unlock(l);
          writerDone = true;
        })(),
      );
      spawn(
        "r2",
        (function* () {
          // Once the writer has announced itself: waiting, holding, or gone.
          yield awaitCond(l, "until a writer waits", () => l.waiting || l.writer !== -1 || writerDone);
          yield* read_lock(l);
          WARN_ON(!writerDone, "new reader got in ahead of the waiting writer");
          yield* read_unlock(l);
          runs++;
        })(),
      );
    });
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
    expect(runs).toBe(r.executions);
  });

  /**
   * The same race with r2 in interrupt context (softirq, as an RCU callback runs): it does not queue
   * behind the waiting writer (queued_read_lock_slowpath's in_interrupt() test), so in every schedule
   * it gets in before the writer; and a writer that holds the lock still keeps it out.
   */
  it("a reader in interrupt context passes a waiting writer, but not a holding one, over all schedules", () => {
    let passed = 0;
    let runs = 0;
    const r = enumerateAll(({ spawn }) => {
      bootMachine();
      const l = new RwLock("mmu_lock");
      let r1Holds = false;
      let writers = 0;
      let irqInside = false;
      let irqWasIn = false;
      spawn(
        "r1",
        (function* () {
          yield* read_lock(l);
          r1Holds = true;
          yield awaitCond(l, "until the irq reader got in", () => irqWasIn);
          yield* read_unlock(l);
        })(),
      );
      spawn(
        "w",
        (function* () {
          yield awaitCond(l, "until r1 holds the lock", () => r1Holds);
          yield* write_lock(l);
          writers++;
          WARN_ON(irqInside, "writer got the lock while the irq reader was inside");
          writers--;
          yield* write_unlock(l);
        })(),
      );
      spawn(
        "irq",
        (function* () {
          yield awaitCond(l, "until a writer waits", () => l.waiting);
          ktask().inSoftirq = true;
          yield* read_lock(l);
          WARN_ON(writers > 0, "irq reader inside with a writer");
          irqInside = true;
          irqWasIn = true;
          passed++;
          yield* read_unlock(l);
          irqInside = false;
          ktask().inSoftirq = false;
          runs++;
        })(),
      );
    });
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
    expect(runs).toBe(r.executions);
    expect(passed).toBe(r.executions);
  });

  it("a reader in interrupt context spins while a writer holds the lock, and its bias keeps the next writer out", () => {
    const r = enumerateAll(({ spawn }) => {
      bootMachine();
      const l = new RwLock("mmu_lock");
      const order: string[] = [];
      let w1Holds = false;
      spawn(
        "w1",
        (function* () {
          yield* write_lock(l);
          w1Holds = true;
          yield awaitCond(l, "until the irq reader spins", () => l.irqSpinners === 1);
          yield* write_unlock(l);
        })(),
      );
      spawn(
        "irq",
        (function* () {
          yield awaitCond(l, "until w1 holds the lock", () => w1Holds);
          ktask().inSoftirq = true;
          yield* read_lock(l);
          order.push("irq");
          yield* read_unlock(l);
          ktask().inSoftirq = false;
        })(),
      );
      spawn(
        "w2",
        (function* () {
          yield awaitCond(l, "until the irq reader spins", () => l.irqSpinners === 1 || order.length > 0);
          yield* write_lock(l);
          WARN_ON(order.length === 0, "a writer took the lock from under a spinning irq reader");
          yield* write_unlock(l);
        })(),
      );
    });
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
  });

  /**
   * Tasks that had to queue get the lock in queue order, whatever mix of
   * readers and writers: the reader at the head waits only for a writer that
   * holds the lock, and a writer waiting behind it cannot set _QW_WAITING
   * before it reaches the head.
   */
  it("queued tasks acquire in FIFO order, over all schedules", () => {
    let checked = 0;
    const r = enumerateAll(({ spawn, host }) => {
      bootMachine();
      const l = new RwLock("mmu_lock");
      const queued: number[] = [];
      const acquired: number[] = [];
      host.addCheck("fifo", () => {
        for (const t of l.queue) if (!queued.includes(t)) queued.push(t);
        for (const t of [...l.readers, l.writer]) {
          if (t >= 0 && queued.includes(t) && !acquired.includes(t)) acquired.push(t);
        }
      });
      let w1Holds = false;
      let done = 0;
      const end = () => {
        if (++done < 3) return;
        checked++;
        WARN_ON(acquired.join() !== queued.join(), `queue order ${queued} but acquired ${acquired}`);
      };
      spawn(
        "w1",
        (function* () {
          yield* write_lock(l);
          w1Holds = true;
          yield awaitCond(l, "until two tasks queue", () => l.queue.length === 2);
          yield* write_unlock(l);
          end();
        })(),
      );
      for (const [name, mode] of [
        ["r", "read"],
        ["w2", "write"],
      ] as const) {
        spawn(
          name,
          (function* () {
            yield awaitCond(l, "until w1 holds the lock", () => w1Holds);
            if (mode === "read") {
              yield* read_lock(l);
              yield* read_unlock(l);
            } else {
              yield* write_lock(l);
              yield* write_unlock(l);
            }
            end();
          })(),
        );
      }
    });
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
    expect(checked).toBe(r.executions);
  });

  it("a recursive read_lock deadlocks behind a waiting writer in some schedule", () => {
    const r = enumerateAll(
      ({ spawn }) => {
        bootMachine();
        const l = new RwLock("mmu_lock");
        spawn(
          "reader",
          (function* () {
            yield* read_lock(l);
            yield* read_lock(l);
            yield* read_unlock(l);
            yield* read_unlock(l);
          })(),
        );
        spawn(
          "writer",
          (function* () {
            yield* write_lock(l);
            yield* write_unlock(l);
          })(),
        );
      },
      { stopOnFirst: true },
    );
    const v = r.firstViolation?.violations[0];
    expect(v?.invariant).toBe("deadlock");
    expect(v?.message).toContain("reader waits in");
    expect(v?.message).toContain("writer waits in");
    expect(v?.message).toContain("on mmu_lock");
  });
});

describe("qrwlock misuse", () => {
  it("read_lock while holding the write lock is recursive locking", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const l = new RwLock("mmu_lock");
      spawn(
        "t",
        (function* () {
          yield* write_lock(l);
          yield* read_lock(l);
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("lockdep");
    expect(r.violations[0].message).toContain("mmu_lock (read) already held (write)");
  });

  it("write_lock while holding the read lock is recursive locking", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const l = new RwLock("mmu_lock");
      spawn(
        "t",
        (function* () {
          yield* read_lock(l);
          yield* write_lock(l);
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("lockdep");
    expect(r.violations[0].message).toContain("mmu_lock (write) already held (read)");
  });

  it("releasing in the wrong mode is a bad unlock", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const l = new RwLock("mmu_lock");
      spawn(
        "t",
        (function* () {
          yield* read_lock(l);
          yield* write_unlock(l);
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("lockdep");
    expect(r.violations[0].message).toContain("bad unlock: mmu_lock released as write but held as read");
  });

  it("describeRwLock names the holders, the waiting writer and the queue", () => {
    const l = {
      name: "mmu_lock",
      readers: [1, 2],
      writer: -1,
      waiting: true,
      queue: [3, 4],
    } as unknown as RwLock;
    expect(describeRwLock(l)).toBe("mmu_lock [readers T1,T2, writer waiting, queue T3,T4]");
    const w = { name: "mmu_lock", readers: [], writer: 5, waiting: false, queue: [] } as unknown as RwLock;
    expect(describeRwLock(w)).toBe("mmu_lock [writer T5]");
  });
});

describe("rwlock_needbreak and cond_resched_rwlock_*", () => {
  /** A reader holds the lock until a writer is queued, then asks rwlock_needbreak(). */
  function needbreak(preemption: PreemptionModel): boolean[] {
    const seen: boolean[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine({ preemption, needResched: "never" });
      const l = new RwLock("mmu_lock");
      let asked = false;
      spawn(
        "holder",
        (function* () {
          yield* read_lock(l);
          seen.push(yield* rwlock_needbreak(l));
          asked = true;
          yield awaitCond(l, "until a writer waits", () => l.waiting);
          seen.push(yield* rwlock_needbreak(l));
          yield* read_unlock(l);
        })(),
      );
      spawn(
        "writer",
        (function* () {
          yield awaitCond(l, "until the holder asked once", () => asked);
          yield* write_lock(l);
          yield* write_unlock(l);
        })(),
      );
    });
    expect(r.status).toBe("ok");
    return seen;
  }

  it("is true when a writer waits, with full preemption", () => {
    expect(needbreak("full")).toEqual([false, true]);
  });

  it("is always false without CONFIG_PREEMPTION (none, voluntary)", () => {
    expect(needbreak("none")).toEqual([false, false]);
    expect(needbreak("voluntary")).toEqual([false, false]);
  });

  /**
   * The holder calls cond_resched_rwlock_*() once a writer has queued
   * ("queued") or has also set _QW_WAITING ("waiting"). With full preemption
   * the holder drops the lock. If the writer had set _QW_WAITING, the holder
   * can only get the lock back after the writer is done, in every schedule. If
   * it had only queued, the holder may retake the lock through the fast path
   * before the writer sets _QW_WAITING (the kernel allows that too: the writer
   * sets the flag only after taking the wait_lock). Without preemption and
   * without need_resched nothing breaks the lock.
   */
  function condResched(preemption: PreemptionModel, mode: "read" | "write", until: "queued" | "waiting") {
    const outcomes = new Set<string>();
    const r = enumerateAll(({ spawn }) => {
      bootMachine({ preemption, needResched: "never" });
      const l = new RwLock("mmu_lock");
      let holds = false;
      let writerDone = false;
      spawn(
        "holder",
        (function* () {
          if (mode === "read") yield* read_lock(l);
          else yield* write_lock(l);
          holds = true;
          yield awaitCond(l, `until a writer is ${until}`, () =>
            until === "queued" ? l.queue.length > 0 : l.waiting,
          );
          const broke =
            mode === "read" ? yield* cond_resched_rwlock_read(l) : yield* cond_resched_rwlock_write(l);
          outcomes.add(`broke=${broke} writerDoneBefore=${writerDone}`);
          if (mode === "read") yield* read_unlock(l);
          else yield* write_unlock(l);
        })(),
      );
      spawn(
        "writer",
        (function* () {
          yield awaitCond(l, "until the holder holds the lock", () => holds);
          yield* write_lock(l);
          yield* write_unlock(l);
          writerDone = true;
        })(),
      );
    });
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
    return outcomes;
  }

  for (const mode of ["read", "write"] as const) {
    it(`cond_resched_rwlock_${mode} always lets a writer that set _QW_WAITING in, under full preemption`, () => {
      expect(condResched("full", mode, "waiting")).toEqual(new Set(["broke=true writerDoneBefore=true"]));
    });

    it(`cond_resched_rwlock_${mode} may retake the lock before a writer that only queued`, () => {
      expect(condResched("full", mode, "queued")).toEqual(
        new Set(["broke=true writerDoneBefore=true", "broke=true writerDoneBefore=false"]),
      );
    });
  }

  it("cond_resched_rwlock_read does not break the lock without preemption or need_resched", () => {
    expect(condResched("none", "read", "waiting")).toEqual(new Set(["broke=false writerDoneBefore=false"]));
    expect(condResched("voluntary", "read", "waiting")).toEqual(
      new Set(["broke=false writerDoneBefore=false"]),
    );
  });

  it("cond_resched_rwlock_read breaks the lock for need_resched even without CONFIG_PREEMPTION", () => {
    let broke = false;
    const r = runOnce(({ spawn }) => {
      bootMachine({ preemption: "none", needResched: "always" });
      const l = new RwLock("mmu_lock");
      spawn(
        "t",
        (function* () {
          yield* read_lock(l);
          broke = yield* cond_resched_rwlock_read(l);
          yield* read_unlock(l);
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(broke).toBe(true);
  });

  it("cond_resched_rwlock_read and _write assert the lock is held in their mode", () => {
    for (const [hold, call, msg] of [
      ["write", "read", "lockdep_assert_held_read(mmu_lock) failed"],
      ["read", "write", "lockdep_assert_held_write(mmu_lock) failed"],
      ["none", "read", "lockdep_assert_held_read(mmu_lock) failed"],
    ] as const) {
      const r = runOnce(({ spawn }) => {
        bootMachine({ needResched: "never" });
        const l = new RwLock("mmu_lock");
        spawn(
          "t",
          (function* () {
            if (hold === "read") yield* read_lock(l);
            if (hold === "write") yield* write_lock(l);
            if (call === "read") yield* cond_resched_rwlock_read(l);
            else yield* cond_resched_rwlock_write(l);
          })(),
        );
      });
      expect(r.violations[0].invariant).toBe("lockdep");
      expect(r.violations[0].message).toContain(msg);
    }
  });
});
