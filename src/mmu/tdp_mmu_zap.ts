import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { lockdep_assert_held_write } from "../kernel/lockdep.js";
import { machine } from "../kernel/machine.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { refcount_read } from "../kernel/refcount.js";
import { cond_resched_rwlock_read, cond_resched_rwlock_write, rwlock_needbreak } from "../kernel/rwlock.js";
import { need_resched } from "../kernel/sched.js";
import { WARN_ON_ONCE } from "../kernel/warn.js";
import { note_yield_point, unmetered_walk } from "./invariants/bounded_hold.js";
import { check_yield_progress } from "./invariants/roots.js";
import { kvm_mmu_max_gfn, pagesPerHpage } from "./kvm.js";
import { roleInvalid } from "./role.js";
import { is_last_spte, is_shadow_present_pte, SHADOW_NONPRESENT_VALUE } from "./spte.js";
import { for_each_tdp_pte_min_level, PG_LEVEL_1G, PG_LEVEL_2M, PG_LEVEL_4K, TdpIter } from "./tdp_iter.js";
import {
  kvm_lockdep_assert_mmu_lock_held,
  preZapOverhaul,
  tdp_mmu_iter_set_spte,
  tdp_mmu_set_spte_atomic,
  tdp_mmu_zap_spte_atomic,
} from "./tdp_mmu_spte.js";
import { kvm_flush_remote_tlbs } from "./tlb.js";
import type { Kvm, KvmMmuPage } from "./types.js";

/**
 * tdp_mmu_max_gfn_exclusive() (tdp_mmu.c, 86931ff7207b, 5.18-rc5; tdp_mmu_max_gfn_host() from the
 * 5.18-rc1 zap overhaul, an inline max_gfn_host in zap_gfn_range() since 524a1e4e381f, 5.14): every
 * zap and walk of a whole root stops at host MAXPHYADDR, which may be short of the page tables'
 * reach. Sound only while nothing maps a gfn past it (spte-beyond-max-gfn).
 */
export function tdp_mmu_max_gfn_exclusive(kvm: Kvm): number {
  return kvm_mmu_max_gfn(kvm) + 1;
}

/**
 * tdp_mmu_iter_cond_resched() (tdp_mmu.c, v5.18+): if the CPU or the lock is
 * wanted, and the walk made progress since its last yield, flush if asked to
 * (before the lock is dropped: nobody else may see the zapped SPTEs unflushed),
 * leave RCU, let the lock go and retake it, re-enter RCU, and mark the iterator
 * yielded so that its next step restarts from the root. Returns whether it yielded.
 */
export const tdp_mmu_iter_cond_resched = modelFn(
  "tdp_mmu_iter_cond_resched",
  function* (kvm: Kvm, iter: TdpIter, flush: boolean, shared: boolean): Gen<boolean> {
    WARN_ON_ONCE(iter.yielded, "iter->yielded");
    note_yield_point();

    // Forward progress: never yield twice at the same place.
    if (iter.next_last_level_gfn === iter.yielded_gfn) return false;

    if ((yield* need_resched()) || (yield* rwlock_needbreak(kvm.mmu_lock))) {
      // L2, checked independently of the guard above: a yield only after a last-level step.
      check_yield_progress(kvm, "tdp_mmu_iter_cond_resched", iter.yielded_gfn, iter.next_last_level_gfn);
      if (flush) yield* kvm_flush_remote_tlbs(kvm);

      yield* rcu_read_unlock();
      if (shared) yield* cond_resched_rwlock_read(kvm.mmu_lock);
      else yield* cond_resched_rwlock_write(kvm.mmu_lock);
      yield* rcu_read_lock();

      WARN_ON_ONCE(iter.gfn > iter.next_last_level_gfn, "iter->gfn > iter->next_last_level_gfn");
      iter.yielded = true;
    }
    return iter.yielded;
  },
);

/**
 * __tdp_mmu_zap_root() (tdp_mmu.c, v5.18+): one pass over the whole root,
 * zapping every present SPTE at `zap_level` (or below, where the walk cannot
 * step down). Zapping a non-leaf tears down its subtree, so the pass level
 * bounds the work done between two yield points.
 */
export const __tdp_mmu_zap_root = modelFn(
  "__tdp_mmu_zap_root",
  function* (kvm: Kvm, root: KvmMmuPage, shared: boolean, zap_level: number): Gen<void> {
    const iter = new TdpIter(kvm);
    const end = tdp_mmu_max_gfn_exclusive(kvm);
    yield* for_each_tdp_pte_min_level(iter, root, zap_level, 0, end, function* () {
      for (;;) {
        if (yield* tdp_mmu_iter_cond_resched(kvm, iter, false, shared)) return undefined;
        if (!is_shadow_present_pte(iter.old_spte)) return undefined;
        if (iter.level > zap_level) return undefined;
        if (!shared) {
          yield* tdp_mmu_iter_set_spte(kvm, iter, SHADOW_NONPRESENT_VALUE);
          return undefined;
        }
        if ((yield* tdp_mmu_set_spte_atomic(kvm, iter, SHADOW_NONPRESENT_VALUE)) === 0) return undefined;
        // Lost a race: iter.old_spte now holds the current value; try again.
      }
    });
  },
);

/**
 * zap_gfn_range() (tdp_mmu.c, 5.13-5.17): zap [start, end) in one root. A full
 * range zaps the top-level entries only (min level = root level), each taking
 * its whole subtree with it; a partial range steps down to 4K and zaps leaves
 * and the tables wholly inside the range. Under the write lock the zaps are
 * plain sets that owe a flush; under the read lock each is frozen and flushed
 * (tdp_mmu_zap_spte_atomic). Returns whether a flush is owed.
 */
export const zap_gfn_range = modelFn(
  "zap_gfn_range",
  function* (
    kvm: Kvm,
    root: KvmMmuPage,
    start: number,
    end: number,
    can_yield: boolean,
    flush: boolean,
    shared: boolean,
  ): Gen<boolean> {
    const max_gfn_host = tdp_mmu_max_gfn_exclusive(kvm);
    const zap_all = start === 0 && end >= max_gfn_host;
    const min_level = zap_all ? root.level : PG_LEVEL_4K;
    end = Math.min(end, max_gfn_host);
    kvm_lockdep_assert_mmu_lock_held(kvm, shared);
    yield* rcu_read_lock();
    const iter = new TdpIter(kvm);
    const walk = for_each_tdp_pte_min_level(iter, root, min_level, start, end, function* () {
      for (;;) {
        if (can_yield && (yield* tdp_mmu_iter_cond_resched(kvm, iter, flush, shared))) {
          flush = false;
          return undefined;
        }
        if (!is_shadow_present_pte(iter.old_spte)) return undefined;
        const n = pagesPerHpage(kvm.geometry, iter.level);
        const partial = iter.gfn < start || iter.gfn + n > end;
        if (!zap_all && partial && !is_last_spte(iter.old_spte, iter.level)) return undefined;
        if (!shared) {
          yield* tdp_mmu_iter_set_spte(kvm, iter, SHADOW_NONPRESENT_VALUE);
          flush = true;
          return undefined;
        }
        if ((yield* tdp_mmu_zap_spte_atomic(kvm, iter)) === 0) return undefined;
      }
    });
    yield* unmetered_walk(can_yield, walk);
    yield* rcu_read_unlock();
    return flush;
  },
);

/**
 * tdp_mmu_zap_root() (tdp_mmu.c, v5.18+; zap_gfn_range(0, -1) before): zap a
 * whole root. The caller must hold a reference, so that mmu_notifiers can still
 * find the root while this yields. Passes per features.zapPasses:
 * - "single" (<= 5.17): zap_gfn_range() over everything, top-level entries only;
 *   no refcount WARN (the 5.17 last put zapped a root whose count was already 0),
 *   and `can_yield` is what the caller passed (false from the last put);
 * - "two-pass" (1b6043e8e584, 5.18): 1G entries, then the top level;
 * - "four-pass" (6.9): 4K, 2M, 1G, top level; with CONFIG_KVM_PROVE_MMU the 4K and
 *   2M passes are skipped on purpose, to exercise zapping whole 1G regions.
 * Zapped roots need no TLB flush (they are invalid, or the VM will not run again);
 * only the "single" shape can report one owed, which it returns.
 */
export const tdp_mmu_zap_root = modelFn(
  "tdp_mmu_zap_root",
  function* (kvm: Kvm, root: KvmMmuPage, shared: boolean, can_yield: boolean = true): Gen<boolean> {
    if (preZapOverhaul(kvm)) {
      return yield* zap_gfn_range(kvm, root, 0, Number.POSITIVE_INFINITY, can_yield, false, shared);
    }
    WARN_ON_ONCE(
      (yield* refcount_read(root.tdp_mmu_root_count)) === 0,
      "!refcount_read(&root->tdp_mmu_root_count)",
    );
    kvm_lockdep_assert_mmu_lock_held(kvm, shared);
    yield* rcu_read_lock();
    const passes: number[] = [];
    if (kvm.features.zapPasses === "four-pass" && !machine().config.proveMmu)
      passes.push(PG_LEVEL_4K, PG_LEVEL_2M); // not with CONFIG_KVM_PROVE_MMU
    passes.push(PG_LEVEL_1G, root.level);
    for (const level of passes) yield* __tdp_mmu_zap_root(kvm, root, shared, level);
    yield* rcu_read_unlock();
    return false;
  },
);

/**
 * tdp_mmu_zap_leafs() (tdp_mmu.c, v5.18+): under the write lock, zap the
 * present leaf SPTEs mapping [start, end). No page table is freed, so callers
 * need not be in RCU. A flush is owed only for valid roots since 99b85fda91b1
 * (6.9; features.leafZapSkipsInvalid): nobody can load an invalid root. When it
 * may yield, it flushes first. Returns whether a flush is owed. In the "single"
 * (≤ 5.17) code shape, range zaps were zap_gfn_range(), which also frees tables
 * wholly inside the range.
 */
export const tdp_mmu_zap_leafs = modelFn(
  "tdp_mmu_zap_leafs",
  function* (
    kvm: Kvm,
    root: KvmMmuPage,
    start: number,
    end: number,
    can_yield: boolean,
    flush: boolean,
  ): Gen<boolean> {
    if (preZapOverhaul(kvm)) return yield* zap_gfn_range(kvm, root, start, end, can_yield, flush, false);
    end = Math.min(end, tdp_mmu_max_gfn_exclusive(kvm));
    lockdep_assert_held_write(kvm.mmu_lock);
    yield* rcu_read_lock();
    const iter = new TdpIter(kvm);
    const walk = for_each_tdp_pte_min_level(iter, root, PG_LEVEL_4K, start, end, function* () {
      if (can_yield && (yield* tdp_mmu_iter_cond_resched(kvm, iter, flush, false))) {
        flush = false;
        return undefined;
      }
      if (!is_shadow_present_pte(iter.old_spte) || !is_last_spte(iter.old_spte, iter.level)) return undefined;
      yield* tdp_mmu_iter_set_spte(kvm, iter, SHADOW_NONPRESENT_VALUE);
      // role.invalid only changes under the write lock, which this thread holds: a plain read.
      if (!kvm.features.leafZapSkipsInvalid || !roleInvalid(root.role.v)) flush = true;
      return undefined;
    });
    yield* unmetered_walk(can_yield, walk);
    yield* rcu_read_unlock();
    return flush;
  },
);
