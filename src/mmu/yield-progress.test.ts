import { describe, expect, it } from "vitest";
import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { cond_resched_rwlock_write, write_lock, write_unlock } from "../kernel/rwlock.js";
import { need_resched } from "../kernel/sched.js";
import { check_yield_progress } from "./invariants/roots.js";
import type { TdpIter } from "./tdp_iter.js";
import { tdp_mmu_zap_root } from "./tdp_mmu_zap.js";
import { makeRoot, makeVm, populate } from "./testing.js";
import type { Kvm } from "./types.js";

/** Liveness L2: between two yields of one walk, the walk makes at least one last-level step. */
function zapProgram(overrides: ReadonlyMap<string, Function>) {
  return runProgram(
    ({ spawn }) => {
      const kvm = makeVm({ kernel: "v6.9", machine: { needResched: "always" } });
      const root = makeRoot(kvm);
      for (let gfn = 0; gfn < 16; gfn += 3) populate(kvm, root, gfn);
      spawn(
        "zapper",
        (function* (): Gen<void> {
          yield* write_lock(kvm.mmu_lock);
          yield* tdp_mmu_zap_root(kvm, root, false);
          yield* write_unlock(kvm.mmu_lock);
        })(),
      );
    },
    { scheduler: new RoundRobinScheduler(), overrides, maxSteps: 20_000 },
  );
}

describe("L2-yield-progress", () => {
  it("holds for the kernel's tdp_mmu_iter_cond_resched even when need_resched is always true", () => {
    const r = zapProgram(new Map());
    expect(r.violations.map((v) => v.invariant)).toEqual([]);
  });

  it("is reported when the forward-progress guard is removed", () => {
    // tdp_mmu_iter_cond_resched without its `next_last_level_gfn == yielded_gfn` test.
    const noGuard = modelFn("tdp_mmu_iter_cond_resched", function* (kvm: Kvm, iter: TdpIter): Gen<boolean> {
      if (!(yield* need_resched())) return false;
      check_yield_progress(kvm, "tdp_mmu_iter_cond_resched", iter.yielded_gfn, iter.next_last_level_gfn);
      yield* rcu_read_unlock();
      yield* cond_resched_rwlock_write(kvm.mmu_lock);
      yield* rcu_read_lock();
      iter.yielded = true;
      return true;
    });
    const r = zapProgram(
      new Map([["tdp_mmu_iter_cond_resched", (_o: unknown, ...a: [Kvm, TdpIter]) => noGuard.impl(...a)]]),
    );
    expect(r.violations[0]?.invariant).toBe("L2-yield-progress");
  });
});
