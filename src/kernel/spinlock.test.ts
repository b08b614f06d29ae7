import { describe, expect, it } from "vitest";
import { enumerateAll } from "../engine/enumerate.js";
import type { Gen } from "../engine/op.js";
import { type Program, runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { kfree, kzalloc } from "./alloc.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "./atomic.js";
import { lockdep_is_held } from "./lockdep.js";
import { bootMachine, ktask } from "./machine.js";
import {
  Mutex,
  mutex_lock,
  mutex_unlock,
  Spinlock,
  spin_lock,
  spin_trylock,
  spin_unlock,
} from "./spinlock.js";
import { WARN_ON } from "./warn.js";

function runOnce(p: Program) {
  return runProgram(p, { scheduler: new RoundRobinScheduler() });
}

type Lock = "spin" | "mutex";

/** Two tasks each increment a counter with a plain load and store inside the lock. */
function counter(kind: Lock): Program {
  return ({ spawn }) => {
    bootMachine();
    const x = new Atomic("x");
    const s = new Spinlock("s");
    const m = new Mutex("m");
    let inside = 0;
    let done = 0;
    const body = function* (): Gen<void> {
      if (kind === "spin") yield* spin_lock(s);
      else yield* mutex_lock(m);
      WARN_ON(++inside > 1, "two tasks inside the critical section");
      const v = yield* READ_ONCE(x);
      yield* WRITE_ONCE(x, v + 1);
      inside--;
      if (kind === "spin") yield* spin_unlock(s);
      else yield* mutex_unlock(m);
      if (++done === 2) WARN_ON(x.v !== 2, "lost update");
    };
    spawn("a", body());
    spawn("b", body());
  };
}

describe("spinlock_t and struct mutex", () => {
  for (const kind of ["spin", "mutex"] as const) {
    it(`${kind}: mutual exclusion and no lost update over all schedules`, () => {
      const r = enumerateAll(counter(kind));
      expect(r.complete).toBe(true);
      expect(r.executions).toBeGreaterThan(1);
      expect(r.firstViolation).toBeNull();
    });
  }

  it("a waiter is blocked, not spinning: it takes no step until the holder unlocks", () => {
    const r = runProgram(
      ({ spawn }) => {
        bootMachine();
        const s = new Spinlock("s");
        spawn(
          "holder",
          (function* () {
            yield* spin_lock(s);
            for (let i = 0; i < 3; i++) yield* READ_ONCE(new Atomic(`w${i}`));
            yield* spin_unlock(s);
          })(),
        );
        spawn(
          "waiter",
          (function* () {
            yield* spin_lock(s);
            yield* spin_unlock(s);
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler(), record: true },
    );
    expect(r.status).toBe("ok");
    expect(r.trace!.map((s) => `${r.taskNames[s.task]}:${s.step}`)).toEqual([
      "holder:spin_lock",
      "holder:READ_ONCE",
      "holder:READ_ONCE",
      "holder:READ_ONCE",
      "holder:spin_unlock",
      "waiter:spin_lock",
      "waiter:spin_unlock",
    ]);
  });

  it("spin_lock disables preemption and lockdep records the holder; spin_unlock undoes both", () => {
    const seen: unknown[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const s = new Spinlock("s");
      spawn(
        "t",
        (function* () {
          yield* spin_lock(s);
          seen.push(ktask().preemptCount, lockdep_is_held(s), s.holder);
          yield* spin_unlock(s);
          seen.push(ktask().preemptCount, lockdep_is_held(s), s.holder);
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(seen).toEqual([1, true, 0, 0, false, -1]);
  });

  it("spin_trylock succeeds on a free lock and fails on a held one", () => {
    const seen: boolean[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const s = new Spinlock("s");
      spawn(
        "t",
        (function* () {
          seen.push(yield* spin_trylock(s));
          seen.push(lockdep_is_held(s));
          yield* spin_unlock(s);
        })(),
      );
      spawn(
        "u",
        (function* () {
          seen.push(yield* spin_trylock(s));
        })(),
      );
    });
    expect(r.status).toBe("ok");
    // Round robin: t takes it, u fails while t holds it.
    expect(seen).toEqual([true, true, false]);
  });

  it("taking a spinlock twice is recursive locking: lockdep report, the task dies", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const s = new Spinlock("s");
      spawn(
        "t",
        (function* () {
          yield* spin_lock(s);
          yield* spin_lock(s);
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("lockdep");
    expect(r.violations[0].message).toContain("possible recursive locking detected: s (spin) already held");
  });

  it("taking a mutex twice is recursive locking too", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const m = new Mutex("slots_lock");
      spawn(
        "t",
        (function* () {
          yield* mutex_lock(m);
          yield* mutex_lock(m);
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("lockdep");
    expect(r.violations[0].message).toContain("slots_lock (mutex) already held");
  });

  it("unlocking a lock the task does not hold is a bad unlock balance and leaves the holder alone", () => {
    let holder = -2;
    const r = runProgram(
      ({ spawn }) => {
        bootMachine();
        const s = new Spinlock("s");
        spawn(
          "owner",
          (function* () {
            yield* spin_lock(s);
            yield* READ_ONCE(new Atomic("x"));
            holder = s.holder;
          })(),
        );
        spawn(
          "thief",
          (function* () {
            yield* spin_unlock(s);
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler(), stopOnViolation: false },
    );
    expect(r.violations.map((v) => v.invariant)).toEqual(["lockdep"]);
    expect(r.violations[0].message).toContain("bad unlock balance: s (spin) released but not held");
    expect(r.violations[0].taskName).toBe("thief");
    expect(holder).toBe(0);
  });

  it("mutex_lock while holding a spinlock is sleeping in atomic context", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const s = new Spinlock("s");
      const m = new Mutex("m");
      spawn(
        "t",
        (function* () {
          yield* spin_lock(s);
          yield* mutex_lock(m);
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("sleep-in-atomic");
    expect(r.violations[0].message).toContain("mutex_lock(m)");
    expect(r.violations[0].details.held).toEqual(["s(spin)"]);
  });

  it("a lock embedded in a freed object is a use-after-free when taken", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const o = kzalloc("kvm", "kvm");
      const s = new Spinlock("tdp_mmu_pages_lock", o);
      spawn(
        "t",
        (function* () {
          yield* kfree(o);
          yield* spin_lock(s);
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("use-after-free");
    expect(r.violations[0].message).toContain("spin_lock on kvm.tdp_mmu_pages_lock");
  });
});
