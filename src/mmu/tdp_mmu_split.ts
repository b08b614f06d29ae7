import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { read_lock, read_unlock, write_lock, write_unlock } from "../kernel/rwlock.js";
import { is_large_pte, is_shadow_present_pte } from "./spte.js";
import { for_each_tdp_pte_min_level, PG_LEVEL_4K, TdpIter } from "./tdp_iter.js";
import { for_each_valid_tdp_mmu_root_yield_safe } from "./tdp_mmu_iter_roots.js";
import {
  kvm_lockdep_assert_mmu_lock_held,
  tdp_mmu_free_sp,
  tdp_mmu_init_child_sp,
  tdp_mmu_split_huge_page,
} from "./tdp_mmu_spte.js";
import { tdp_mmu_iter_cond_resched } from "./tdp_mmu_zap.js";
import type { Kvm, KvmMmuPage, Memslot } from "./types.js";

/** -ENOMEM. */
export const ENOMEM = -12;

/**
 * A page table allocated for a split before the walk knows where it goes. The kernel allocates a
 * bare header and page (tdp_mmu_alloc_sp_for_split) and fills in role, gfn and parent SPTE with
 * tdp_mmu_init_child_sp() at the SPTE being split; the model's headers carry those from birth, so
 * the grant records that the allocation happened (with mmu_lock dropped) and the header is made
 * at the SPTE. A header made for one SPTE is reused only there; elsewhere it is freed unseen.
 */
interface SplitAlloc {
  sp: KvmMmuPage | null;
}

/**
 * tdp_mmu_alloc_sp_for_split() (tdp_mmu.c, v6.x): a page header and a zeroed page table with
 * GFP_KERNEL_ACCOUNT, which may sleep: the caller has dropped mmu_lock and left RCU. The model
 * never fails the allocation (no fault injection), so -ENOMEM is never returned.
 */
export function tdp_mmu_alloc_sp_for_split(): SplitAlloc {
  // Nothing shared is touched; the simulator prices the page where the model makes the header
  // (tdp_mmu_alloc_sp), under mmu_lock, which overstates hold times by one allocation per split.
  return { sp: null };
}

/** tdp_mmu_init_child_sp() on the grant: the header for the SPTE the iterator is on. */
function* childFor(kvm: Kvm, iter: TdpIter, a: SplitAlloc): Gen<KvmMmuPage> {
  const held = a.sp;
  if (held !== null && held.ptep === iter.sptep && held.level === iter.level - 1 && held.gfn === iter.gfn)
    return held;
  if (held !== null) yield* tdp_mmu_free_sp(held, kvm);
  a.sp = tdp_mmu_init_child_sp(kvm, iter);
  return a.sp;
}

/**
 * tdp_mmu_split_huge_pages_root() (tdp_mmu.c, v5.18+, eager page splitting): walk [start, end) of `root`
 * pre-order, splitting every huge SPTE above target_level one level down; the walk then visits the
 * new children, so a 1G page ends as 4K pages. The page table comes from outside mmu_lock: the walk
 * drops the lock (and RCU) to allocate, retakes it and restarts from the root (iter.yielded), since
 * anything may have changed meanwhile. A split that loses its cmpxchg (a vCPU's fault, a zap, the
 * NX recovery) retries on the SPTE's new value. A table left over when the walk ends (its SPTE was
 * split or zapped by someone else) was never visible and is freed at once.
 */
export const tdp_mmu_split_huge_pages_root = modelFn(
  "tdp_mmu_split_huge_pages_root",
  function* (
    kvm: Kvm,
    root: KvmMmuPage,
    start: number,
    end: number,
    target_level: number,
    shared: boolean,
  ): Gen<number> {
    let alloc: SplitAlloc | null = null;
    const iter = new TdpIter(kvm);
    yield* rcu_read_lock();
    yield* for_each_tdp_pte_min_level(iter, root, target_level + 1, start, end, function* () {
      for (;;) {
        if (yield* tdp_mmu_iter_cond_resched(kvm, iter, false, shared)) return undefined;
        if (!is_shadow_present_pte(iter.old_spte) || !is_large_pte(iter.old_spte)) return undefined;
        if (alloc === null) {
          yield* rcu_read_unlock();
          if (shared) yield* read_unlock(kvm.mmu_lock);
          else yield* write_unlock(kvm.mmu_lock);
          alloc = tdp_mmu_alloc_sp_for_split();
          if (shared) yield* read_lock(kvm.mmu_lock);
          else yield* write_lock(kvm.mmu_lock);
          yield* rcu_read_lock();
          // The SPTE read before the lock was dropped means nothing now: restart from the root.
          iter.yielded = true;
          return undefined;
        }
        const sp = yield* childFor(kvm, iter, alloc);
        // A lost cmpxchg refreshed iter.old_spte: look at the SPTE again (the kernel's `goto retry`).
        if ((yield* tdp_mmu_split_huge_page(kvm, iter, sp, shared)) !== 0) continue;
        alloc = null;
        return undefined;
      }
    });
    yield* rcu_read_unlock();
    const left = (alloc as SplitAlloc | null)?.sp ?? null;
    if (left !== null) yield* tdp_mmu_free_sp(left, kvm);
    return 0;
  },
);

/**
 * kvm_tdp_mmu_try_split_huge_pages() (tdp_mmu.c, v5.18+): split the huge pages of [start, end) of
 * the slot down to target_level in every valid root of the slot's address space, with mmu_lock held
 * as `shared` says. Stops at the first root that fails (only -ENOMEM can), dropping its reference.
 */
export const kvm_tdp_mmu_try_split_huge_pages = modelFn(
  "kvm_tdp_mmu_try_split_huge_pages",
  function* (
    kvm: Kvm,
    slot: Memslot,
    start: number,
    end: number,
    target_level: number,
    shared: boolean,
  ): Gen<void> {
    kvm_lockdep_assert_mmu_lock_held(kvm, shared);
    yield* for_each_valid_tdp_mmu_root_yield_safe(kvm, slot.as_id, shared, function* (root) {
      const r = yield* tdp_mmu_split_huge_pages_root(kvm, root, start, end, target_level, shared);
      return r !== 0 ? "break" : undefined;
    });
  },
);

/**
 * kvm_mmu_slot_try_split_huge_pages() (mmu.c, v5.18+), TDP MMU part: split the whole slot down to
 * target_level under the read mmu_lock. No flush: the children keep the huge SPTE's Writable and
 * Dirty bits, so the write-protection or dirty clearing that follows sees them and flushes.
 */
export const kvm_mmu_slot_try_split_huge_pages = modelFn(
  "kvm_mmu_slot_try_split_huge_pages",
  function* (kvm: Kvm, slot: Memslot, target_level: number = PG_LEVEL_4K): Gen<void> {
    yield* read_lock(kvm.mmu_lock);
    yield* kvm_tdp_mmu_try_split_huge_pages(
      kvm,
      slot,
      slot.base_gfn,
      slot.base_gfn + slot.npages,
      target_level,
      true,
    );
    yield* read_unlock(kvm.mmu_lock);
  },
);

/**
 * kvm_mmu_try_split_huge_pages() (mmu.c, v5.18+), TDP MMU part: split [start, end) of the slot down
 * to target_level with mmu_lock already held for write (KVM_CLEAR_DIRTY_LOG holds it).
 */
export const kvm_mmu_try_split_huge_pages = modelFn(
  "kvm_mmu_try_split_huge_pages",
  function* (kvm: Kvm, slot: Memslot, start: number, end: number, target_level: number): Gen<void> {
    yield* kvm_tdp_mmu_try_split_huge_pages(kvm, slot, start, end, target_level, false);
  },
);
