import { describe, expect, it } from "vitest";
import { Atomic, READ_ONCE, WRITE_ONCE } from "../kernel/atomic.js";
import { bootMachine } from "../kernel/machine.js";
import { Mutex, mutex_lock, Spinlock, spin_lock, spin_unlock } from "../kernel/spinlock.js";
import { enumerateAll } from "./enumerate.js";
import { modelFn } from "./model-fn.js";
import type { Gen } from "./op.js";
import { type Program, runProgram } from "./runtime.js";
import { RoundRobinScheduler } from "./scheduler.js";

/** Two tasks take two spinlocks, in the same or in opposite order. */
function abba(opposite: boolean): Program {
  return ({ spawn }) => {
    bootMachine();
    const a = new Spinlock("tdp_mmu_pages_lock");
    const b = new Spinlock("mmu_unsync_pages_lock");
    const take = modelFn("take_both", function* (first: Spinlock, second: Spinlock): Gen<void> {
      yield* spin_lock(first);
      yield* spin_lock(second);
      yield* spin_unlock(second);
      yield* spin_unlock(first);
    });
    spawn("vcpu0", take(a, b));
    spawn("vcpu1", opposite ? take(b, a) : take(a, b));
  };
}

describe("deadlock", () => {
  it("ABBA: some schedule deadlocks, and the report names both tasks and the locks they wait on", () => {
    const r = enumerateAll(abba(true));
    expect(r.complete).toBe(true);
    const run = r.firstViolation!;
    expect(run.violations).toHaveLength(1);
    const v = run.violations[0];
    expect(v.invariant).toBe("deadlock");
    expect(v.message).toBe(
      "vcpu0 waits in take_both (spin_lock) on mmu_unsync_pages_lock; " +
        "vcpu1 waits in take_both (spin_lock) on tdp_mmu_pages_lock",
    );
    expect(v.details.blocked).toEqual([
      { task: 0, name: "vcpu0", fn: "take_both", step: "spin_lock", waitsOn: "mmu_unsync_pages_lock" },
      { task: 1, name: "vcpu1", fn: "take_both", step: "spin_lock", waitsOn: "tdp_mmu_pages_lock" },
    ]);
  });

  it("the same order never deadlocks", () => {
    const r = enumerateAll(abba(false));
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
  });

  it("a task blocked on a lock nobody will release is a deadlock too; finished tasks are not named", () => {
    const r = runProgram(
      ({ spawn }) => {
        bootMachine();
        const m = new Mutex("slots_lock");
        spawn(
          "leaker",
          (function* () {
            yield* mutex_lock(m);
          })(),
        );
        spawn(
          "waiter",
          (function* () {
            yield* READ_ONCE(new Atomic("x"));
            yield* mutex_lock(m);
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler() },
    );
    expect(r.violations.map((v) => v.invariant)).toEqual(["deadlock"]);
    expect(r.violations[0].message).toBe("waiter waits in <task> (mutex_lock) on slots_lock");
  });

  it("a run where every task finishes is not a deadlock", () => {
    const r = runProgram(abba(false), { scheduler: new RoundRobinScheduler() });
    expect(r.status).toBe("ok");
  });
});

describe("livelock", () => {
  const spin_until_set = modelFn("spin_until_set", function* (flag: Atomic): Gen<void> {
    while ((yield* READ_ONCE(flag)) === 0) {
      // Nobody ever sets the flag.
    }
  });

  it("a run that passes the step bound is reported as a possible livelock naming the looping task", () => {
    const r = runProgram(
      ({ spawn }) => {
        bootMachine();
        const flag = new Atomic("flag");
        const other = new Atomic("other");
        spawn(
          "worker",
          (function* () {
            for (let i = 0; i < 5; i++) yield* WRITE_ONCE(other, i);
          })(),
        );
        spawn("spinner", spin_until_set(flag));
      },
      { scheduler: new RoundRobinScheduler(), maxSteps: 50 },
    );
    expect(r.violations).toHaveLength(1);
    const v = r.violations[0];
    expect(v.invariant).toBe("livelock");
    expect(v.message).toContain("possible livelock: the run passed 50 steps");
    expect(v.message).toContain("spinner took");
    expect(v.message).toContain("last in spin_until_set (READ_ONCE)");
    expect(v.details).toMatchObject({ name: "spinner", steps: 50 });
    expect(r.stats.steps).toBe(50);
  });

  it("over a long run, the task that did most of the last window's steps is named", () => {
    const r = runProgram(
      ({ spawn }) => {
        bootMachine();
        const flag = new Atomic("flag");
        const l = new Spinlock("l");
        spawn(
          "early",
          (function* () {
            // Busy for a while, then blocked for good behind the spinner's lock.
            for (let i = 0; i < 600; i++) yield* READ_ONCE(new Atomic(`e${i}`));
            yield* spin_lock(l);
          })(),
        );
        spawn(
          "spinner",
          (function* () {
            yield* spin_lock(l);
            yield* spin_until_set(flag);
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler(), maxSteps: 2000 },
    );
    expect(r.violations[0].invariant).toBe("livelock");
    expect(r.violations[0].details).toMatchObject({ name: "spinner" });
    expect(r.violations[0].message).toContain("spinner took 900 of the last 1000");
  });

  it("a bounded loop under the step bound is fine", () => {
    const r = runProgram(
      ({ spawn }) => {
        bootMachine();
        const flag = new Atomic("flag");
        spawn(
          "setter",
          (function* () {
            yield* READ_ONCE(new Atomic("x"));
            yield* WRITE_ONCE(flag, 1);
          })(),
        );
        spawn("spinner", spin_until_set(flag));
      },
      { scheduler: new RoundRobinScheduler(), maxSteps: 50 },
    );
    expect(r.status).toBe("ok");
  });
});
