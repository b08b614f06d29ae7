import { describe, expect, it } from "vitest";
import { enumerateAll } from "../engine/enumerate.js";
import { explore } from "../engine/explore/explore.js";
import type { AccessOp, Gen } from "../engine/op.js";
import { type Program, runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { liveObjects } from "./alloc.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "./atomic.js";
import { bootMachine, type MachineConfig } from "./machine.js";
import type { Shared } from "./shared.js";
import { Spinlock, spin_lock } from "./spinlock.js";
import { WARN_ON } from "./warn.js";
import {
  alloc_workqueue,
  destroy_workqueue,
  drain_workqueue,
  flush_workqueue,
  INIT_WORK,
  queue_work,
  WorkStruct,
} from "./workqueue.js";

function runOnce(p: Program, stopOnViolation = true) {
  return runProgram(p, { scheduler: new RoundRobinScheduler(), stopOnViolation });
}

/** A test-only step that blocks until `cond` holds. */
function until(s: Shared, what: string, cond: () => boolean): AccessOp {
  return { kind: "wait", obj: s.id, fn: "test", step: what, enabled: cond };
}

/** A work item whose function counts its runs (and checks it never runs on two workers at once). */
function countingWork(name: string, runs: { n: number; active: number }, extra?: () => Gen<void>) {
  const w = new WorkStruct(name);
  w.fn = function* () {
    runs.active++;
    WARN_ON(runs.active > 1, `${name} running on two workers at once`);
    runs.n++;
    yield* READ_ONCE(new Atomic(`${name}.data`));
    if (extra) yield* extra();
    runs.active--;
  };
  return w;
}

describe("queue_work and PENDING", () => {
  it("returns false while the item is pending, and an item runs once per successful queue_work", () => {
    const seen = new Set<string>();
    const r = enumerateAll(({ spawn }) => {
      bootMachine();
      const wq = alloc_workqueue("kvm");
      const runs = { n: 0, active: 0 };
      const w = countingWork("w", runs);
      spawn(
        "t",
        (function* () {
          const a = yield* queue_work(wq, w);
          const b = yield* queue_work(wq, w);
          const c = yield* queue_work(wq, w);
          yield* flush_workqueue(wq);
          const queued = [a, b, c].filter(Boolean).length;
          WARN_ON(runs.n !== queued, `ran ${runs.n} times for ${queued} successful queue_work calls`);
          seen.add([a, b, c].join());
        })(),
      );
    });
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
    // Queued twice before it ran: the second call is a no-op. Queued again after the worker cleared PENDING: runs again.
    expect(seen.has("true,false,false")).toBe(true);
    expect(seen.has("true,true,false")).toBe(true);
    expect(seen.has("true,true,true")).toBe(true);
    for (const s of seen) expect(s.startsWith("true")).toBe(true);
  });

  it("the worker clears PENDING before calling the function, so the function may queue its own item", () => {
    const requeued: boolean[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const wq = alloc_workqueue("kvm");
      const w = new WorkStruct("w");
      let first = true;
      w.fn = function* (self) {
        if (!first) return;
        first = false;
        requeued.push(yield* queue_work(wq, self));
      };
      spawn(
        "t",
        (function* () {
          yield* queue_work(wq, w);
          yield* flush_workqueue(wq);
          yield* flush_workqueue(wq);
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(requeued).toEqual([true]);
  });

  it("an item queued again while it runs waits for the running instance, with PENDING still set", () => {
    const seen: boolean[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const wq = alloc_workqueue("kvm");
      const gate = new Atomic("gate");
      const runs = { n: 0, active: 0 };
      const w = countingWork("w", runs, function* () {
        yield until(gate, "until released", () => gate.v === 1);
      });
      spawn(
        "t",
        (function* () {
          yield* queue_work(wq, w);
          yield until(gate, "until w runs", () => runs.active === 1);
          seen.push(yield* queue_work(wq, w)); // PENDING was cleared: queued again
          seen.push(yield* queue_work(wq, w)); // the second instance has not started: still pending
          seen.push(w.pending);
          gate.v = 1;
          yield* flush_workqueue(wq);
          seen.push(w.pending, runs.n === 2);
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(seen).toEqual([true, false, true, false, true]);
  });

  it("never runs one item on two workers at once, in any schedule", () => {
    const r = enumerateAll(({ spawn }) => {
      bootMachine();
      const wq = alloc_workqueue("kvm");
      const runs = { n: 0, active: 0 };
      const w = countingWork("w", runs);
      spawn(
        "t",
        (function* () {
          yield* queue_work(wq, w);
          yield* queue_work(wq, w);
        })(),
      );
    });
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
  });

  it("INIT_WORK resets PENDING and sets the function", () => {
    const seen: boolean[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const w = new WorkStruct("w");
      w.pending = true;
      spawn(
        "t",
        (function* () {
          yield* INIT_WORK(w, function* () {});
          seen.push(w.pending, w.fn !== null);
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(seen).toEqual([false, true]);
  });

  it("each queued item runs in a kworker task the runtime creates", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const wq = alloc_workqueue("kvm");
      const w = countingWork("zap", { n: 0, active: 0 });
      spawn(
        "t",
        (function* () {
          yield* queue_work(wq, w);
          yield* flush_workqueue(wq);
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(r.taskNames).toContain("kworker:zap");
    expect(r.taskLanes[r.taskNames.indexOf("kworker:zap")]).toBe("kworker");
  });
});

describe("flush_workqueue", () => {
  it("waits for every item queued before it, not for items queued after, in every schedule", () => {
    const lateDone = new Set<boolean>();
    const r = enumerateAll(({ spawn }) => {
      bootMachine();
      const wq = alloc_workqueue("kvm");
      const r1 = { n: 0, active: 0 };
      const r2 = { n: 0, active: 0 };
      const w1 = countingWork("w1", r1);
      const w2 = countingWork("w2", r2);
      let w2Queued = false;
      spawn(
        "flusher",
        (function* () {
          yield* queue_work(wq, w1);
          const w2Before = w2Queued;
          yield* flush_workqueue(wq);
          WARN_ON(r1.n !== 1, "flush returned before w1 ran");
          WARN_ON(w2Before && r2.n !== 1, "flush returned before an earlier w2 ran");
          lateDone.add(r2.n === 1);
        })(),
      );
      spawn(
        "other",
        (function* () {
          yield* queue_work(wq, w2);
          w2Queued = true;
        })(),
      );
    });
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
    expect(lateDone).toEqual(new Set([true, false]));
  });

  it("DPOR explores a flush racing with queue_work both ways: the insertion writes the workqueue", () => {
    // With queue_work as one step that declared only the item as written, the flush's look at
    // the workqueue was independent of it, and the order where the flush returns before the
    // item ran (the reader sees 0) was never explored.
    const seen = new Set<number>();
    let last = -1;
    const r = explore(
      ({ spawn }) => {
        bootMachine();
        const wq = alloc_workqueue("wq");
        const done = new Atomic("done");
        const w = new WorkStruct("w");
        w.fn = function* () {
          yield* WRITE_ONCE(done, 1);
        };
        spawn(
          "queuer",
          (function* () {
            yield* queue_work(wq, w);
          })(),
        );
        spawn(
          "flusher",
          (function* () {
            yield* flush_workqueue(wq);
            last = yield* READ_ONCE(done);
          })(),
        );
      },
      { stopOnFirstViolation: false, onExecution: () => seen.add(last) },
    );
    expect(r.complete).toBe(true);
    expect([...seen].sort()).toEqual([0, 1]);
  });

  it("flushing a workqueue from one of its own items deadlocks", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const wq = alloc_workqueue("kvm");
      const w = new WorkStruct("w");
      w.fn = function* () {
        yield* flush_workqueue(wq);
      };
      spawn(
        "t",
        (function* () {
          yield* queue_work(wq, w);
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("deadlock");
    expect(r.violations[0].message).toContain("kworker:w waits in");
    expect(r.violations[0].message).toContain("flush_workqueue: wait");
  });

  it("sleeps: calling it under a spinlock is reported", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const wq = alloc_workqueue("kvm");
      const s = new Spinlock("s");
      spawn(
        "t",
        (function* () {
          yield* spin_lock(s);
          yield* flush_workqueue(wq);
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("sleep-in-atomic");
    expect(r.violations[0].message).toContain("flush_workqueue(kvm)");
  });
});

describe("drain_workqueue and destroy_workqueue", () => {
  it("destroy_workqueue drains first: work queued before it has run, then the workqueue is freed", () => {
    const r = enumerateAll(({ spawn }) => {
      bootMachine();
      const wq = alloc_workqueue("kvm");
      const runs = { n: 0, active: 0 };
      const w = countingWork("w", runs);
      spawn(
        "t",
        (function* () {
          yield* queue_work(wq, w);
          yield* destroy_workqueue(wq);
          WARN_ON(runs.n !== 1, "destroy_workqueue returned before queued work ran");
          WARN_ON(liveObjects(["workqueue_struct"]).length !== 0, "workqueue not freed");
        })(),
      );
    });
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
  });

  it("work an item queues on its own workqueue during the drain (chained work) is allowed and drained", () => {
    const r = enumerateAll(({ spawn }) => {
      bootMachine();
      const wq = alloc_workqueue("kvm");
      const r2 = { n: 0, active: 0 };
      const w2 = countingWork("w2", r2);
      const w1 = countingWork("w1", { n: 0, active: 0 }, function* () {
        yield* queue_work(wq, w2);
      });
      spawn(
        "t",
        (function* () {
          yield* queue_work(wq, w1);
          yield* destroy_workqueue(wq);
          WARN_ON(r2.n !== 1, "chained work did not run before destroy_workqueue returned");
        })(),
      );
    });
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
  });

  /**
   * The destroyer queues w1 and destroys the workqueue while an outsider queues
   * w2: one message per kind of outcome, over all schedules.
   */
  function raceDestroy(cfg: Partial<MachineConfig>): Map<string, string> {
    const found = new Map<string, string>();
    const r = enumerateAll(
      ({ spawn }) => {
        bootMachine(cfg);
        const wq = alloc_workqueue("kvm");
        const w1 = countingWork("w1", { n: 0, active: 0 });
        const w2 = countingWork("w2", { n: 0, active: 0 });
        spawn(
          "destroyer",
          (function* () {
            yield* queue_work(wq, w1);
            yield* destroy_workqueue(wq);
          })(),
        );
        spawn(
          "outsider",
          (function* () {
            yield* queue_work(wq, w2);
          })(),
        );
      },
      {},
      (run) => {
        const v = run.violations[0];
        const key = v === undefined ? "ok" : `${v.invariant}:${v.message.split(" in ")[0]}`;
        if (!found.has(key)) found.set(key, v?.message ?? "");
      },
    );
    expect(r.complete).toBe(true);
    return found;
  }

  it("v6.3+ (__WQ_DESTROYING): outside work queued during destroy_workqueue is refused with a WARN", () => {
    const found = raceDestroy({ wqDestroying: true });
    expect([...found.keys()].sort()).toEqual([
      "WARN:WARN_ON_ONCE(__queue_work on destroying kvm)",
      "ok",
      "use-after-free:use-after-free: outsider",
    ]);
    expect(found.get("use-after-free:use-after-free: outsider")).toContain("queue_work on wq:kvm");
  });

  it("before v6.3: work queued between the drain and the sanity check makes destroy_workqueue WARN", () => {
    const found = raceDestroy({ wqDestroying: false });
    expect([...found.keys()].sort()).toEqual([
      "WARN:WARN_ON(destroy_workqueue: kvm has busy pwq)",
      "WARN:WARN_ON_ONCE(__queue_work on draining kvm)",
      "ok",
      "use-after-free:use-after-free: outsider",
    ]);
  });

  it("a refused item keeps PENDING set and never runs", () => {
    const seen: unknown[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const wq = alloc_workqueue("kvm");
      const gate = new Atomic("gate");
      const r1 = { n: 0, active: 0 };
      const r2 = { n: 0, active: 0 };
      const w1 = countingWork("w1", r1, function* () {
        yield until(gate, "until released", () => gate.v === 1);
      });
      const w2 = countingWork("w2", r2);
      spawn(
        "drainer",
        (function* () {
          yield* queue_work(wq, w1);
          yield* drain_workqueue(wq);
          seen.push(wq.draining, r2.n, w2.pending, wq.dropped);
        })(),
      );
      spawn(
        "outsider",
        (function* () {
          yield until(wq, "until draining", () => wq.draining);
          seen.push(yield* queue_work(wq, w2));
          seen.push(yield* queue_work(wq, w2));
          gate.v = 1;
        })(),
      );
    }, false);
    expect(r.violations.map((v) => v.message)).toEqual([
      "WARN_ON_ONCE(__queue_work on draining kvm) in <task>",
    ]);
    // queue_work set PENDING and returned true; the item was dropped; later calls see PENDING.
    expect(seen).toEqual([true, false, false, 0, true, 1]);
  });

  it("queue_work on a destroyed workqueue is a use-after-free", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const wq = alloc_workqueue("kvm");
      spawn(
        "t",
        (function* () {
          yield* destroy_workqueue(wq);
          yield* queue_work(wq, new WorkStruct("w"));
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("use-after-free");
    expect(r.violations[0].message).toContain("wq:kvm was freed by t");
  });
});

describe("max_active", () => {
  /** Two items queued by one task; every order the items' steps can take, as "start/end" strings. */
  function orders(maxActive: number): Set<string> {
    const seen = new Set<string>();
    enumerateAll(
      ({ spawn }) => {
        bootMachine();
        const wq = alloc_workqueue("kvm", maxActive);
        const log: string[] = [];
        const data = new Atomic("data");
        const works = [0, 1].map((i) => {
          const w = new WorkStruct(`w${i}`);
          w.fn = function* () {
            log.push(`s${i}`);
            yield* READ_ONCE(data);
            log.push(`e${i}`);
          };
          return w;
        });
        spawn(
          "t",
          (function* () {
            for (const w of works) yield* queue_work(wq, w);
            yield* flush_workqueue(wq);
            seen.add(log.join(" "));
          })(),
        );
      },
      {},
      () => {},
    );
    return seen;
  }

  it("1 runs the items one at a time, in queue order; the default lets them overlap", () => {
    expect([...orders(1)]).toEqual(["s0 e0 s1 e1"]);
    expect(orders(0).size).toBeGreaterThan(2);
    expect(orders(0)).toContain("s1 s0 e0 e1");
  });
});
