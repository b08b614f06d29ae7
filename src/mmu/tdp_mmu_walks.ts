import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { lockdep_assert_held_read, lockdep_assert_held_write } from "../kernel/lockdep.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { WARN_ON } from "../kernel/warn.js";
import { kvm_tdp_mmu_age_root } from "./tdp_mmu_age.js";
import { clear_dirty_gfn_range, clear_dirty_pt_masked, wrprot_gfn_range } from "./tdp_mmu_dirty.js";
import {
  __for_each_tdp_mmu_root,
  __for_each_tdp_mmu_root_yield_safe,
  for_each_tdp_mmu_root_rcu,
  for_each_valid_tdp_mmu_root,
  for_each_valid_tdp_mmu_root_yield_safe,
  KVM_ALL_ROOTS,
  KVM_DIRECT_ROOTS,
  KVM_INVALID_ROOTS,
  KVM_VALID_ROOTS,
} from "./tdp_mmu_iter_roots.js";
import { tdp_mmu_zap_leafs } from "./tdp_mmu_zap.js";
import type { Kvm, Memslot } from "./types.js";

/**
 * The TDP MMU's entry points that apply one per-root operation to many roots:
 * what each walks (valid roots, or invalid ones too), under which lock, and
 * whether it may yield. The per-root bodies live with the SPTE code.
 */

/** struct kvm_gfn_range (kvm_host.h): a gfn range inside one memslot, and whether the caller may block. */
export interface KvmGfnRange {
  readonly slot: Memslot;
  readonly start: number;
  readonly end: number;
  readonly may_block: boolean;
}

/**
 * kvm_tdp_mmu_unmap_gfn_range() (tdp_mmu.c): the mmu_notifier unmap, with mmu_lock held for write.
 * Zaps the range's leaves in the slot's address space in valid *and* invalid roots since
 * d62007edf01f (5.16-rc, features.unmapZapsInvalidRoots): an invalidated root that is not zapped
 * yet, or is being zapped by a task that yielded, still maps the pages. 6.14+ keeps invalid roots
 * in the types it walks. Yields (flushing first) only when the notifier may block.
 */
export const kvm_tdp_mmu_unmap_gfn_range = modelFn(
  "kvm_tdp_mmu_unmap_gfn_range",
  function* (kvm: Kvm, range: KvmGfnRange, flush: boolean): Gen<boolean> {
    const f = kvm.features;
    let types = f.unmapZapsInvalidRoots ? KVM_ALL_ROOTS : KVM_VALID_ROOTS;
    if (f.rootTypes) types = KVM_DIRECT_ROOTS | KVM_INVALID_ROOTS;
    yield* __for_each_tdp_mmu_root_yield_safe(kvm, range.slot.as_id, types, false, function* (root) {
      flush = yield* tdp_mmu_zap_leafs(kvm, root, range.start, range.end, range.may_block, flush);
      return undefined;
    });
    return flush;
  },
);

/**
 * kvm_tdp_mmu_zap_leafs() (tdp_mmu.c, 5.18+; __kvm_tdp_mmu_zap_gfn_range before), for
 * kvm_zap_gfn_range(): under the write lock, zap the leaves of [start, end) in every address space,
 * yielding as needed. Invalid roots are skipped from 6.9 (99b85fda91b1): nobody can load them.
 */
export const kvm_tdp_mmu_zap_leafs = modelFn(
  "kvm_tdp_mmu_zap_leafs",
  function* (kvm: Kvm, start: number, end: number, flush: boolean): Gen<boolean> {
    lockdep_assert_held_write(kvm.mmu_lock);
    const types = kvm.features.leafZapSkipsInvalid ? KVM_VALID_ROOTS : KVM_ALL_ROOTS;
    yield* __for_each_tdp_mmu_root_yield_safe(kvm, -1, types, false, function* (root) {
      flush = yield* tdp_mmu_zap_leafs(kvm, root, start, end, true, flush);
      return undefined;
    });
    return flush;
  },
);

/**
 * The aging walk over roots (kvm_tdp_mmu_handle_gfn() to 6.14, __kvm_tdp_mmu_age_gfn_range() in
 * 6.15):
 * - to 6.14 the notifier holds mmu_lock for write: for_each_tdp_mmu_root (no references, no
 *   yield), RCU around each root's walk; invalid roots are skipped from 6.13 (526e609f0567);
 * - 6.15 (b146a9b34aed, features.locklessAging): no mmu_lock at all; one RCU section around
 *   for_each_tdp_mmu_root_rcu over valid roots; test_young stops at the first young SPTE.
 */
function* tdp_mmu_age_roots(kvm: Kvm, range: KvmGfnRange, test_only: boolean): Gen<boolean> {
  const f = kvm.features;
  const types = f.agingSkipsInvalidRoots ? KVM_VALID_ROOTS : KVM_ALL_ROOTS;
  let young = false;
  if (f.locklessAging) {
    // 6.15 walks valid roots only: this walk must never be what unmaps anything.
    WARN_ON((types & ~KVM_VALID_ROOTS) !== 0, "types & ~KVM_VALID_ROOTS");
    yield* rcu_read_lock();
    yield* for_each_tdp_mmu_root_rcu(kvm, range.slot.as_id, types, function* (root) {
      if (yield* kvm_tdp_mmu_age_root(kvm, root, range.start, range.end, test_only)) {
        young = true;
        if (test_only) return "break";
      }
      return undefined;
    });
    yield* rcu_read_unlock();
    return young;
  }
  // The per-root body enters RCU for its own walk.
  yield* __for_each_tdp_mmu_root(kvm, range.slot.as_id, types, function* (root) {
    young = (yield* kvm_tdp_mmu_age_root(kvm, root, range.start, range.end, test_only)) || young;
    return undefined;
  });
  return young;
}

/** kvm_tdp_mmu_age_gfn_range() (tdp_mmu.c): clear the Accessed state of [start, end); true if any was young. */
export const kvm_tdp_mmu_age_gfn_range = modelFn(
  "kvm_tdp_mmu_age_gfn_range",
  function* (kvm: Kvm, range: KvmGfnRange): Gen<boolean> {
    return yield* tdp_mmu_age_roots(kvm, range, false);
  },
);

/** kvm_tdp_mmu_test_age_gfn() (tdp_mmu.c): whether any SPTE of [start, end) is young; changes nothing. */
export const kvm_tdp_mmu_test_age_gfn = modelFn(
  "kvm_tdp_mmu_test_age_gfn",
  function* (kvm: Kvm, range: KvmGfnRange): Gen<boolean> {
    return yield* tdp_mmu_age_roots(kvm, range, true);
  },
);

/**
 * kvm_tdp_mmu_wrprot_slot() (tdp_mmu.c): with the read lock held, write-protect the leaves of the
 * slot at or above min_level in every valid root of its address space (yield-safe walk). Returns
 * whether anything changed (the caller flushes).
 */
export const kvm_tdp_mmu_wrprot_slot = modelFn(
  "kvm_tdp_mmu_wrprot_slot",
  function* (kvm: Kvm, slot: Memslot, min_level: number): Gen<boolean> {
    lockdep_assert_held_read(kvm.mmu_lock);
    let spte_set = false;
    yield* for_each_valid_tdp_mmu_root_yield_safe(kvm, slot.as_id, true, function* (root) {
      const set = yield* wrprot_gfn_range(kvm, root, slot.base_gfn, slot.base_gfn + slot.npages, min_level);
      spte_set = set || spte_set;
      return undefined;
    });
    return spte_set;
  },
);

/**
 * kvm_tdp_mmu_clear_dirty_slot() (tdp_mmu.c): with the read lock held, clear the dirty state of
 * every leaf of the slot in every valid root of its address space. Returns whether anything changed.
 */
export const kvm_tdp_mmu_clear_dirty_slot = modelFn(
  "kvm_tdp_mmu_clear_dirty_slot",
  function* (kvm: Kvm, slot: Memslot): Gen<boolean> {
    lockdep_assert_held_read(kvm.mmu_lock);
    let spte_set = false;
    yield* for_each_valid_tdp_mmu_root_yield_safe(kvm, slot.as_id, true, function* (root) {
      const set = yield* clear_dirty_gfn_range(kvm, root, slot.base_gfn, slot.base_gfn + slot.npages);
      spte_set = set || spte_set;
      return undefined;
    });
    return spte_set;
  },
);

/**
 * kvm_tdp_mmu_clear_dirty_pt_masked() (tdp_mmu.c, v6.x): with the write lock held, clear D (or, with
 * `wrprot`, W) on the 4K leaves of gfn + i for each bit i of `mask`, in every valid root of the
 * slot's address space. For KVM_GET/CLEAR_DIRTY_LOG.
 */
export const kvm_tdp_mmu_clear_dirty_pt_masked = modelFn(
  "kvm_tdp_mmu_clear_dirty_pt_masked",
  function* (kvm: Kvm, slot: Memslot, gfn: number, mask: bigint, wrprot: boolean): Gen<void> {
    lockdep_assert_held_write(kvm.mmu_lock);
    yield* for_each_valid_tdp_mmu_root(kvm, slot.as_id, function* (root) {
      yield* clear_dirty_pt_masked(kvm, root, gfn, mask, wrprot);
      return undefined;
    });
  },
);
