import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "../kernel/atomic.js";
import { lockdep_assert_held_write } from "../kernel/lockdep.js";
import { write_lock, write_unlock } from "../kernel/rwlock.js";
import { KVM_BUG_ON, WARN_ON_ONCE } from "../kernel/warn.js";
import { check_write_track_flushed } from "./invariants/pages.js";
import { kvm_get_kvm_at_spawn, kvm_put_kvm } from "./kvm_destroy.js";
import { PG_LEVEL_4K } from "./tdp_iter.js";
import { write_protect_gfn } from "./tdp_mmu_dirty.js";
import { for_each_valid_tdp_mmu_root } from "./tdp_mmu_iter_roots.js";
import { gfn_to_memslot } from "./tdp_mmu_map.js";
import { kvm_flush_remote_tlbs } from "./tlb.js";
import type { Kvm, Memslot } from "./types.js";

/**
 * Write tracking (arch/x86/kvm/mmu/page_track.c, v6.6+): a per-page count in each memslot of the
 * reasons KVM must see every guest write to that page (shadowed guest page tables, KVMGT's GTT).
 * While a page is tracked, no SPTE may let the guest write it: faults install it read-only and
 * __kvm_write_track_add_gfn() write-protects what is mapped, flushing before mmu_lock is dropped,
 * so the caller can rely on every later write exiting.
 */
const writeTrack = new WeakMap<Memslot, Atomic[]>();

/**
 * kvm_page_track_write_tracking_alloc() (page_track.c, v6.6): the slot's counters, allocated when
 * write tracking is enabled (the shadow MMU at VM creation, KVMGT when it registers). The model
 * enables it when a tracking task is spawned, before any step runs: a fault decides whether to read
 * a counter from whether it exists, so the counters must not appear in the middle of a run.
 */
export function kvm_page_track_write_tracking_alloc(kvm: Kvm, slot: Memslot): void {
  if (writeTrack.has(slot)) return;
  const counts: Atomic[] = [];
  for (let i = 0; i < slot.npages; i++) {
    counts.push(new Atomic(`memslot${slot.id}.gfn_write_track[${i}]`, 0, kvm.kobj));
  }
  writeTrack.set(slot, counts);
}

/** kvm_gfn_is_write_tracked() (page_track.c, v6.6): the count, read without mmu_lock held for write. */
export const kvm_gfn_is_write_tracked = modelFn(
  "kvm_gfn_is_write_tracked",
  function* (slot: Memslot | null, gfn: number): Gen<boolean> {
    const counts = slot === null ? undefined : writeTrack.get(slot);
    if (slot === null || counts === undefined) return false;
    return (yield* READ_ONCE(counts[gfn - slot.base_gfn])) !== 0;
  },
);

/**
 * mmu_try_to_unsync_pages() (mmu.c, v6.6) as the TDP MMU sees it: there are no unsync shadow pages
 * to consider, so a write-tracked page is the only reason to refuse a writable SPTE (-EPERM).
 */
export const mmu_try_to_unsync_pages = modelFn(
  "mmu_try_to_unsync_pages",
  function* (slot: Memslot | null, gfn: number): Gen<number> {
    return (yield* kvm_gfn_is_write_tracked(slot, gfn)) ? -1 : 0;
  },
);

/** kvm_tdp_mmu_write_protect_gfn() (tdp_mmu.c, v6.6): every valid root of the slot's address space. */
export const kvm_tdp_mmu_write_protect_gfn = modelFn(
  "kvm_tdp_mmu_write_protect_gfn",
  function* (kvm: Kvm, slot: Memslot, gfn: number, min_level: number): Gen<boolean> {
    lockdep_assert_held_write(kvm.mmu_lock);
    let spte_set = false;
    yield* for_each_valid_tdp_mmu_root(kvm, slot.as_id, function* (root) {
      spte_set = (yield* write_protect_gfn(kvm, root, gfn, min_level)) || spte_set;
      return undefined;
    });
    return spte_set;
  },
);

/** kvm_mmu_slot_gfn_write_protect() (mmu.c, v6.6), TDP MMU part (no rmaps in the model). */
export const kvm_mmu_slot_gfn_write_protect = modelFn(
  "kvm_mmu_slot_gfn_write_protect",
  function* (kvm: Kvm, slot: Memslot, gfn: number, min_level: number): Gen<boolean> {
    return yield* kvm_tdp_mmu_write_protect_gfn(kvm, slot, gfn, min_level);
  },
);

/**
 * update_gfn_write_track() (page_track.c, v6.6) with the KVM_BUG_ON its callers make first: add
 * `count` to the page's tracking count, refusing (WARN) to leave [0, USHRT_MAX]. The update is plain:
 * its writers hold mmu_lock for write. False if nothing was changed.
 */
function* update_gfn_write_track(kvm: Kvm, slot: Memslot, gfn: number, count: number): Gen<boolean> {
  const counts = writeTrack.get(slot);
  if (KVM_BUG_ON(counts === undefined, kvm, "write tracking is not enabled")) return false;
  const word = counts![gfn - slot.base_gfn];
  const val = yield* READ_ONCE(word);
  if (WARN_ON_ONCE(val + count < 0 || val + count > 0xffff, "val + count < 0 || val + count > USHRT_MAX"))
    return false;
  yield* WRITE_ONCE(word, val + count);
  return true;
}

/**
 * The KVMGT entry points: the memslot of `gfn` (looked up under SRCU in the kernel), -EINVAL if
 * none, else `body` with mmu_lock held for write.
 */
function* with_gfn_slot_write_locked(kvm: Kvm, gfn: number, body: (slot: Memslot) => Gen<void>): Gen<number> {
  const slot = gfn_to_memslot(kvm, 0, gfn);
  if (slot === null) return -22;
  yield* write_lock(kvm.mmu_lock);
  yield* body(slot);
  yield* write_unlock(kvm.mmu_lock);
  return 0;
}

/**
 * __kvm_write_track_add_gfn() (page_track.c, v6.6): count one more reason to track the page and
 * write-protect it. The count's writers hold mmu_lock for write, which also keeps faults (readers
 * of the count, under the read lock) out. The flush is done before mmu_lock
 * is dropped, even when this call changed nothing: another task may have cleared Writable and not
 * flushed yet (dirty logging flushes only before returning to user space), which is why
 * write_protect_gfn() also looks at MMU-writable.
 */
export const __kvm_write_track_add_gfn = modelFn(
  "__kvm_write_track_add_gfn",
  function* (kvm: Kvm, slot: Memslot, gfn: number): Gen<void> {
    lockdep_assert_held_write(kvm.mmu_lock);
    if (!(yield* update_gfn_write_track(kvm, slot, gfn, 1))) return;
    if (yield* kvm_mmu_slot_gfn_write_protect(kvm, slot, gfn, PG_LEVEL_4K)) yield* kvm_flush_remote_tlbs(kvm);
    // Not a kernel access: the promise this function makes depends on other tasks' flushes, so the
    // check of it reads what every flush writes. The explorers then try it before and after each
    // flush, instead of trusting whichever order of two independent steps they happened to run.
    yield* READ_ONCE(kvm.tlb);
    check_write_track_flushed(kvm, gfn);
  },
);

/** kvm_write_track_add_gfn() (page_track.c, v6.6, for KVMGT): look up the slot and track the page. */
export const kvm_write_track_add_gfn = modelFn(
  "kvm_write_track_add_gfn",
  function* (kvm: Kvm, gfn: number): Gen<number> {
    return yield* with_gfn_slot_write_locked(kvm, gfn, (slot) => __kvm_write_track_add_gfn(kvm, slot, gfn));
  },
);

/**
 * __kvm_write_track_remove_gfn() (page_track.c, v6.6): one reason less to track the page. Nothing
 * is flushed or made writable: the next write fault finds the count at zero and maps the page
 * writable again (and, in the kernel, huge again: kvm_mmu_gfn_allow_lpage(), whose disallow count
 * the model does not keep, since write tracking never forces 4K in it). The same lock as adding: a
 * fault reads the count under the read mmu_lock, so the write lock orders the two. The kernel also
 * asserts slots_lock or SRCU for the memslot; the model has no SRCU to check.
 */
export const __kvm_write_track_remove_gfn = modelFn(
  "__kvm_write_track_remove_gfn",
  function* (kvm: Kvm, slot: Memslot, gfn: number): Gen<void> {
    lockdep_assert_held_write(kvm.mmu_lock);
    yield* update_gfn_write_track(kvm, slot, gfn, -1);
  },
);

/** kvm_write_track_remove_gfn() (page_track.c, v6.6, for KVMGT): look up the slot and untrack the page. */
export const kvm_write_track_remove_gfn = modelFn(
  "kvm_write_track_remove_gfn",
  function* (kvm: Kvm, gfn: number): Gen<number> {
    return yield* with_gfn_slot_write_locked(kvm, gfn, (slot) =>
      __kvm_write_track_remove_gfn(kvm, slot, gfn),
    );
  },
);

/**
 * writeTrackTask: an external tracker (KVMGT shadowing a guest GTT page) starts tracking `gfn`, and
 * with `untrack` stops again (the guest stopped using the page as a GTT).
 */
export function* writeTrackTask(kvm: Kvm, gfn: number, untrack = false): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  const slot = gfn_to_memslot(kvm, 0, gfn);
  if (slot !== null) kvm_page_track_write_tracking_alloc(kvm, slot);
  yield* kvm_write_track_add_gfn(kvm, gfn);
  if (untrack) yield* kvm_write_track_remove_gfn(kvm, gfn);
  yield* kvm_put_kvm(kvm);
}
