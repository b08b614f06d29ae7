import { describe, expect, it } from "vitest";
import { enumerateAll } from "../engine/enumerate.js";
import type { Gen } from "../engine/op.js";
import { type Program, runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { kfree, kzalloc } from "./alloc.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "./atomic.js";
import { lockdep_assert_preemption_disabled, rcu_read_lock_held } from "./lockdep.js";
import { bootMachine, ktask } from "./machine.js";
import {
  call_rcu,
  RcuHead,
  rcu_barrier,
  rcu_dereference_check,
  rcu_read_lock,
  rcu_read_unlock,
  synchronize_rcu,
} from "./rcu.js";
import { Mutex, mutex_lock } from "./spinlock.js";
import { WARN_ON } from "./warn.js";

/** A model callback whose body makes no shared access (test bookkeeping only). */
// biome-ignore lint/correctness/useYield: the body makes no shared access, so it never yields
function* noAccess<R>(f: () => R): Gen<R> {
  return f();
}

function runOnce(p: Program) {
  return runProgram(p, { scheduler: new RoundRobinScheduler() });
}

function exhaust(p: Program) {
  const r = enumerateAll(p);
  expect(r.complete).toBe(true);
  return r;
}

/**
 * A reader dereferences an RCU-published object inside rcu_read_lock(); the
 * updater unpublishes it and frees it either after synchronize_rcu(), through
 * call_rcu(), or (the bug) at once.
 */
function publishAndFree(free: "synchronize_rcu" | "call_rcu" | "at once", nestedReader = false): Program {
  return ({ spawn }) => {
    bootMachine();
    const obj = kzalloc("thing", "obj");
    const field = new Atomic("field", 7, obj);
    const slot = new Atomic("slot", 1);
    const head = new RcuHead(obj);
    spawn(
      "reader",
      (function* () {
        yield* rcu_read_lock();
        const published = (yield* READ_ONCE(slot)) === 1;
        if (nestedReader) {
          // An inner section inside the outer one must not end the outer one's protection.
          yield* rcu_read_lock();
          yield* rcu_read_unlock();
        }
        if (published) yield* READ_ONCE(field);
        yield* rcu_read_unlock();
      })(),
    );
    spawn(
      "updater",
      (function* () {
        yield* WRITE_ONCE(slot, 0);
        if (free === "synchronize_rcu") {
          yield* synchronize_rcu();
          yield* kfree(obj);
        } else if (free === "call_rcu") {
          yield* call_rcu(head, () => kfree(obj), "free obj");
        } else {
          yield* kfree(obj);
        }
      })(),
    );
  };
}

describe("grace periods protect readers", () => {
  it("freeing after synchronize_rcu() never frees under a reader, in any schedule", () => {
    expect(exhaust(publishAndFree("synchronize_rcu")).firstViolation).toBeNull();
  });

  it("freeing through call_rcu() never frees under a reader, in any schedule", () => {
    expect(exhaust(publishAndFree("call_rcu")).firstViolation).toBeNull();
  });

  it("a nested section ends only at the outermost unlock", () => {
    expect(exhaust(publishAndFree("synchronize_rcu", true)).firstViolation).toBeNull();
    expect(exhaust(publishAndFree("call_rcu", true)).firstViolation).toBeNull();
  });

  it("freeing without a grace period is a use-after-free in some schedule", () => {
    const v = exhaust(publishAndFree("at once")).firstViolation?.violations[0];
    expect(v?.invariant).toBe("use-after-free");
    expect(v?.message).toContain("reader");
    expect(v?.message).toContain("READ_ONCE on obj.field");
  });

  it("synchronize_rcu waits for readers that existed when it started, not for later ones", () => {
    const seen = new Set<string>();
    const r = exhaust(({ spawn }) => {
      bootMachine();
      type Phase = "before" | "inside" | "after";
      const st: { early: Phase; late: Phase } = { early: "before", late: "before" };
      let earlyInsideAtStart = false;
      spawn(
        "early",
        (function* () {
          yield* rcu_read_lock();
          st.early = "inside";
          yield* rcu_read_unlock();
          st.early = "after";
        })(),
      );
      spawn(
        "updater",
        (function* () {
          yield* READ_ONCE(new Atomic("x"));
          earlyInsideAtStart = st.early === "inside";
          yield* synchronize_rcu();
          WARN_ON(
            earlyInsideAtStart && st.early !== "after",
            "grace period ended under a pre-existing reader",
          );
          seen.add(`late=${st.late}`);
        })(),
      );
      spawn(
        "late",
        (function* () {
          yield* rcu_read_lock();
          st.late = "inside";
          yield* rcu_read_unlock();
          st.late = "after";
        })(),
      );
    });
    expect(r.firstViolation).toBeNull();
    // Some schedule ends the grace period while a reader that started after it is still inside.
    expect(seen.has("late=inside")).toBe(true);
  });
});

describe("call_rcu", () => {
  it("runs the callback only after every reader that existed at call time has left, in every schedule", () => {
    let callbacks = 0;
    const r = exhaust(({ spawn }) => {
      bootMachine();
      const inside = [false, false];
      const left = [false, false];
      let insideAtCall: boolean[] = [];
      for (const i of [0, 1]) {
        spawn(
          `reader${i}`,
          (function* () {
            yield* rcu_read_lock();
            inside[i] = true;
            yield* READ_ONCE(new Atomic("data"));
            yield* rcu_read_unlock();
            inside[i] = false;
            left[i] = true;
          })(),
        );
      }
      spawn(
        "updater",
        (function* () {
          yield* call_rcu(new RcuHead(null), () =>
            noAccess(() => {
              callbacks++;
              for (const i of [0, 1]) WARN_ON(insideAtCall[i] && !left[i], `callback ran under reader${i}`);
            }),
          );
          // Still the call_rcu step: spawning the callback does not yield.
          insideAtCall = inside.slice();
        })(),
      );
    });
    expect(r.firstViolation).toBeNull();
    expect(callbacks).toBe(r.executions);
  });

  it("the callback runs in softirq context: it may not sleep, and counts as preemption-disabled", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const m = new Mutex("m");
      spawn(
        "t",
        (function* () {
          yield* call_rcu(new RcuHead(null), function* () {
            lockdep_assert_preemption_disabled();
            yield* mutex_lock(m);
          });
        })(),
      );
    });
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0].invariant).toBe("sleep-in-atomic");
    expect(r.violations[0].message).toContain("softirq");
    expect(r.violations[0].taskName).toBe("rcu_cb:rcu_head");
  });

  it("queuing an rcu_head that is already queued is reported", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const head = new RcuHead(null);
      spawn(
        "t",
        (function* () {
          yield* rcu_read_lock();
          yield* call_rcu(head, function* () {});
          yield* call_rcu(head, function* () {});
          yield* rcu_read_unlock();
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("debugobjects");
    expect(r.violations[0].message).toContain("already queued");
  });

  it("an rcu_head may be queued again once its callback has run", () => {
    let ran = 0;
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const head = new RcuHead(null);
      spawn(
        "t",
        (function* () {
          yield* call_rcu(head, () =>
            noAccess(() => {
              ran++;
            }),
          );
          yield* rcu_barrier();
          yield* call_rcu(head, () =>
            noAccess(() => {
              ran++;
            }),
          );
          yield* rcu_barrier();
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(ran).toBe(2);
  });
});

describe("rcu_barrier", () => {
  it("waits for every callback queued before it, but not for later ones", () => {
    const late = new Set<boolean>();
    const r = exhaust(({ spawn }) => {
      bootMachine();
      const ran = [false, false];
      let otherQueued = false;
      const cb = (i: number) => () =>
        noAccess(() => {
          ran[i] = true;
        });
      spawn(
        "t",
        (function* () {
          yield* call_rcu(new RcuHead(null), cb(0));
          const otherBefore = otherQueued;
          yield* rcu_barrier();
          WARN_ON(!ran[0] || (otherBefore && !ran[1]), "rcu_barrier returned before an earlier callback ran");
          late.add(ran[1]);
        })(),
      );
      spawn(
        "other",
        (function* () {
          yield* call_rcu(new RcuHead(null), cb(1));
          otherQueued = true;
        })(),
      );
    });
    expect(r.firstViolation).toBeNull();
    expect(late).toEqual(new Set([true, false]));
  });

  it("sleeps, so it may not be called inside a read-side section", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      spawn(
        "t",
        (function* () {
          yield* rcu_read_lock();
          yield* rcu_barrier();
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("sleep-in-atomic");
    expect(r.violations[0].message).toContain("rcu_barrier()");
  });
});

describe("read-side section bookkeeping", () => {
  it("nests, and lockdep sees the reader until the outermost unlock", () => {
    const held: boolean[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      spawn(
        "t",
        (function* () {
          yield* rcu_read_lock();
          yield* rcu_read_lock();
          held.push(rcu_read_lock_held(), ktask().rcuDepth === 2);
          yield* rcu_read_unlock();
          held.push(rcu_read_lock_held());
          yield* rcu_read_unlock();
          held.push(rcu_read_lock_held());
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(held).toEqual([true, true, true, false]);
  });

  it("rcu_read_unlock without rcu_read_lock is reported", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      spawn("t", rcu_read_unlock());
    });
    expect(r.violations[0].invariant).toBe("lockdep");
    expect(r.violations[0].message).toContain("rcu_read_unlock() without rcu_read_lock()");
  });

  it("synchronize_rcu inside a read-side section is reported, not left to hang", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      spawn(
        "t",
        (function* () {
          yield* rcu_read_lock();
          yield* synchronize_rcu();
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("sleep-in-atomic");
    expect(r.violations[0].message).toContain("synchronize_rcu()");
  });

  it("rcu_dereference_check: fine inside RCU or under the lockdep condition, a splat otherwise", () => {
    const r = runProgram(
      ({ spawn }) => {
        bootMachine();
        spawn(
          "t",
          (function* () {
            yield* rcu_read_lock();
            rcu_dereference_check("inside");
            yield* rcu_read_unlock();
            rcu_dereference_check("locked", () => true);
            rcu_dereference_check("bare");
            rcu_dereference_check("bare, condition false", () => false);
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler(), stopOnViolation: false },
    );
    expect(r.violations.map((v) => v.invariant)).toEqual(["suspicious-rcu", "suspicious-rcu"]);
    expect(r.violations[0].message).toContain("bare in");
    expect(r.violations[1].message).toContain("bare, condition false");
  });
});
