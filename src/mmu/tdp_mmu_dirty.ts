import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { andMask } from "../kernel/atomic.js";
import { lockdep_assert_held_write } from "../kernel/lockdep.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { BUG_ON } from "../kernel/warn.js";
import { ghost_spte_protected } from "./invariants/pages.js";
import { pagesPerHpage } from "./kvm.js";
import { ROLE } from "./role.js";
import { is_last_spte, is_shadow_present_pte, SPTE_BIT } from "./spte.js";
import {
  for_each_tdp_pte_min_level,
  KVM_MAX_HUGEPAGE_LEVEL,
  PG_LEVEL_4K,
  TdpIter,
  tdp_root_for_each_leaf_pte,
  tdp_root_for_each_pte,
} from "./tdp_iter.js";
import { tdp_mmu_clear_spte_bits, tdp_mmu_iter_set_spte, tdp_mmu_set_spte_atomic } from "./tdp_mmu_spte.js";
import { tdp_mmu_iter_cond_resched } from "./tdp_mmu_zap.js";
import type { Kvm, KvmMmuPage } from "./types.js";

/** PT_WRITABLE_MASK. */
export const PT_WRITABLE_MASK = 2 ** SPTE_BIT.writable;
/** shadow_dirty_mask (EPT D bit). */
export const SHADOW_DIRTY_MASK = 2 ** SPTE_BIT.dirty;
/** shadow_mmu_writable_mask. */
export const SHADOW_MMU_WRITABLE_MASK = 2 ** SPTE_BIT.mmuWritable;
/** BITS_PER_LONG. */
const BITS_PER_LONG = 64;

function clearBits(spte: number, mask: number): number {
  return spte - andMask(spte, mask);
}

/**
 * tdp_mmu_need_write_protect() (tdp_mmu.c, v6.x): without A/D bits, dirty
 * state is tracked by write-protecting instead of clearing D. The role's
 * ad_disabled bit never changes, so it is read plainly.
 */
export function tdp_mmu_need_write_protect(root: KvmMmuPage): boolean {
  return ROLE.ad_disabled.get(root.role.v) === 1;
}

/**
 * wrprot_gfn_range() (tdp_mmu.c, v6.x): under the read mmu_lock, make every
 * writable leaf at or above min_level in [start, end) read-only with cmpxchg,
 * retrying lost races and yielding between entries. Returns whether anything
 * changed (the caller flushes, after dropping mmu_lock: dirty logging only
 * needs the flush before the ioctl returns).
 */
export const wrprot_gfn_range = modelFn(
  "wrprot_gfn_range",
  function* (kvm: Kvm, root: KvmMmuPage, start: number, end: number, min_level: number): Gen<boolean> {
    let spte_set = false;
    yield* rcu_read_lock();
    BUG_ON(min_level > KVM_MAX_HUGEPAGE_LEVEL, "min_level > KVM_MAX_HUGEPAGE_LEVEL");
    const iter = new TdpIter(kvm);
    yield* for_each_tdp_pte_min_level(iter, root, min_level, start, end, function* () {
      for (;;) {
        if (yield* tdp_mmu_iter_cond_resched(kvm, iter, false, true)) return undefined;
        const old = iter.old_spte;
        if (
          !is_shadow_present_pte(old) ||
          !is_last_spte(old, iter.level) ||
          andMask(old, PT_WRITABLE_MASK) === 0
        ) {
          return undefined;
        }
        if ((yield* tdp_mmu_set_spte_atomic(kvm, iter, clearBits(old, PT_WRITABLE_MASK))) !== 0) continue;
        spte_set = true;
        return undefined;
      }
    });
    yield* rcu_read_unlock();
    return spte_set;
  },
);

/**
 * clear_dirty_gfn_range() (tdp_mmu.c, v6.x; returns whether anything changed up
 * to 6.14): under the read mmu_lock, clear D (or W, without A/D bits) on every
 * leaf in [start, end) with cmpxchg, retrying lost races and yielding.
 */
export const clear_dirty_gfn_range = modelFn(
  "clear_dirty_gfn_range",
  function* (kvm: Kvm, root: KvmMmuPage, start: number, end: number): Gen<boolean> {
    const dbit = tdp_mmu_need_write_protect(root) ? PT_WRITABLE_MASK : SHADOW_DIRTY_MASK;
    let spte_set = false;
    yield* rcu_read_lock();
    const iter = new TdpIter(kvm);
    yield* tdp_root_for_each_pte(iter, root, start, end, function* () {
      for (;;) {
        if (!is_shadow_present_pte(iter.old_spte) || !is_last_spte(iter.old_spte, iter.level))
          return undefined;
        if (yield* tdp_mmu_iter_cond_resched(kvm, iter, false, true)) return undefined;
        if (andMask(iter.old_spte, dbit) === 0) return undefined;
        const cleared = clearBits(iter.old_spte, dbit);
        if ((yield* tdp_mmu_set_spte_atomic(kvm, iter, cleared)) !== 0) continue;
        ghost_spte_protected(
          kvm,
          iter.sptep,
          iter.gfn,
          pagesPerHpage(kvm.geometry, iter.level),
          iter.old_spte,
          cleared,
          true,
        );
        spte_set = true;
        return undefined;
      }
    });
    yield* rcu_read_unlock();
    return spte_set;
  },
);

/**
 * clear_dirty_pt_masked() (tdp_mmu.c, v6.x): under the write mmu_lock, clear D
 * (or W) on the 4K leaves of gfn + i for every bit i set in `mask` (64 bits),
 * for KVM_CLEAR_DIRTY_LOG. No yielding: the range is at most 64 pages.
 */
export const clear_dirty_pt_masked = modelFn(
  "clear_dirty_pt_masked",
  function* (kvm: Kvm, root: KvmMmuPage, gfn: number, mask: bigint, wrprot: boolean): Gen<void> {
    const dbit = wrprot || tdp_mmu_need_write_protect(root) ? PT_WRITABLE_MASK : SHADOW_DIRTY_MASK;
    lockdep_assert_held_write(kvm.mmu_lock);
    if (mask === 0n) return;
    let first = 0;
    while (((mask >> BigInt(first)) & 1n) === 0n) first++;
    yield* rcu_read_lock();
    const iter = new TdpIter(kvm);
    yield* tdp_root_for_each_leaf_pte(iter, root, gfn + first, gfn + BITS_PER_LONG, function* () {
      if (mask === 0n) return "break";
      const bit = 1n << BigInt(iter.gfn - gfn);
      if (iter.level > PG_LEVEL_4K || (mask & bit) === 0n) return undefined;
      mask &= ~bit;
      if (andMask(iter.old_spte, dbit) === 0) return undefined;
      // Like the kernel, the iterator keeps the value from before the clear.
      iter.old_spte = yield* tdp_mmu_clear_spte_bits(iter.sptep, iter.old_spte, dbit, iter.level);
      ghost_spte_protected(kvm, iter.sptep, iter.gfn, 1, iter.old_spte, clearBits(iter.old_spte, dbit), true);
      return undefined;
    });
    yield* rcu_read_unlock();
  },
);

/**
 * write_protect_gfn() (tdp_mmu.c, v6.x): under the write mmu_lock, make the
 * leaf mapping gfn read-only and clear MMU-writable, so that later writes keep
 * faulting (page tracking). Returns whether a flush is needed.
 */
export const write_protect_gfn = modelFn(
  "write_protect_gfn",
  function* (kvm: Kvm, root: KvmMmuPage, gfn: number, min_level: number): Gen<boolean> {
    BUG_ON(min_level > KVM_MAX_HUGEPAGE_LEVEL, "min_level > KVM_MAX_HUGEPAGE_LEVEL");
    let spte_set = false;
    yield* rcu_read_lock();
    const iter = new TdpIter(kvm);
    yield* for_each_tdp_pte_min_level(iter, root, min_level, gfn, gfn + 1, function* () {
      if (!is_shadow_present_pte(iter.old_spte) || !is_last_spte(iter.old_spte, iter.level)) return undefined;
      const new_spte = clearBits(iter.old_spte, PT_WRITABLE_MASK + SHADOW_MMU_WRITABLE_MASK);
      if (new_spte === iter.old_spte) return "break";
      yield* tdp_mmu_iter_set_spte(kvm, iter, new_spte);
      spte_set = true;
      return undefined;
    });
    yield* rcu_read_unlock();
    return spte_set;
  },
);
