import { describe, expect, it } from "vitest";
import type { Gen } from "../engine/op.js";
import type { Program, RunResult } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { read_lock, read_unlock, write_lock, write_unlock } from "../kernel/rwlock.js";
import { FROZEN_SPTE, make_leaf_spte } from "./spte.js";
import { for_each_tdp_pte_min_level, TdpIter } from "./tdp_iter.js";
import { kvm_tdp_mmu_page_fault, type RetPf } from "./tdp_mmu_map.js";
import { tdp_mmu_iter_set_spte, tdp_mmu_set_spte, tdp_mmu_zap_spte_atomic } from "./tdp_mmu_spte.js";
import { exploreSleepSets, makeRoot, makeVcpu, makeVm, peekLeaves, populate, tablePages } from "./testing.js";
import type { Kvm, KvmMmuPage } from "./types.js";

const quiet = { needResched: "never", preemption: "none" } as const;

function one(body: (kvm: Kvm, root: KvmMmuPage) => Gen<void>, record = false): { r: RunResult; kvm: Kvm } {
  let kvm: Kvm | null = null;
  const program: Program = ({ spawn }) => {
    const k = makeVm({ ptes: 2, machine: quiet });
    kvm = k;
    const root = makeRoot(k, 1);
    populate(k, root, 5, 1);
    populate(k, root, 8, 3);
    spawn("t", body(k, root));
  };
  const r = runProgram(program, { scheduler: new RoundRobinScheduler(), record });
  return { r, kvm: kvm! };
}

/** Run `fn` with the iterator on the SPTE mapping gfn at `level`. */
function* at(
  kvm: Kvm,
  root: KvmMmuPage,
  gfn: number,
  level: number,
  fn: (it: TdpIter) => Gen<void>,
): Gen<void> {
  yield* rcu_read_lock();
  yield* for_each_tdp_pte_min_level(new TdpIter(kvm), root, level, gfn, gfn + 1, function* (it) {
    if (it.level === level) {
      yield* fn(it);
      return "break";
    }
    return undefined;
  });
  yield* rcu_read_unlock();
}

describe("SPTE setters", () => {
  it("a present leaf replaced by one for another pfn is a BUG (handle_changed_spte)", () => {
    const { r } = one(function* (kvm, root) {
      yield* write_lock(kvm.mmu_lock);
      yield* at(kvm, root, 5, 1, function* (it) {
        yield* tdp_mmu_iter_set_spte(kvm, it, make_leaf_spte({ pfn: 7, level: 1, writable: true }));
      });
      yield* write_unlock(kvm.mmu_lock);
    });
    expect(r.violations[0]?.invariant).toBe("BUG");
  });

  it("tdp_mmu_set_spte WARNs on the frozen value and needs the write lock", () => {
    const { r } = one(function* (kvm, root) {
      yield* write_lock(kvm.mmu_lock);
      yield* at(kvm, root, 5, 1, function* (it) {
        yield* tdp_mmu_set_spte(kvm, it.as_id, it.sptep, it.old_spte, FROZEN_SPTE, it.gfn, it.level);
      });
      yield* write_unlock(kvm.mmu_lock);
    });
    expect(r.violations[0]?.message).toContain("frozen SPTE in tdp_mmu_set_spte");
    const { r: r2 } = one(function* (kvm, root) {
      yield* read_lock(kvm.mmu_lock);
      yield* at(kvm, root, 5, 1, function* (it) {
        yield* tdp_mmu_iter_set_spte(kvm, it, 0);
      });
      yield* read_unlock(kvm.mmu_lock);
    });
    expect(r2.violations[0]?.invariant).toBe("lockdep");
  });

  it("tdp_mmu_zap_spte_atomic freezes, flushes, clears, then tears the subtree down", () => {
    const { r, kvm } = one(function* (kvm, root) {
      yield* read_lock(kvm.mmu_lock);
      yield* at(kvm, root, 5, 3, function* (it) {
        yield* tdp_mmu_zap_spte_atomic(kvm, it);
      });
      yield* read_unlock(kvm.mmu_lock);
    }, true);
    expect(r.violations).toEqual([]);
    const steps = r.trace!.filter((s) => s.fn !== "rcu_do_batch");
    const i = steps.findIndex((s) => s.fn === "__tdp_mmu_set_spte_atomic");
    expect(steps.slice(i, i + 3).map((s) => `${s.fn}:${s.step}`)).toEqual([
      "__tdp_mmu_set_spte_atomic:try_cmpxchg",
      "kvm_flush_remote_tlbs_range:atomic_fetch_add",
      "tdp_mmu_zap_spte_atomic:WRITE_ONCE",
    ]);
    expect(steps[i + 3].fn).toBe("tdp_mmu_unlink_sp");
    expect(tablePages(kvm).map((p) => p.level)).toEqual([3, 3]);
    expect(peekLeaves(kvm, kvm.pages.get(1)!).map(([g]) => g)).toEqual([8]);
  });

  it("a fault meeting a frozen SPTE retries; no violation in any schedule", () => {
    let rets: RetPf[] = [];
    const program: Program = ({ spawn }) => {
      const kvm = makeVm({ ptes: 2, machine: quiet });
      const root = makeRoot(kvm, 2);
      populate(kvm, root, 5, 1);
      const v = makeVcpu(kvm, root);
      const mine: RetPf[] = [];
      rets = mine;
      spawn(
        "vcpu",
        (function* () {
          mine.push(yield* kvm_tdp_mmu_page_fault(v, 4, true, { maxLevel: 1 }));
        })(),
      );
      spawn(
        "collapse",
        (function* () {
          yield* read_lock(kvm.mmu_lock);
          yield* at(kvm, root, 5, 2, function* (it) {
            while ((yield* tdp_mmu_zap_spte_atomic(kvm, it)) !== 0) {}
          });
          yield* read_unlock(kvm.mmu_lock);
        })(),
      );
    };
    const seen = new Set<string>();
    let bad = 0;
    const res = exploreSleepSets(program, {}, (r) => {
      if (r.violations.length > 0) bad++;
      seen.add(rets[0]);
    });
    expect(bad).toBe(0);
    expect(res.complete).toBe(true);
    expect([...seen].sort()).toEqual(["RET_PF_FIXED", "RET_PF_RETRY"]);
  });
});
