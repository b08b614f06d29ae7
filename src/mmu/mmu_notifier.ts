import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { READ_ONCE, WRITE_ONCE } from "../kernel/atomic.js";
import { lockdep_assert_held_write } from "../kernel/lockdep.js";
import { write_lock, write_unlock } from "../kernel/rwlock.js";
import { KVM_BUG_ON } from "../kernel/warn.js";
import { check_notifier_complete } from "./invariants/roots.js";
import { kvm_mmu_zap_all } from "./tdp_mmu_invalidate.js";
import { INVALID_GPA } from "./tdp_mmu_map.js";
import {
  type KvmGfnRange,
  kvm_tdp_mmu_age_gfn_range,
  kvm_tdp_mmu_test_age_gfn,
  kvm_tdp_mmu_unmap_gfn_range,
} from "./tdp_mmu_walks.js";
import { kvm_flush_remote_tlbs } from "./tlb.js";
import type { Kvm, Memslot } from "./types.js";

/**
 * KVM's mmu_notifier callbacks (virt/kvm/kvm_main.c) as they reach the TDP MMU.
 * The model's host address space is the guest's frame space: an invalidation
 * of [start, end) covers the same gfns in every live memslot of address
 * space 0 (the memslot array is read as under SRCU: plain reads).
 */

/** The parts of [start, end) each live memslot covers, as kvm_handle_hva_range() builds them. */
function slot_ranges(kvm: Kvm, start: number, end: number, may_block: boolean): KvmGfnRange[] {
  const out: KvmGfnRange[] = [];
  for (const slot of kvm.memslots) {
    if (slot.deleted || slot.as_id !== 0) continue;
    const s = Math.max(start, slot.base_gfn);
    const e = Math.min(end, slot.base_gfn + slot.npages);
    if (s < e) out.push({ slot, start: s, end: e, may_block });
  }
  return out;
}

/**
 * kvm_mmu_invalidate_begin() (kvm_main.c, 6.3+; the mmu_notifier_count++ of older kernels): with
 * mmu_lock held for write, count one more invalidation in progress, and reset the recorded range
 * if it is the only one. Faults that see a count retry instead of installing a stale pfn.
 */
export const kvm_mmu_invalidate_begin = modelFn("kvm_mmu_invalidate_begin", function* (kvm: Kvm): Gen<void> {
  lockdep_assert_held_write(kvm.mmu_lock);
  const n = (yield* READ_ONCE(kvm.mmu_invalidate_in_progress)) + 1;
  yield* WRITE_ONCE(kvm.mmu_invalidate_in_progress, n);
  if (n === 1) {
    yield* WRITE_ONCE(kvm.mmu_invalidate_range_start, INVALID_GPA);
    yield* WRITE_ONCE(kvm.mmu_invalidate_range_end, INVALID_GPA);
  }
});

/**
 * kvm_mmu_invalidate_range_add() (kvm_main.c, 6.3+): widen the recorded range to cover
 * [start, end); with several invalidations in flight it is the union, which may over-retry but
 * never miss one.
 */
export const kvm_mmu_invalidate_range_add = modelFn(
  "kvm_mmu_invalidate_range_add",
  function* (kvm: Kvm, start: number, end: number): Gen<void> {
    const cur = yield* READ_ONCE(kvm.mmu_invalidate_range_start);
    if (cur === INVALID_GPA) {
      yield* WRITE_ONCE(kvm.mmu_invalidate_range_start, start);
      yield* WRITE_ONCE(kvm.mmu_invalidate_range_end, end);
    } else {
      const curEnd = yield* READ_ONCE(kvm.mmu_invalidate_range_end);
      yield* WRITE_ONCE(kvm.mmu_invalidate_range_start, Math.min(cur, start));
      yield* WRITE_ONCE(kvm.mmu_invalidate_range_end, Math.max(curEnd, end));
    }
  },
);

/**
 * kvm_mmu_invalidate_end() (kvm_main.c): bump the sequence count first, so a fault that snapshot
 * the old count and sees the in-progress count drop still retries, then drop the in-progress count.
 */
export const kvm_mmu_invalidate_end = modelFn("kvm_mmu_invalidate_end", function* (kvm: Kvm): Gen<void> {
  lockdep_assert_held_write(kvm.mmu_lock);
  const seq = yield* READ_ONCE(kvm.mmu_invalidate_seq);
  yield* WRITE_ONCE(kvm.mmu_invalidate_seq, seq + 1);
  const n = (yield* READ_ONCE(kvm.mmu_invalidate_in_progress)) - 1;
  yield* WRITE_ONCE(kvm.mmu_invalidate_in_progress, n);
  KVM_BUG_ON(n < 0, kvm, "kvm->mmu_invalidate_in_progress < 0");
});

/** kvm_unmap_gfn_range() (mmu.c): the shadow MMU's rmaps (none here), then the TDP MMU. */
export const kvm_unmap_gfn_range = modelFn(
  "kvm_unmap_gfn_range",
  function* (kvm: Kvm, range: KvmGfnRange): Gen<boolean> {
    return yield* kvm_tdp_mmu_unmap_gfn_range(kvm, range, false);
  },
);

/**
 * kvm_mmu_notifier_invalidate_range_start() (kvm_main.c): under the write mmu_lock, mark an
 * invalidation in progress over [start, end), unmap the range in every memslot it touches (the
 * notifier may block, so the zap may yield), flush if anything was zapped, unlock. When it returns
 * the primary MMU may change or free the pages, so nothing may still map them (invariant 11).
 */
export const kvm_mmu_notifier_invalidate_range_start = modelFn(
  "kvm_mmu_notifier_invalidate_range_start",
  function* (kvm: Kvm, start: number, end: number): Gen<void> {
    yield* write_lock(kvm.mmu_lock);
    yield* kvm_mmu_invalidate_begin(kvm);
    let flush = false;
    for (const range of slot_ranges(kvm, start, end, true)) {
      yield* kvm_mmu_invalidate_range_add(kvm, range.start, range.end);
      flush = (yield* kvm_unmap_gfn_range(kvm, range)) || flush;
    }
    if (flush) yield* kvm_flush_remote_tlbs(kvm);
    yield* write_unlock(kvm.mmu_lock);
    kvm.ghost.notifierRanges.push({ start, end, active: true });
    check_notifier_complete(kvm, start, end);
  },
);

/** kvm_mmu_notifier_invalidate_range_end() (kvm_main.c): under the write mmu_lock, end the invalidation. */
export const kvm_mmu_notifier_invalidate_range_end = modelFn(
  "kvm_mmu_notifier_invalidate_range_end",
  function* (kvm: Kvm, start: number, end: number): Gen<void> {
    yield* write_lock(kvm.mmu_lock);
    yield* kvm_mmu_invalidate_end(kvm);
    yield* write_unlock(kvm.mmu_lock);
    const r = kvm.ghost.notifierRanges.find((x) => x.active && x.start === start && x.end === end);
    if (r !== undefined) r.active = false;
  },
);

/**
 * The aging notifiers' common path (kvm_handle_hva_range() without a flush): to 6.14 under the
 * write mmu_lock; from 6.15 (CONFIG_KVM_MMU_LOCKLESS_AGING, features.locklessAging) with no lock.
 */
function* age_range(kvm: Kvm, start: number, end: number, test_only: boolean): Gen<boolean> {
  const locked = !kvm.features.locklessAging;
  if (locked) yield* write_lock(kvm.mmu_lock);
  let young = false;
  for (const range of slot_ranges(kvm, start, end, false)) {
    const r = test_only
      ? yield* kvm_tdp_mmu_test_age_gfn(kvm, range)
      : yield* kvm_tdp_mmu_age_gfn_range(kvm, range);
    young = r || young;
  }
  if (locked) yield* write_unlock(kvm.mmu_lock);
  return young;
}

/** kvm_mmu_notifier_clear_young() (kvm_main.c) -> kvm_age_gfn(): clear Accessed over [start, end). */
export const kvm_mmu_notifier_clear_young = modelFn(
  "kvm_mmu_notifier_clear_young",
  function* (kvm: Kvm, start: number, end: number): Gen<boolean> {
    return yield* age_range(kvm, start, end, false);
  },
);

/** kvm_mmu_notifier_test_young() (kvm_main.c) -> kvm_test_age_gfn(): is any page of [start, end) young. */
export const kvm_mmu_notifier_test_young = modelFn(
  "kvm_mmu_notifier_test_young",
  function* (kvm: Kvm, start: number, end: number): Gen<boolean> {
    return yield* age_range(kvm, start, end, true);
  },
);

/**
 * kvm_mmu_notifier_release() (kvm_main.c): the address space is going away (process exit, or
 * mmu_notifier_unregister() from kvm_destroy_vm()): kvm_flush_shadow_all() ->
 * kvm_arch_flush_shadow_all() -> kvm_mmu_zap_all(). The roots are left empty but still exist.
 */
export const kvm_mmu_notifier_release = modelFn("kvm_mmu_notifier_release", function* (kvm: Kvm): Gen<void> {
  yield* kvm_mmu_zap_all(kvm);
});

/** The memslots a gfn range of address space 0 touches (for workloads and checks). */
export function memslots_in(kvm: Kvm, start: number, end: number): Memslot[] {
  return slot_ranges(kvm, start, end, false).map((r) => r.slot);
}
