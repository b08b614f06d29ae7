import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { type Atomic, clear_bit, cmpxchg, READ_ONCE } from "../kernel/atomic.js";
import { lockdep_assert_held_write } from "../kernel/lockdep.js";
import { write_lock, write_unlock } from "../kernel/rwlock.js";
import { WARN_ON_ONCE } from "../kernel/warn.js";
import { mmu_free_pte_list_desc, pte_list_remove } from "./pte_list.js";
import { KVM_RMAP_MANY, type KvmRmapHead, type PteListDesc, type RmapContext } from "./rmap_context.js";
import {
  kvm_rmap_get,
  kvm_rmap_lock,
  kvm_rmap_lock_readonly,
  kvm_rmap_unlock,
  kvm_rmap_unlock_readonly,
} from "./rmap_lock.js";
import {
  mark_spte_for_access_track,
  mmu_spte_clear_track_bits,
  mmu_spte_get_lockless,
  mmu_spte_update,
  spte_ad_enabled,
  spteIsYoung,
} from "./rmap_spte.js";
import { is_shadow_present_pte, SPTE_BIT } from "./spte.js";
import type { Kvm } from "./types.js";

export * from "./pte_list.js";
export * from "./rmap_context.js";
export * from "./rmap_lock.js";
export * from "./rmap_spte.js";

/*
 * Walking, zapping and aging shadow-MMU rmaps (mmu.c, 6.15).
 *
 * Two kinds of walkers. Holders of the write mmu_lock walk with
 * for_each_rmap_spte and need no bit: writers are serialized by mmu_lock and
 * a lockless reader never changes the chain. Lockless walkers (aging, 6.15)
 * take the bit read-only and walk with for_each_rmap_spte_lockless; the bit
 * keeps the chain still, but SPTE values keep changing under them, so they
 * skip non-present SPTEs and only clear A atomically.
 */

/** struct rmap_iterator: the desc being walked (null for a single-SPTE rmap) and the slot in it. */
export interface RmapIterator {
  desc: PteListDesc | null;
  pos: number;
}

/** rmap_get_first() (mmu.c, 6.15 bb6c7749ccee: no BUG on a non-present SPTE, callers decide). */
export function* rmap_get_first(head: KvmRmapHead, iter: RmapIterator): Gen<Atomic | null> {
  const ctx = head.ctx;
  const val = yield* kvm_rmap_get(head);
  if (val === 0) return null;
  if ((val & KVM_RMAP_MANY) === 0) {
    iter.desc = null;
    return ctx.spteAt(val);
  }
  iter.desc = ctx.descAt(val & ~KVM_RMAP_MANY);
  iter.pos = 0;
  return ctx.spteAt(yield* READ_ONCE(iter.desc!.sptes[0]));
}

/** rmap_get_next() (mmu.c, 6.15 bb6c7749ccee): next slot of this desc, else slot 0 of the next desc. */
export function* rmap_get_next(ctx: RmapContext, iter: RmapIterator): Gen<Atomic | null> {
  const desc = iter.desc;
  if (desc === null) return null;
  if (iter.pos < ctx.pteListExt - 1) {
    iter.pos++;
    const p = yield* READ_ONCE(desc.sptes[iter.pos]);
    if (p !== 0) return ctx.spteAt(p);
  }
  iter.desc = ctx.descAt(yield* READ_ONCE(desc.more));
  if (iter.desc === null) return null;
  iter.pos = 0;
  // Slot 0 of a desc is never NULL.
  return ctx.spteAt(yield* READ_ONCE(iter.desc.sptes[0]));
}

/** Loop body of a walk: return true to stop the walk (the C `break`/`return` out of the loop). */
export type RmapSpteBody = (sptep: Atomic, spte: number) => Gen<boolean>;

/**
 * for_each_rmap_spte() (mmu.c, 6.15 bb6c7749ccee): the walk of a write-lock
 * holder. A non-present SPTE here is a KVM bug: WARN once and skip it (it was
 * a BUG before 6.15). Returns whether the body stopped the walk.
 */
export function* for_each_rmap_spte(head: KvmRmapHead, body: RmapSpteBody): Gen<boolean> {
  const iter: RmapIterator = { desc: null, pos: 0 };
  for (
    let sptep = yield* rmap_get_first(head, iter);
    sptep !== null;
    sptep = yield* rmap_get_next(head.ctx, iter)
  ) {
    const spte = yield* READ_ONCE(sptep);
    if (WARN_ON_ONCE(!is_shadow_present_pte(spte), "!is_shadow_present_pte(*sptep)")) continue;
    if (yield* body(sptep, spte)) return true;
  }
  return false;
}

/**
 * for_each_rmap_spte_lockless() (mmu.c, 6.15 bb6c7749ccee): the walk of a
 * task without mmu_lock that holds the rmap bit read-only. The SPTE is read
 * once (mmu_spte_get_lockless) and skipped if it is not present: a zapper
 * clears SPTEs before it takes the bit to unlink them.
 */
export function* for_each_rmap_spte_lockless(head: KvmRmapHead, body: RmapSpteBody): Gen<boolean> {
  const iter: RmapIterator = { desc: null, pos: 0 };
  for (
    let sptep = yield* rmap_get_first(head, iter);
    sptep !== null;
    sptep = yield* rmap_get_next(head.ctx, iter)
  ) {
    const spte = yield* mmu_spte_get_lockless(sptep);
    if (!is_shadow_present_pte(spte)) continue;
    if (yield* body(sptep, spte)) return true;
  }
  return false;
}

/**
 * kvm_zap_one_rmap_spte() (mmu.c, 6.15): clear the SPTE first, then unlink it
 * under the bit. A lockless walker that still finds it in the chain sees a
 * non-present SPTE and skips it.
 */
export const kvm_zap_one_rmap_spte = modelFn(
  "kvm_zap_one_rmap_spte",
  function* (kvm: Kvm, head: KvmRmapHead, sptep: Atomic): Gen<void> {
    yield* mmu_spte_clear_track_bits(head.ctx, sptep);
    yield* pte_list_remove(kvm, sptep, head);
  },
);

/**
 * kvm_zap_all_rmap_sptes() (mmu.c, 6.15: 4834eaded91e): zap every SPTE of the
 * rmap and free its descs, all under the bit, then publish the empty rmap
 * with the unlocking store. True if anything was zapped.
 */
export const kvm_zap_all_rmap_sptes = modelFn(
  "kvm_zap_all_rmap_sptes",
  function* (kvm: Kvm, head: KvmRmapHead): Gen<boolean> {
    const ctx = head.ctx;
    ctx.observer?.beginUpdate(head);
    const val = yield* kvm_rmap_lock(kvm, head);
    if (val === 0) {
      ctx.observer?.endUpdate(head, (s) => s.clear());
      return false;
    }
    if ((val & KVM_RMAP_MANY) === 0) {
      yield* mmu_spte_clear_track_bits(ctx, ctx.spteAt(val)!);
    } else {
      let desc = ctx.descAt(val & ~KVM_RMAP_MANY);
      while (desc !== null) {
        const n = yield* READ_ONCE(desc.spte_count);
        for (let i = 0; i < n; i++) {
          const sptep = ctx.spteAt(yield* READ_ONCE(desc.sptes[i]));
          if (sptep !== null) yield* mmu_spte_clear_track_bits(ctx, sptep);
        }
        const next = ctx.descAt(yield* READ_ONCE(desc.more));
        yield* mmu_free_pte_list_desc(desc);
        desc = next;
      }
    }
    yield* kvm_rmap_unlock(kvm, head, 0);
    ctx.observer?.endUpdate(head, (s) => s.clear());
    return true;
  },
);

/** How a lockless ager makes one young SPTE old. */
export type AgeSpte = (sptep: Atomic, spte: number) => Gen<void>;

/**
 * The 6.15 way (af3b6a9eba48): with A/D bits, clear A with an atomic
 * clear_bit, so a Dirty bit the CPU sets meanwhile survives; without them,
 * one cmpxchg to the access-tracked value, and if it fails the SPTE was just
 * changed by someone else and is best left young.
 */
export function* ageSpteAtomic(sptep: Atomic, spte: number): Gen<void> {
  if (spte_ad_enabled(spte)) yield* clear_bit(SPTE_BIT.accessed, sptep);
  else yield* cmpxchg(sptep, spte, mark_spte_for_access_track(spte));
}

/**
 * The lockless aging walk of kvm_rmap_age_gfn_range() (6.15, af3b6a9eba48)
 * with the SPTE update as a parameter, so mutations can swap that one step.
 * `heads` stands for the rmaps of the range, level by level (gfn_to_rmap).
 */
export function* rmapAgeLockless(
  heads: readonly KvmRmapHead[],
  testOnly: boolean,
  age: AgeSpte,
): Gen<boolean> {
  let young = false;
  for (const head of heads) {
    const val = yield* kvm_rmap_lock_readonly(head);
    const stop = yield* for_each_rmap_spte_lockless(head, function* (sptep, spte) {
      if (!spteIsYoung(spte)) return false;
      if (testOnly) return true;
      yield* age(sptep, spte);
      young = true;
      return false;
    });
    yield* kvm_rmap_unlock_readonly(head, val);
    if (stop) return true;
  }
  return young;
}

/**
 * The ≤6.14 aging walk: the caller holds the write mmu_lock, so no bit is
 * needed and the SPTE is replaced with mmu_spte_update().
 */
function* rmapAgeLocked(kvm: Kvm, heads: readonly KvmRmapHead[], testOnly: boolean): Gen<boolean> {
  lockdep_assert_held_write(kvm.mmu_lock);
  let young = false;
  for (const head of heads) {
    const stop = yield* for_each_rmap_spte(head, function* (sptep, spte) {
      if (!spteIsYoung(spte)) return false;
      if (testOnly) return true;
      if (spte_ad_enabled(spte)) {
        yield* clear_bit(SPTE_BIT.accessed, sptep);
      } else {
        // Access tracking must never need an immediate flush.
        const flush = yield* mmu_spte_update(sptep, mark_spte_for_access_track(spte));
        WARN_ON_ONCE(flush, "mmu_spte_update() wants a flush while aging");
      }
      young = true;
      return false;
    });
    if (stop) return true;
  }
  return young;
}

/**
 * kvm_rmap_age_gfn_range() (mmu.c): clear (or, with test_only, test) the
 * young state of every SPTE in the rmaps. From 6.15 (af3b6a9eba48, feature
 * locklessAging) it runs without mmu_lock under read-only rmap locks; before,
 * under the write mmu_lock.
 */
export const kvm_rmap_age_gfn_range = modelFn(
  "kvm_rmap_age_gfn_range",
  function* (kvm: Kvm, heads: readonly KvmRmapHead[], testOnly: boolean): Gen<boolean> {
    if (kvm.features.locklessAging) return yield* rmapAgeLockless(heads, testOnly, ageSpteAtomic);
    return yield* rmapAgeLocked(kvm, heads, testOnly);
  },
);

/**
 * kvm_age_gfn(), shadow-MMU part (mmu.c): the clear_young notifier. Before
 * 6.15 the write mmu_lock is taken around the rmap walk; from 6.15 not.
 */
export const kvm_age_gfn = modelFn(
  "kvm_age_gfn",
  function* (kvm: Kvm, heads: readonly KvmRmapHead[]): Gen<boolean> {
    if (kvm.features.locklessAging) return yield* kvm_rmap_age_gfn_range(kvm, heads, false);
    yield* write_lock(kvm.mmu_lock);
    const young = yield* kvm_rmap_age_gfn_range(kvm, heads, false);
    yield* write_unlock(kvm.mmu_lock);
    return young;
  },
);

/** kvm_test_age_gfn(), shadow-MMU part (mmu.c): the test_young notifier; locking as kvm_age_gfn(). */
export const kvm_test_age_gfn = modelFn(
  "kvm_test_age_gfn",
  function* (kvm: Kvm, heads: readonly KvmRmapHead[]): Gen<boolean> {
    if (kvm.features.locklessAging) return yield* kvm_rmap_age_gfn_range(kvm, heads, true);
    yield* write_lock(kvm.mmu_lock);
    const young = yield* kvm_rmap_age_gfn_range(kvm, heads, true);
    yield* write_unlock(kvm.mmu_lock);
    return young;
  },
);
