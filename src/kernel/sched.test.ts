import { describe, expect, it } from "vitest";
import { enumerateAll } from "../engine/enumerate.js";
import type { Gen } from "../engine/op.js";
import { type Program, runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { might_sleep } from "./lockdep.js";
import { bootMachine, ktask, type MachineConfig, type PreemptionModel } from "./machine.js";
import { cond_resched, need_resched, preempt_disable, preempt_enable, schedule } from "./sched.js";
import { Spinlock, spin_lock, spin_unlock } from "./spinlock.js";

function runOnce(p: Program) {
  return runProgram(p, { scheduler: new RoundRobinScheduler() });
}

/** Every outcome of one task's body over all choices, as strings. */
function outcomes(cfg: Partial<MachineConfig>, body: (log: (s: unknown) => void) => Gen<void>): string[] {
  const out: string[] = [];
  const r = enumerateAll(({ spawn }) => {
    bootMachine(cfg);
    const log: unknown[] = [];
    spawn(
      "t",
      (function* () {
        yield* body((s) => log.push(s));
        out.push(log.join(","));
      })(),
    );
  });
  expect(r.complete).toBe(true);
  expect(r.firstViolation).toBeNull();
  return out.sort();
}

describe("need_resched", () => {
  it("never / always pin the answer and make no choice point", () => {
    const never = outcomes({ needResched: "never" }, function* (log) {
      log(yield* need_resched());
    });
    expect(never).toEqual(["false"]);
    const always = outcomes({ needResched: "always", preemption: "none" }, function* (log) {
      log(yield* need_resched());
    });
    expect(always).toEqual(["true"]);
  });

  it("is explored both ways, bounded by the budget, and sticky until the task schedules", () => {
    const res = outcomes(
      { needResched: "choice", needReschedBudget: 1, preemption: "none" },
      function* (log) {
        log(yield* need_resched());
        log(yield* need_resched());
        yield* schedule();
        log(yield* need_resched());
      },
    );
    // Once true, TIF_NEED_RESCHED stays set until schedule(); the budget allows one true answer per run.
    expect(res).toEqual(["false,false,false", "false,false,true", "false,true,false", "true,true,false"]);
  });

  it("a larger budget allows more true answers", () => {
    const res = outcomes(
      { needResched: "choice", needReschedBudget: 2, preemption: "none" },
      function* (log) {
        log(yield* need_resched());
        yield* schedule();
        log(yield* need_resched());
      },
    );
    expect(res).toEqual(["false,false", "false,true", "true,false", "true,true"]);
  });

  it("with full preemption, a preemptible task is switched out at once: the flag does not stick", () => {
    const res = outcomes(
      { needResched: "choice", needReschedBudget: 1, preemption: "full" },
      function* (log) {
        log(yield* need_resched());
        log(yield* need_resched());
      },
    );
    expect(res).toEqual(["false,false", "false,true", "true,false"]);
  });

  it("with full preemption, the flag set under a spinlock survives until spin_unlock", () => {
    const res = outcomes({ needResched: "always", preemption: "full" }, function* (log) {
      const s = new Spinlock("s");
      yield* spin_lock(s);
      yield* need_resched();
      log(ktask().needResched);
      yield* spin_unlock(s);
      log(ktask().needResched);
    });
    expect(res).toEqual(["true,false"]);
  });

  it("without CONFIG_PREEMPTION, spin_unlock leaves the flag for the next voluntary point", () => {
    for (const preemption of ["none", "voluntary"] as const) {
      const res = outcomes({ needResched: "always", preemption }, function* (log) {
        const s = new Spinlock("s");
        yield* spin_lock(s);
        yield* need_resched();
        yield* spin_unlock(s);
        log(ktask().needResched);
      });
      expect(res).toEqual(["true"]);
    }
  });
});

describe("cond_resched", () => {
  function condResched(preemption: PreemptionModel, policy: MachineConfig["needResched"]) {
    return outcomes({ needResched: policy, preemption }, function* (log) {
      log(yield* cond_resched());
      log(ktask().needResched);
    });
  }

  it("without CONFIG_PREEMPTION it reschedules when need_resched() says so, and clears the flag", () => {
    for (const preemption of ["none", "voluntary"] as const) {
      expect(condResched(preemption, "choice")).toEqual(["false,false", "true,false"]);
      expect(condResched(preemption, "never")).toEqual(["false,false"]);
    }
  });

  it("with full preemption it is a no-op that returns false and asks nothing", () => {
    let executions = 0;
    const r = enumerateAll(({ spawn }) => {
      bootMachine({ preemption: "full", needResched: "choice" });
      spawn(
        "t",
        (function* () {
          if (yield* cond_resched()) throw new Error("cond_resched rescheduled under preempt=full");
          executions++;
        })(),
      );
    });
    expect(r.firstViolation).toBeNull();
    expect(r.executions).toBe(1);
    expect(executions).toBe(1);
  });

  it("inside a spinlock it is sleeping in atomic context, under every preemption model", () => {
    for (const preemption of ["none", "voluntary", "full"] as const) {
      const r = runOnce(({ spawn }) => {
        bootMachine({ preemption });
        const s = new Spinlock("s");
        spawn(
          "t",
          (function* () {
            yield* spin_lock(s);
            yield* cond_resched();
          })(),
        );
      });
      expect(r.violations[0].invariant).toBe("sleep-in-atomic");
      expect(r.violations[0].message).toContain("cond_resched()");
      expect(r.violations[0].message).toContain("preempt_count=1");
    }
  });
});

describe("might_sleep as a voluntary preemption point", () => {
  function mightSleep(preemption: PreemptionModel): boolean {
    let after = true;
    const r = runOnce(({ spawn }) => {
      bootMachine({ preemption, needResched: "always" });
      const s = new Spinlock("s");
      spawn(
        "t",
        (function* () {
          // Set the flag while preemption is off; without CONFIG_PREEMPTION the unlock keeps it.
          yield* spin_lock(s);
          yield* need_resched();
          yield* spin_unlock(s);
          might_sleep("test");
          after = ktask().needResched;
        })(),
      );
    });
    expect(r.status).toBe("ok");
    return after;
  }

  it("reschedules under CONFIG_PREEMPT_VOLUNTARY only", () => {
    expect(mightSleep("voluntary")).toBe(false);
    expect(mightSleep("none")).toBe(true);
  });
});

describe("preempt_disable / preempt_enable", () => {
  it("nest, and an unbalanced preempt_enable is reported", () => {
    const counts: number[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      spawn(
        "t",
        (function* () {
          preempt_disable();
          preempt_disable();
          counts.push(ktask().preemptCount);
          preempt_enable();
          preempt_enable();
          counts.push(ktask().preemptCount);
          preempt_enable();
          yield* schedule();
        })(),
      );
    });
    expect(counts).toEqual([2, 0]);
    expect(r.violations[0].invariant).toBe("lockdep");
    expect(r.violations[0].message).toContain("preempt_enable() with preempt_count 0");
  });
});
