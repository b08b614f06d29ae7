import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { andMask, withBit } from "../kernel/atomic.js";
import { lockdep_assert_held_read } from "../kernel/lockdep.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { read_lock, read_unlock, rwlock_needbreak } from "../kernel/rwlock.js";
import { need_resched } from "../kernel/sched.js";
import { pagesPerHpage } from "./kvm.js";
import { is_last_spte, is_shadow_present_pte, SPTE_BIT } from "./spte.js";
import {
  for_each_tdp_pte_min_level,
  KVM_MAX_HUGEPAGE_LEVEL,
  PG_LEVEL_2M,
  spte_to_child_pt,
  TdpIter,
  tdp_root_for_each_leaf_pte,
} from "./tdp_iter.js";
import { for_each_valid_tdp_mmu_root_yield_safe } from "./tdp_mmu_iter_roots.js";
import { KVM_MEM_LOG_DIRTY_PAGES, kvm_mmu_max_mapping_level } from "./tdp_mmu_map.js";
import { tdp_mmu_set_spte_atomic, tdp_mmu_zap_spte_atomic } from "./tdp_mmu_spte.js";
import { tdp_mmu_iter_cond_resched } from "./tdp_mmu_zap.js";
import { kvm_flush_remote_tlbs_range } from "./tlb.js";
import type { Kvm, KvmMmuPage, Memslot } from "./types.js";

/** -EAGAIN and -ENOENT, as tdp_mmu_make_huge_spte() returns them. */
const EAGAIN = -11;
const ENOENT = -2;

/** The SPTE's pfn field (bits 12..49), as a mask. */
const PFN_FIELD = (2 ** 38 - 1) * 2 ** 12;

/**
 * The part of the walk that yields: the table SPTEs of [start, end) that could map huge. Shared by
 * the zapping (6.1-6.12) and the in-place (6.13+) recovery; each gives `act`, which returns true to
 * look at the same SPTE again (its cmpxchg lost, or it must yield first: the kernel's `goto retry`).
 */
function* for_each_collapsible_table(
  kvm: Kvm,
  root: KvmMmuPage,
  slot: Memslot,
  st: { flush: boolean },
  act: (iter: TdpIter) => Gen<boolean>,
): Gen<void> {
  const start = slot.base_gfn;
  const end = start + slot.npages;
  const iter = new TdpIter(kvm);
  yield* for_each_tdp_pte_min_level(iter, root, PG_LEVEL_2M, start, end, function* () {
    for (;;) {
      if (yield* tdp_mmu_iter_cond_resched(kvm, iter, st.flush, true)) {
        // It flushed before letting go of the lock, if asked to.
        st.flush = false;
        return undefined;
      }
      if (iter.level > KVM_MAX_HUGEPAGE_LEVEL || !is_shadow_present_pte(iter.old_spte)) return undefined;
      // A leaf that could be huger would have been handled at its parent: the walk never got here.
      if (is_last_spte(iter.old_spte, iter.level)) return undefined;
      // A huge page that overlaps the slot's edges can never be mapped huge.
      if (iter.gfn < start || iter.gfn >= end) return undefined;
      if (kvm_mmu_max_mapping_level(kvm, slot, iter.gfn, KVM_MAX_HUGEPAGE_LEVEL) < iter.level)
        return undefined;
      if (!(yield* act(iter))) return undefined;
    }
  });
}

/**
 * zap_collapsible_spte_range() (tdp_mmu.c, v6.1-6.12, top-down since 6.1): zap, under the read lock,
 * every page table of the slot that could be replaced by a huge leaf; vCPUs refault the range huge.
 * tdp_mmu_zap_spte_atomic() flushes on success.
 */
export const zap_collapsible_spte_range = modelFn(
  "zap_collapsible_spte_range",
  function* (kvm: Kvm, root: KvmMmuPage, slot: Memslot): Gen<void> {
    yield* rcu_read_lock();
    yield* for_each_collapsible_table(kvm, root, slot, { flush: false }, function* (iter) {
      return (yield* tdp_mmu_zap_spte_atomic(kvm, iter)) !== 0;
    });
    yield* rcu_read_unlock();
  },
);

/** The per-root part, run with the read lock held over every valid root of the slot's address space. */
function* for_each_root_of_slot(
  kvm: Kvm,
  slot: Memslot,
  range: (kvm: Kvm, root: KvmMmuPage, slot: Memslot) => Gen<void>,
): Gen<void> {
  lockdep_assert_held_read(kvm.mmu_lock);
  yield* for_each_valid_tdp_mmu_root_yield_safe(kvm, slot.as_id, true, function* (root) {
    yield* range(kvm, root, slot);
    return undefined;
  });
}

/** kvm_tdp_mmu_zap_collapsible_sptes() (tdp_mmu.c, up to 6.12): every valid root of the slot's address space. */
export const kvm_tdp_mmu_zap_collapsible_sptes = modelFn(
  "kvm_tdp_mmu_zap_collapsible_sptes",
  function* (kvm: Kvm, slot: Memslot): Gen<void> {
    yield* for_each_root_of_slot(kvm, slot, zap_collapsible_spte_range);
  },
);

/**
 * make_huge_spte() (spte.c, v6.13): the huge leaf at `level` that a present small leaf belongs to:
 * its permissions and A/D bits, the page-size bit, and the pfn aligned down to the huge page. (With
 * the NX huge page mitigation the kernel also clears Execute; the model has no mitigation.)
 */
export function make_huge_spte(kvm: Kvm, small_spte: number, level: number): number {
  const n = pagesPerHpage(kvm.geometry, level);
  const pfn = Math.floor(andMask(small_spte, PFN_FIELD) / 2 ** 12);
  const aligned = pfn - (pfn % n);
  return withBit(small_spte - (pfn - aligned) * 2 ** 12, SPTE_BIT.huge, true);
}

/**
 * tdp_mmu_iter_need_resched() (tdp_mmu.c, v6.13): would tdp_mmu_iter_cond_resched() yield here?
 * Only after progress since the last yield, as that one requires.
 */
function* tdp_mmu_iter_need_resched(kvm: Kvm, iter: TdpIter): Gen<boolean> {
  if (iter.next_last_level_gfn === iter.yielded_gfn) return false;
  return (yield* need_resched()) || (yield* rwlock_needbreak(kvm.mmu_lock));
}

/**
 * tdp_mmu_make_huge_spte() (tdp_mmu.c, v6.13): the huge SPTE to put in place of the table
 * `parent` points at, built from the first present leaf below it; EAGAIN if the walk should yield
 * first (judged on the parent iterator, so it keeps making progress), ENOENT if nothing is mapped.
 */
export const tdp_mmu_make_huge_spte = modelFn(
  "tdp_mmu_make_huge_spte",
  function* (kvm: Kvm, parent: TdpIter): Gen<{ r: number; spte: number }> {
    const table = spte_to_child_pt(kvm, parent.old_spte, parent.level)!;
    const start = parent.gfn;
    const end = start + pagesPerHpage(kvm.geometry, parent.level);
    const out = { r: ENOENT, spte: 0 };
    const iter = new TdpIter(kvm);
    yield* tdp_root_for_each_leaf_pte(iter, table, start, end, function* () {
      if (yield* tdp_mmu_iter_need_resched(kvm, parent)) out.r = EAGAIN;
      else {
        out.r = 0;
        out.spte = make_huge_spte(kvm, iter.old_spte, parent.level);
      }
      return "break";
    });
    return out;
  },
);

/**
 * recover_huge_pages_range() (tdp_mmu.c, v6.13, in-place huge page recovery): under the read lock, replace every
 * page table of the slot that could map huge by a huge leaf, with cmpxchg; the replaced table is
 * torn down by handle_removed_pt() and freed after a grace period. One flush of the slot before
 * leaving RCU and the lock (or before yielding): vCPUs may still use the small translations and
 * the paging-structure caches may still point into the old table.
 */
export const recover_huge_pages_range = modelFn(
  "recover_huge_pages_range",
  function* (kvm: Kvm, root: KvmMmuPage, slot: Memslot): Gen<void> {
    // Dirty logging was enabled again meanwhile (slots_lock is not held here): its pages stay small.
    if ((slot.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0) return;
    const st = { flush: false };
    yield* rcu_read_lock();
    yield* for_each_collapsible_table(kvm, root, slot, st, function* (iter) {
      const h = yield* tdp_mmu_make_huge_spte(kvm, iter);
      if (h.r === EAGAIN) return true;
      if (h.r !== 0) return false;
      if ((yield* tdp_mmu_set_spte_atomic(kvm, iter, h.spte)) !== 0) return true;
      st.flush = true;
      return false;
    });
    if (st.flush) yield* kvm_flush_remote_tlbs_range(kvm, slot.base_gfn, slot.npages);
    yield* rcu_read_unlock();
  },
);

/** kvm_tdp_mmu_recover_huge_pages() (tdp_mmu.c, v6.13): every valid root of the slot's address space. */
export const kvm_tdp_mmu_recover_huge_pages = modelFn(
  "kvm_tdp_mmu_recover_huge_pages",
  function* (kvm: Kvm, slot: Memslot): Gen<void> {
    yield* for_each_root_of_slot(kvm, slot, recover_huge_pages_range);
  },
);

/**
 * kvm_mmu_recover_huge_pages() (mmu.c, v6.13; kvm_mmu_zap_collapsible_sptes() before), TDP MMU
 * part, called when dirty logging is disabled: under the read lock, recover in place
 * (features.hugePageRecoveryInPlace) or zap what could be huge.
 */
export const kvm_mmu_recover_huge_pages = modelFn(
  "kvm_mmu_recover_huge_pages",
  function* (kvm: Kvm, slot: Memslot): Gen<void> {
    yield* read_lock(kvm.mmu_lock);
    if (kvm.features.hugePageRecoveryInPlace) yield* kvm_tdp_mmu_recover_huge_pages(kvm, slot);
    else yield* kvm_tdp_mmu_zap_collapsible_sptes(kvm, slot);
    yield* read_unlock(kvm.mmu_lock);
  },
);
