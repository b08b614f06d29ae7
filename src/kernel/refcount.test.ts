import { describe, expect, it } from "vitest";
import { enumerateAll } from "../engine/enumerate.js";
import type { Gen } from "../engine/op.js";
import { type RunResult, runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { kfree, kobj_access, kzalloc } from "./alloc.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "./atomic.js";
import { bootMachine } from "./machine.js";
import { call_rcu, RcuHead, rcu_read_lock, rcu_read_unlock } from "./rcu.js";
import {
  REFCOUNT_SATURATED,
  Refcount,
  refcount_dec,
  refcount_dec_and_test,
  refcount_dec_if_one,
  refcount_dec_not_one,
  refcount_inc,
  refcount_inc_not_zero,
  refcount_read,
  refcount_set,
} from "./refcount.js";

const INT_MAX = 0x7fffffff;

interface OneOp {
  readonly ret: unknown;
  readonly after: number;
  readonly r: RunResult;
}

/** Apply one refcount operation to a count starting at `init`, in a run of its own. */
function apply(init: number, f: (r: Refcount) => Gen<unknown>): OneOp {
  let ret: unknown;
  let after = Number.NaN;
  const r = runProgram(
    ({ spawn }) => {
      bootMachine();
      const rc = new Refcount("count", init);
      spawn(
        "t",
        (function* () {
          ret = yield* f(rc);
          after = rc.v;
        })(),
      );
    },
    { scheduler: new RoundRobinScheduler() },
  );
  return { ret, after, r };
}

function expectClean(o: OneOp): void {
  expect(o.r.violations).toEqual([]);
}

function expectWarn(o: OneOp, text: string): void {
  expect(o.r.violations).toHaveLength(1);
  expect(o.r.violations[0].invariant).toBe("refcount");
  expect(o.r.violations[0].message).toContain(`refcount_t: ${text}`);
  expect(o.r.violations[0].message).toContain("count");
}

describe("refcount_set and refcount_read", () => {
  it("set then read", () => {
    const o = apply(1, function* (r) {
      yield* refcount_set(r, 42);
      return yield* refcount_read(r);
    });
    expectClean(o);
    expect(o.ret).toBe(42);
  });

  it("reads a saturated count as the unsigned int the kernel returns", () => {
    const o = apply(REFCOUNT_SATURATED, refcount_read);
    expect(o.ret).toBe(0xc0000000);
  });
});

describe("refcount_inc_not_zero", () => {
  it("takes a reference on a live count", () => {
    const o = apply(3, refcount_inc_not_zero);
    expectClean(o);
    expect([o.ret, o.after]).toEqual([true, 4]);
  });
  it("refuses a count of 0 and leaves it, silently", () => {
    const o = apply(0, refcount_inc_not_zero);
    expectClean(o);
    expect([o.ret, o.after]).toEqual([false, 0]);
  });
  it("saturates with a WARN on overflow", () => {
    const o = apply(INT_MAX, refcount_inc_not_zero);
    expectWarn(o, "saturated; leaking memory");
    expect([o.ret, o.after]).toEqual([true, REFCOUNT_SATURATED]);
  });
  it("stays saturated (and WARNs) once saturated", () => {
    const o = apply(REFCOUNT_SATURATED, refcount_inc_not_zero);
    expectWarn(o, "saturated; leaking memory");
    expect([o.ret, o.after]).toEqual([true, REFCOUNT_SATURATED]);
  });
});

describe("refcount_inc", () => {
  it("increments", () => {
    const o = apply(1, refcount_inc);
    expectClean(o);
    expect(o.after).toBe(2);
  });
  it("on 0 is an addition on 0: WARN and saturate", () => {
    const o = apply(0, refcount_inc);
    expectWarn(o, "addition on 0; use-after-free");
    expect(o.after).toBe(REFCOUNT_SATURATED);
  });
  it("saturates with a WARN on overflow", () => {
    const o = apply(INT_MAX, refcount_inc);
    expectWarn(o, "saturated; leaking memory");
    expect(o.after).toBe(REFCOUNT_SATURATED);
  });
});

describe("refcount_dec_and_test", () => {
  it("is false while references remain", () => {
    const o = apply(2, refcount_dec_and_test);
    expectClean(o);
    expect([o.ret, o.after]).toEqual([false, 1]);
  });
  it("is true on the last reference", () => {
    const o = apply(1, refcount_dec_and_test);
    expectClean(o);
    expect([o.ret, o.after]).toEqual([true, 0]);
  });
  it("on 0 is an underflow: WARN, saturate, false", () => {
    const o = apply(0, refcount_dec_and_test);
    expectWarn(o, "underflow; use-after-free");
    expect([o.ret, o.after]).toEqual([false, REFCOUNT_SATURATED]);
  });
  it("never reaches 0 from saturation", () => {
    const o = apply(REFCOUNT_SATURATED, refcount_dec_and_test);
    expectWarn(o, "underflow; use-after-free");
    expect([o.ret, o.after]).toEqual([false, REFCOUNT_SATURATED]);
  });
});

describe("refcount_dec", () => {
  it("decrements a count above 1", () => {
    const o = apply(3, refcount_dec);
    expectClean(o);
    expect(o.after).toBe(2);
  });
  it("WARNs and saturates when it drops the last reference", () => {
    const o = apply(1, refcount_dec);
    expectWarn(o, "decrement hit 0; leaking memory");
    expect(o.after).toBe(REFCOUNT_SATURATED);
  });
});

describe("refcount_dec_not_one: decrement unless the count is 1", () => {
  it("decrements 2 to 1 and says it did (it does not report whether the result is 1)", () => {
    const o = apply(2, refcount_dec_not_one);
    expectClean(o);
    expect([o.ret, o.after]).toEqual([true, 1]);
  });
  it("leaves 1 alone and returns false", () => {
    const o = apply(1, refcount_dec_not_one);
    expectClean(o);
    expect([o.ret, o.after]).toEqual([false, 1]);
  });
  it("on 0, the unsigned decrement wraps: WARN, leave it at 0, return true", () => {
    const o = apply(0, refcount_dec_not_one);
    expectWarn(o, "underflow; use-after-free");
    expect([o.ret, o.after]).toEqual([true, 0]);
  });
  it("leaves a saturated count alone and returns true, without a WARN", () => {
    const o = apply(REFCOUNT_SATURATED, refcount_dec_not_one);
    expectClean(o);
    expect([o.ret, o.after]).toEqual([true, REFCOUNT_SATURATED]);
  });
});

describe("refcount_dec_if_one", () => {
  it("does the 1 -> 0 transition", () => {
    const o = apply(1, refcount_dec_if_one);
    expectClean(o);
    expect([o.ret, o.after]).toEqual([true, 0]);
  });
  it("does nothing otherwise", () => {
    const o = apply(2, refcount_dec_if_one);
    expectClean(o);
    expect([o.ret, o.after]).toEqual([false, 2]);
  });
});

describe("refcount_t over all schedules", () => {
  it("of two puts from 2, exactly one sees the last reference", () => {
    let runs = 0;
    const r = enumerateAll(({ spawn }) => {
      bootMachine();
      const rc = new Refcount("count", 2);
      let last = 0;
      let done = 0;
      const put = function* (): Gen<void> {
        if (yield* refcount_dec_and_test(rc)) last++;
        if (++done === 2) {
          runs++;
          expect(last).toBe(1);
        }
      };
      spawn("a", put());
      spawn("b", put());
    });
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
    expect(runs).toBe(r.executions);
  });

  it("a get racing the last put either fails or keeps the count off 0", () => {
    const seen = new Set<string>();
    const r = enumerateAll(({ spawn }) => {
      bootMachine();
      const rc = new Refcount("count", 1);
      let got = false;
      let freed = false;
      let done = 0;
      const end = () => {
        if (++done === 2) seen.add(`got=${got} freed=${freed} count=${rc.v}`);
      };
      spawn(
        "get",
        (function* () {
          got = yield* refcount_inc_not_zero(rc);
          end();
        })(),
      );
      spawn(
        "put",
        (function* () {
          freed = yield* refcount_dec_and_test(rc);
          end();
        })(),
      );
    });
    expect(r.firstViolation).toBeNull();
    expect(seen).toEqual(new Set(["got=false freed=true count=0", "got=true freed=false count=1"]));
  });

  /**
   * Seed 003's rejected put: "if (refcount_dec_not_one()) return; ...;
   * refcount_set(0); free". The getter finds the root the way the TDP MMU
   * does, through an RCU-published pointer inside rcu_read_lock(), and keeps
   * using it after rcu_read_unlock() because it holds a reference; the last
   * put unpublishes the root and frees it through call_rcu(). Between
   * dec_not_one seeing 1 and the forced 0 a get can take a reference, and the
   * free then pulls the root from under it. The agreed shape
   * (refcount_dec_and_test) has no such schedule.
   */
  function seed003(put: "dec_not_one+set0" | "dec_and_test") {
    return enumerateAll(({ spawn }) => {
      bootMachine();
      const root = kzalloc("kvm_mmu_page", "root");
      const rc = new Refcount("tdp_mmu_root_count", 1, root);
      const head = new RcuHead(root);
      const slot = new Atomic("roots", 1);
      spawn(
        "put",
        (function* () {
          if (put === "dec_not_one+set0") {
            if (yield* refcount_dec_not_one(rc)) return;
            yield* refcount_set(rc, 0);
          } else if (!(yield* refcount_dec_and_test(rc))) {
            return;
          }
          yield* WRITE_ONCE(slot, 0);
          yield* call_rcu(head, () => kfree(root), "free root");
        })(),
      );
      spawn(
        "get",
        (function* () {
          yield* rcu_read_lock();
          const got = (yield* READ_ONCE(slot)) === 1 && (yield* refcount_inc_not_zero(rc));
          yield* rcu_read_unlock();
          if (got) yield* kobj_access(root, "use the root");
        })(),
      );
    });
  }

  it("seed 003: dec_not_one then forcing the count to 0 frees a root someone holds", () => {
    const bad = seed003("dec_not_one+set0");
    expect(bad.complete).toBe(true);
    const v = bad.firstViolation?.violations[0];
    expect(v?.invariant).toBe("use-after-free");
    expect(v?.message).toContain("use the root");
  });

  it("seed 003: with dec_and_test no schedule frees a held root", () => {
    const good = seed003("dec_and_test");
    expect(good.complete).toBe(true);
    expect(good.firstViolation).toBeNull();
  });

  it("touching a refcount of a freed object is a use-after-free", () => {
    const r = runProgram(
      ({ spawn }) => {
        bootMachine();
        const o = kzalloc("thing", "obj");
        const rc = new Refcount("refs", 1, o);
        spawn(
          "t",
          (function* () {
            yield* kfree(o);
            yield* refcount_inc_not_zero(rc);
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler() },
    );
    expect(r.violations[0].invariant).toBe("use-after-free");
    expect(r.violations[0].message).toContain("refcount_inc_not_zero on obj.refs");
  });
});
