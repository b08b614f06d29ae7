import { describe, expect, it } from "vitest";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { recordRun } from "../trace/record.js";
import { Atomic, WRITE_ONCE } from "./atomic.js";
import { bootMachine, type Machine } from "./machine.js";
import { call_rcu, RcuHead, rcu_read_lock, rcu_read_unlock, synchronize_rcu } from "./rcu.js";
import { RwLock, read_lock, read_unlock, write_lock, write_unlock } from "./rwlock.js";
import { snapshotLocks, snapshotRcu, snapshotTasks, snapshotWorkqueue } from "./snapshot.js";
import { Spinlock, spin_lock, spin_unlock } from "./spinlock.js";
import {
  alloc_workqueue,
  flush_workqueue,
  INIT_WORK,
  queue_work,
  type Workqueue,
  WorkStruct,
} from "./workqueue.js";

describe("lock snapshots", () => {
  /**
   * writer (0): write_lock(l), spin_lock(s), a store, unlocks; reader (1): read_lock(l);
   * spinner (2): spin_lock(s). Choices: the writer takes both locks, then the reader tries l.
   */
  function program(): { program: Program; locks: () => [RwLock, Spinlock] } {
    let locks: [RwLock, Spinlock] | null = null;
    const p: Program = ({ spawn }) => {
      bootMachine();
      const l = new RwLock("l");
      const s = new Spinlock("s");
      const x = new Atomic("x");
      locks = [l, s];
      spawn(
        "writer",
        (function* (): Gen<void> {
          yield* write_lock(l);
          yield* spin_lock(s);
          yield* WRITE_ONCE(x, 1);
          yield* spin_unlock(s);
          yield* write_unlock(l);
        })(),
      );
      spawn(
        "reader",
        (function* (): Gen<void> {
          yield* read_lock(l);
          yield* read_unlock(l);
        })(),
      );
      spawn(
        "spinner",
        (function* (): Gen<void> {
          yield* spin_lock(s);
          yield* spin_unlock(s);
        })(),
      );
    };
    return { program: p, locks: () => locks! };
  }

  it("shows holders from the lock word and waiters that cannot take the lock", () => {
    const p = program();
    const rec = recordRun(p.program, [0, 0, 1, 0, 1, 1], {
      snapshot: (rt) => ({ locks: snapshotLocks(rt.tasks, p.locks()), tasks: snapshotTasks(rt.tasks) }),
    });
    const steps = rec.result.trace!;
    expect(rec.states).toHaveLength(steps.length);
    // After step 2 the reader sits in the qrwlock queue; the spinner's spin_lock is disabled.
    expect(steps.slice(0, 3).map((s) => [s.task, s.step])).toEqual([
      [0, "write_lock"],
      [0, "spin_lock"],
      [1, "read_lock"],
    ]);
    const at2 = rec.states![2];
    expect(at2.locks).toEqual([
      {
        name: "l",
        kind: "rwlock",
        holders: [{ task: 0, mode: "write" }],
        waiters: [{ task: 1, mode: "read" }],
      },
      {
        name: "s",
        kind: "spinlock",
        holders: [{ task: 0, mode: "exclusive" }],
        waiters: [{ task: 2, mode: "exclusive" }],
      },
    ]);
    expect(at2.tasks.map((t) => [t.id, t.status, t.preemptCount, t.held])).toEqual([
      [0, "runnable", 2, ["l (write)", "s (spin)"]],
      [1, "blocked", 0, []],
      [2, "blocked", 0, []],
    ]);
    expect(at2.tasks[1].next).toBe("<task>: read_lock slowpath");
    // Before anything ran the spinner was merely about to take a free lock: no waiter.
    expect(rec.initialState!.locks.every((l) => l.holders.length === 0 && l.waiters.length === 0)).toBe(true);
    // The writer released both: the reader holds l for read, then everyone is done.
    const last = rec.states!.at(-1)!;
    expect(last.locks.every((l) => l.holders.length === 0 && l.waiters.length === 0)).toBe(true);
    expect(last.tasks.every((t) => t.status === "done")).toBe(true);
    const readerHolds = rec.states!.findIndex((s) => s.locks[0].holders.some((h) => h.mode === "read"));
    expect(readerHolds).toBeGreaterThan(2);
  });

  it("lists a lock nobody registered once a task holds it", () => {
    const p = program();
    const rec = recordRun(p.program, [0, 0, 1, 0, 1, 1], { snapshot: (rt) => snapshotLocks(rt.tasks, []) });
    expect(rec.initialState).toEqual([]);
    expect(rec.states![0].map((l) => l.name)).toEqual(["l"]);
    expect(rec.states![1].map((l) => l.name)).toEqual(["l", "s"]);
  });

  it("never changes the run it observes", () => {
    const p = program();
    const plain = recordRun(p.program, [0, 0, 1, 0, 1, 1]);
    const seen = recordRun(p.program, [0, 0, 1, 0, 1, 1], {
      snapshot: (rt) => snapshotLocks(rt.tasks, p.locks()),
    });
    expect(seen.result.trace).toEqual(plain.result.trace);
    expect(seen.result.choices).toEqual(plain.result.choices);
  });
});

describe("RCU and workqueue snapshots", () => {
  it("shows readers, a synchronize_rcu waiter, and a callback pending then running", () => {
    let m: Machine | null = null;
    const p: Program = ({ spawn }) => {
      m = bootMachine();
      const head = new RcuHead(null);
      spawn(
        "reader",
        (function* (): Gen<void> {
          yield* rcu_read_lock();
          yield* rcu_read_unlock();
        })(),
      );
      spawn(
        "updater",
        (function* (): Gen<void> {
          yield* call_rcu(head, function* () {}, "cb");
          yield* synchronize_rcu();
        })(),
      );
    };
    // reader enters, updater queues the callback and starts its grace period, then waits.
    const rec = recordRun(p, [0, 1, 1, 1, 0, 1, 2, 2], { snapshot: (rt) => snapshotRcu(m!, rt.tasks) });
    const steps = rec.result.trace!.map((s) => `${s.task}:${s.step}`);
    const waitAt = steps.indexOf("1:synchronize_rcu: start GP");
    expect(waitAt).toBeGreaterThan(0);
    expect(rec.states![waitAt]).toMatchObject({ readers: [0], waiters: [1], pendingCallbacks: ["cb"] });
    const unlock = steps.indexOf("0:rcu_read_unlock");
    expect(rec.states![unlock].readers).toEqual([]);
    const gp = steps.findIndex((s) => s.includes("GP for cb"));
    expect(rec.states![gp]).toMatchObject({ pendingCallbacks: [], runningCallbacks: ["cb"] });
    expect(rec.states!.at(-1)).toEqual({
      readers: [],
      waiters: [],
      pendingCallbacks: [],
      runningCallbacks: [],
    });
  });

  it("counts a callback batched in its queuer's section as pending (per-section callbacks)", () => {
    let m: Machine | null = null;
    const p: Program = ({ spawn }) => {
      m = bootMachine({ rcuCallbacks: "per-section" });
      const head = new RcuHead(null);
      spawn(
        "updater",
        (function* (): Gen<void> {
          yield* rcu_read_lock();
          yield* call_rcu(head, function* () {}, "cb");
          yield* rcu_read_unlock();
        })(),
      );
    };
    const rec = recordRun(p, [], { snapshot: (rt) => snapshotRcu(m!, rt.tasks) });
    const steps = rec.result.trace!.map((s) => `${s.task}:${s.step}`);
    expect(rec.states![steps.indexOf("0:call_rcu")]).toMatchObject({
      readers: [0],
      pendingCallbacks: ["cb"],
    });
    // The section's end hands the batch to a callback task, still pending until its grace period.
    expect(rec.states![steps.indexOf("0:rcu_read_unlock")]).toMatchObject({
      readers: [],
      pendingCallbacks: ["cb"],
    });
    expect(rec.states![steps.indexOf("1:GP for cb")]).toMatchObject({
      pendingCallbacks: [],
      runningCallbacks: ["cb"],
    });
  });

  it("shows a queued item as pending, then running on its kworker", () => {
    let wq: Workqueue | null = null;
    let w: WorkStruct | null = null;
    const p: Program = ({ spawn }) => {
      bootMachine();
      wq = alloc_workqueue("zap");
      w = new WorkStruct("work");
      spawn(
        "q",
        (function* (): Gen<void> {
          yield* INIT_WORK(w!, function* () {
            yield* WRITE_ONCE(new Atomic("y"), 1);
          });
          yield* queue_work(wq!, w!);
          yield* flush_workqueue(wq!);
        })(),
      );
    };
    const rec = recordRun(p, [0, 0, 1, 1, 1], { snapshot: () => snapshotWorkqueue(wq!, [w!]) });
    const steps = rec.result.trace!.map((s) => s.step);
    // PENDING first, then the insertion puts the item in flight.
    const q = steps.indexOf("queue_work");
    expect(rec.states![q]).toMatchObject({
      name: "zap",
      items: [{ name: "work", pending: true }],
      inFlight: 0,
    });
    const ins = steps.indexOf("__queue_work");
    expect(ins).toBe(q + 1);
    expect(rec.states![ins]).toMatchObject({
      name: "zap",
      items: [{ name: "work", pending: true, running: false }],
      inFlight: 1,
      destroyed: false,
    });
    const run = steps.indexOf("clear PENDING");
    expect(rec.states![run].items).toEqual([{ name: "work", pending: false, running: true, worker: 1 }]);
    expect(rec.states!.at(-1)).toMatchObject({ items: [], inFlight: 0 });
  });
});
