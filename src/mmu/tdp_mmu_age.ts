import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { lockdep_assert_held_write } from "../kernel/lockdep.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { is_accessed_spte, SPTE_BIT } from "./spte.js";
import { TdpIter, tdp_root_for_each_leaf_pte } from "./tdp_iter.js";
import { tdp_mmu_clear_spte_bits, tdp_mmu_clear_spte_bits_atomic } from "./tdp_mmu_spte.js";
import type { Kvm, KvmMmuPage } from "./types.js";

/** shadow_accessed_mask with EPT A/D bits (the model does not run with A/D disabled). */
export const SHADOW_ACCESSED_MASK = 2 ** SPTE_BIT.accessed;

/**
 * age_gfn_range() (tdp_mmu.c, v6.6-6.14): mark one young leaf old by clearing
 * its A bit, under the write mmu_lock; atomically if the CPU may be setting
 * A/D bits concurrently. Returns whether it was young.
 */
export const age_gfn_range = modelFn("age_gfn_range", function* (iter: TdpIter): Gen<boolean> {
  if (!is_accessed_spte(iter.old_spte)) return false;
  iter.old_spte = yield* tdp_mmu_clear_spte_bits(iter.sptep, iter.old_spte, SHADOW_ACCESSED_MASK, iter.level);
  return true;
});

/** test_age_gfn() (tdp_mmu.c, ≤ 6.14): whether a leaf is young; changes nothing. */
export function test_age_gfn(iter: TdpIter): boolean {
  return is_accessed_spte(iter.old_spte);
}

/**
 * kvm_tdp_mmu_age_spte() (tdp_mmu.c, v6.15 b146a9b34aed): without mmu_lock,
 * clear A with one atomic AND, so that a D bit set by the CPU meanwhile is kept.
 */
export const kvm_tdp_mmu_age_spte = modelFn("kvm_tdp_mmu_age_spte", function* (iter: TdpIter): Gen<void> {
  iter.old_spte = yield* tdp_mmu_clear_spte_bits_atomic(iter.sptep, SHADOW_ACCESSED_MASK);
});

/**
 * The per-root body of kvm_tdp_mmu_handle_gfn() (tdp_mmu.c, ≤ 6.14): the caller
 * walks the roots with for_each_tdp_mmu_root under the write mmu_lock; each
 * root is walked inside its own RCU section, visiting every young leaf in
 * [start, end) (test-only visits them all too). Returns whether any was young.
 */
export const kvm_tdp_mmu_handle_gfn = modelFn(
  "kvm_tdp_mmu_handle_gfn",
  function* (kvm: Kvm, root: KvmMmuPage, start: number, end: number, test_only: boolean): Gen<boolean> {
    lockdep_assert_held_write(kvm.mmu_lock);
    let ret = false;
    const iter = new TdpIter(kvm);
    yield* rcu_read_lock();
    yield* tdp_root_for_each_leaf_pte(iter, root, start, end, function* () {
      if (test_only) ret = test_age_gfn(iter) || ret;
      else ret = (yield* age_gfn_range(iter)) || ret;
      return undefined;
    });
    yield* rcu_read_unlock();
    return ret;
  },
);

/**
 * The per-root body of __kvm_tdp_mmu_age_gfn_range() (tdp_mmu.c, v6.15): no
 * mmu_lock at all; the caller holds RCU (guard(rcu)) around its
 * for_each_tdp_mmu_root_rcu walk, which is what keeps the root and every table
 * reachable from it alive. A failed update is ignored. Test-only stops at the
 * first young leaf, and the caller must then stop walking roots too.
 */
export const __kvm_tdp_mmu_age_gfn_range = modelFn(
  "__kvm_tdp_mmu_age_gfn_range",
  function* (kvm: Kvm, root: KvmMmuPage, start: number, end: number, test_only: boolean): Gen<boolean> {
    let ret = false;
    const iter = new TdpIter(kvm);
    yield* tdp_root_for_each_leaf_pte(iter, root, start, end, function* () {
      if (!is_accessed_spte(iter.old_spte)) return undefined;
      ret = true;
      if (test_only) return "break";
      yield* kvm_tdp_mmu_age_spte(iter);
      return undefined;
    });
    return ret;
  },
);

/**
 * Age (or, with test_only, test) the leaves of one root mapping [start, end):
 * the per-root part of the mmu_notifier clear_young/test_young handlers, in the
 * era features.locklessAging selects. There is no kernel function of this name;
 * the labelled model functions underneath are the kernel's (see above).
 */
export function* kvm_tdp_mmu_age_root(
  kvm: Kvm,
  root: KvmMmuPage,
  start: number,
  end: number,
  test_only: boolean,
): Gen<boolean> {
  if (kvm.features.locklessAging) return yield* __kvm_tdp_mmu_age_gfn_range(kvm, root, start, end, test_only);
  return yield* kvm_tdp_mmu_handle_gfn(kvm, root, start, end, test_only);
}
