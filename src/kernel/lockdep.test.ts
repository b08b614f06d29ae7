import { describe, expect, it } from "vitest";
import type { Gen } from "../engine/op.js";
import { type Program, runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import {
  lockdep_assert_held,
  lockdep_assert_held_read,
  lockdep_assert_held_write,
  lockdep_assert_not_held,
  lockdep_assert_preemption_disabled,
  lockdep_is_held,
  might_sleep,
  rcu_read_lock_held,
} from "./lockdep.js";
import { bootMachine } from "./machine.js";
import { call_rcu, RcuHead, rcu_read_lock, rcu_read_unlock } from "./rcu.js";
import { RwLock, read_lock, read_unlock, write_lock, write_unlock } from "./rwlock.js";
import { preempt_disable, preempt_enable } from "./sched.js";
import { Mutex, mutex_lock, mutex_unlock, Spinlock, spin_lock, spin_unlock } from "./spinlock.js";

/** A model callback whose body makes no shared access (test bookkeeping only). */
// biome-ignore lint/correctness/useYield: the body makes no shared access, so it never yields
function* noAccess<R>(f: () => R): Gen<R> {
  return f();
}

interface Locks {
  readonly mmu_lock: RwLock;
  readonly pages_lock: Spinlock;
  readonly slots_lock: Mutex;
}

/** Run `body` in one task with fresh locks; collect every violation (the run does not stop). */
function check(body: (l: Locks) => Gen<void>) {
  const p: Program = ({ spawn }) => {
    bootMachine();
    const l = {
      mmu_lock: new RwLock("mmu_lock"),
      pages_lock: new Spinlock("tdp_mmu_pages_lock"),
      slots_lock: new Mutex("slots_lock"),
    };
    spawn("t", body(l));
  };
  const r = runProgram(p, { scheduler: new RoundRobinScheduler(), stopOnViolation: false });
  return r.violations.map((v) => `${v.invariant}: ${v.message}`);
}

describe("lockdep_assert_held*", () => {
  it("lockdep_assert_held accepts any mode and fails, listing what is held, when the lock is not held", () => {
    const out = check(function* (l) {
      yield* read_lock(l.mmu_lock);
      lockdep_assert_held(l.mmu_lock);
      yield* read_unlock(l.mmu_lock);
      yield* write_lock(l.mmu_lock);
      lockdep_assert_held(l.mmu_lock);
      yield* write_unlock(l.mmu_lock);
      yield* spin_lock(l.pages_lock);
      lockdep_assert_held(l.pages_lock);
      lockdep_assert_held(l.mmu_lock);
      yield* spin_unlock(l.pages_lock);
    });
    expect(out).toEqual(["lockdep: lockdep_assert_held(mmu_lock) failed in <task>"]);
    const r = runProgram(
      ({ spawn }) => {
        bootMachine();
        const s = new Spinlock("tdp_mmu_pages_lock");
        const m = new RwLock("mmu_lock");
        spawn(
          "t",
          (function* () {
            yield* spin_lock(s);
            lockdep_assert_held(m);
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler() },
    );
    expect(r.violations[0].details.held).toEqual(["tdp_mmu_pages_lock(spin)"]);
  });

  it("lockdep_assert_held_read wants the read mode", () => {
    const out = check(function* (l) {
      yield* read_lock(l.mmu_lock);
      lockdep_assert_held_read(l.mmu_lock);
      yield* read_unlock(l.mmu_lock);
      yield* write_lock(l.mmu_lock);
      lockdep_assert_held_read(l.mmu_lock);
      yield* write_unlock(l.mmu_lock);
      lockdep_assert_held_read(l.mmu_lock);
    });
    expect(out).toEqual([
      "lockdep: lockdep_assert_held_read(mmu_lock) failed in <task>",
      "lockdep: lockdep_assert_held_read(mmu_lock) failed in <task>",
    ]);
  });

  it("lockdep_assert_held_write wants an exclusive hold: write mode, a spinlock or a mutex", () => {
    const out = check(function* (l) {
      yield* write_lock(l.mmu_lock);
      lockdep_assert_held_write(l.mmu_lock);
      yield* write_unlock(l.mmu_lock);
      yield* mutex_lock(l.slots_lock);
      lockdep_assert_held_write(l.slots_lock);
      yield* spin_lock(l.pages_lock);
      lockdep_assert_held_write(l.pages_lock);
      yield* spin_unlock(l.pages_lock);
      yield* mutex_unlock(l.slots_lock);
      yield* read_lock(l.mmu_lock);
      lockdep_assert_held_write(l.mmu_lock);
      yield* read_unlock(l.mmu_lock);
    });
    expect(out).toEqual(["lockdep: lockdep_assert_held_write(mmu_lock) failed in <task>"]);
  });

  it("lockdep_assert_not_held and lockdep_is_held", () => {
    const is: boolean[] = [];
    const out = check(function* (l) {
      lockdep_assert_not_held(l.slots_lock);
      is.push(lockdep_is_held(l.slots_lock));
      yield* mutex_lock(l.slots_lock);
      is.push(lockdep_is_held(l.slots_lock));
      lockdep_assert_not_held(l.slots_lock);
      yield* mutex_unlock(l.slots_lock);
    });
    expect(is).toEqual([false, true]);
    expect(out).toEqual(["lockdep: lockdep_assert_not_held(slots_lock) failed in <task>"]);
  });

  it("a lock held by another task does not count", () => {
    const r = runProgram(
      ({ spawn }) => {
        bootMachine();
        const m = new RwLock("mmu_lock");
        spawn(
          "holder",
          (function* () {
            yield* write_lock(m);
            yield* write_unlock(m);
          })(),
        );
        spawn(
          "other",
          (function* () {
            yield* rcu_read_lock();
            lockdep_assert_held_write(m);
            yield* rcu_read_unlock();
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler() },
    );
    expect(r.violations[0].taskName).toBe("other");
    expect(r.violations[0].message).toContain("lockdep_assert_held_write(mmu_lock) failed");
  });
});

describe("lockdep_assert_preemption_disabled", () => {
  it("holds under a spinlock, an rwlock, preempt_disable() and in an RCU callback; fails otherwise", () => {
    const out = check(function* (l) {
      lockdep_assert_preemption_disabled();
      yield* spin_lock(l.pages_lock);
      lockdep_assert_preemption_disabled();
      yield* spin_unlock(l.pages_lock);
      yield* read_lock(l.mmu_lock);
      lockdep_assert_preemption_disabled();
      yield* read_unlock(l.mmu_lock);
      preempt_disable();
      lockdep_assert_preemption_disabled();
      preempt_enable();
      yield* call_rcu(new RcuHead(null), () => noAccess(lockdep_assert_preemption_disabled));
    });
    expect(out).toEqual(["lockdep: lockdep_assert_preemption_disabled() failed in <task>"]);
  });

  it("an RCU read-side section disables preemption only without CONFIG_PREEMPTION (no PREEMPT_RCU)", () => {
    for (const preemption of ["none", "voluntary", "full"] as const) {
      const r = runProgram(
        ({ spawn }) => {
          bootMachine({ preemption });
          spawn(
            "t",
            (function* () {
              yield* rcu_read_lock();
              lockdep_assert_preemption_disabled();
              yield* rcu_read_unlock();
            })(),
          );
        },
        { scheduler: new RoundRobinScheduler() },
      );
      expect(r.violations.length).toBe(preemption === "full" ? 1 : 0);
    }
  });
});

describe("might_sleep and rcu_read_lock_held", () => {
  it("might_sleep is fine in process context and reports atomic contexts with what is held", () => {
    const out = check(function* (l) {
      might_sleep("ok");
      yield* spin_lock(l.pages_lock);
      might_sleep("under spinlock");
      yield* spin_unlock(l.pages_lock);
      yield* read_lock(l.mmu_lock);
      might_sleep("under read_lock");
      yield* read_unlock(l.mmu_lock);
      yield* rcu_read_lock();
      might_sleep("inside RCU");
      yield* rcu_read_unlock();
      yield* mutex_lock(l.slots_lock);
      might_sleep("under a mutex is fine");
      yield* mutex_unlock(l.slots_lock);
    });
    expect(out).toEqual([
      "sleep-in-atomic: BUG: sleeping function called from invalid context: under spinlock in <task> (preempt_count=1, rcu depth=0)",
      "sleep-in-atomic: BUG: sleeping function called from invalid context: under read_lock in <task> (preempt_count=1, rcu depth=0)",
      "sleep-in-atomic: BUG: sleeping function called from invalid context: inside RCU in <task> (preempt_count=0, rcu depth=1)",
    ]);
  });

  it("rcu_read_lock_held follows the read-side section", () => {
    const seen: boolean[] = [];
    check(function* () {
      seen.push(rcu_read_lock_held());
      yield* rcu_read_lock();
      seen.push(rcu_read_lock_held());
      yield* rcu_read_unlock();
      seen.push(rcu_read_lock_held());
    });
    expect(seen).toEqual([false, true, false]);
  });
});
