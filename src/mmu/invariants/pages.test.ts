import { describe, expect, it } from "vitest";
import type { Gen } from "../../engine/op.js";
import type { Program } from "../../engine/runtime.js";
import { runProgram } from "../../engine/runtime.js";
import { RoundRobinScheduler } from "../../engine/scheduler.js";
import { WRITE_ONCE } from "../../kernel/atomic.js";
import { call_rcu, rcu_read_lock, rcu_read_unlock } from "../../kernel/rcu.js";
import { read_lock, read_unlock } from "../../kernel/rwlock.js";
import { mutex_lock } from "../../kernel/spinlock.js";
import { is_writable_pte, SPTE_BIT } from "../spte.js";
import { for_each_tdp_pte, TdpIter } from "../tdp_iter.js";
import {
  tdp_mmu_free_sp_rcu_callback,
  tdp_mmu_set_spte_atomic,
  tdp_mmu_unlink_sp,
  tdp_mmu_zap_spte_atomic,
} from "../tdp_mmu_spte.js";
import { tdp_mmu_iter_cond_resched, tdp_mmu_zap_root } from "../tdp_mmu_zap.js";
import { exploreSleepSets, makeRoot, makeVm, peekLeafSptep, populate } from "../testing.js";
import type { Kvm, KvmMmuPage } from "../types.js";

function one(body: (kvm: Kvm, root: KvmMmuPage) => Gen<void>, needResched: "never" | "always" = "never") {
  const program: Program = ({ spawn }) => {
    const kvm = makeVm({ ptes: 2, machine: { needResched, preemption: "none" } });
    const root = makeRoot(kvm, 1);
    populate(kvm, root, 0, 1);
    populate(kvm, root, 5, 1);
    spawn("t", body(kvm, root));
  };
  return program;
}

describe("page-table invariants", () => {
  it("inv 16: a frozen SPTE overwritten with a present value is caught", () => {
    let leaf = 0;
    const program: Program = ({ spawn }) => {
      const kvm = makeVm({ ptes: 2, machine: { needResched: "never", preemption: "none" } });
      const root = makeRoot(kvm, 1);
      populate(kvm, root, 5, 1);
      const sptep = peekLeafSptep(kvm, root, 5)!;
      leaf = sptep.v;
      spawn(
        "zapper",
        (function* () {
          yield* read_lock(kvm.mmu_lock);
          yield* rcu_read_lock();
          yield* for_each_tdp_pte(new TdpIter(kvm), root, 5, 6, function* (it) {
            if (it.level === 1) yield* tdp_mmu_zap_spte_atomic(kvm, it);
          });
          yield* rcu_read_unlock();
          yield* read_unlock(kvm.mmu_lock);
        })(),
      );
      spawn(
        "rogue",
        (function* () {
          yield* WRITE_ONCE(sptep, leaf);
        })(),
      );
    };
    const kinds = new Set<string>();
    exploreSleepSets(program, {}, (r) => {
      for (const v of r.violations) kinds.add(v.invariant);
    });
    expect(kinds).toContain("inv16-frozen-spte");
  });

  it("inv 16: a removed table whose children were not frozen is caught when freed", () => {
    const noFreeze = new Map<string, Function>([
      [
        "handle_removed_pt",
        function* (_orig: unknown, kvm: Kvm, sp: KvmMmuPage): Gen<void> {
          yield* tdp_mmu_unlink_sp(kvm, sp);
          yield* call_rcu(sp.rcu_head, () => tdp_mmu_free_sp_rcu_callback(sp, kvm));
        },
      ],
    ]);
    const program = one(function* (kvm, root) {
      yield* read_lock(kvm.mmu_lock);
      yield* tdp_mmu_zap_root(kvm, root, true);
      yield* read_unlock(kvm.mmu_lock);
    });
    const r = runProgram(program, { scheduler: new RoundRobinScheduler(), overrides: noFreeze });
    expect(r.violations[0]?.invariant).toBe("inv16-frozen-before-free");
  });

  it("inv 18: writing through an iterator after a yield is caught", () => {
    const program = one(function* (kvm, root) {
      // As dirty logging write-protects: slots_lock held, so the flush may wait until it is released.
      yield* mutex_lock(kvm.slots_lock);
      yield* read_lock(kvm.mmu_lock);
      yield* rcu_read_lock();
      const iter = new TdpIter(kvm);
      yield* for_each_tdp_pte(iter, root, 0, 16, function* (it) {
        // Bug: the result of the yield check is ignored and the stale SPTE written.
        yield* tdp_mmu_iter_cond_resched(kvm, it, false, true);
        if (it.level === 1 && is_writable_pte(it.old_spte)) {
          yield* tdp_mmu_set_spte_atomic(kvm, it, it.old_spte - 2 ** SPTE_BIT.writable);
        }
      });
      yield* rcu_read_unlock();
      yield* read_unlock(kvm.mmu_lock);
    }, "always");
    const r = runProgram(program, { scheduler: new RoundRobinScheduler() });
    expect(r.violations[0]?.invariant).toBe("inv18-no-stale-iterator");
  });

  it("the checks stay quiet on correct code", () => {
    const program = one(function* (kvm, root) {
      yield* read_lock(kvm.mmu_lock);
      yield* tdp_mmu_zap_root(kvm, root, true);
      yield* read_unlock(kvm.mmu_lock);
    }, "always");
    const r = runProgram(program, { scheduler: new RoundRobinScheduler() });
    expect(r.violations).toEqual([]);
  });
});
