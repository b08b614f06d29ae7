import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { READ_ONCE, try_cmpxchg } from "../kernel/atomic.js";
import { lockdep_assert_held_write, lockdep_assert_preemption_disabled } from "../kernel/lockdep.js";
import { machine } from "../kernel/machine.js";
import { plain_store } from "../kernel/memory.js";
import { preempt_disable, preempt_enable } from "../kernel/sched.js";
import { op, touch } from "../kernel/shared.js";
import { KVM_MMU_WARN_ON } from "../kernel/warn.js";
import { KVM_RMAP_LOCKED, type KvmRmapHead } from "./rmap_context.js";
import type { Kvm } from "./types.js";

/*
 * The rmap lock, 6.15. 9fb13ba6b5ff reshaped the pte_list helpers so each
 * computes the new head word locally; 4834eaded91e added KVM_RMAP_LOCKED and
 * the lock/unlock pairs below (the preemption rules were folded into its v9
 * after review); bb6c7749ccee added lockless walks of the chain; af3b6a9eba48
 * made aging use them without mmu_lock.
 *
 * What the bit protects: the chain (the head word and every desc field), so a
 * walker holding it sees a stable chain and no desc is freed under it. What it
 * does not protect: the SPTE values the chain points at. Those still change
 * under a lockless walker (zaps, hardware A/D updates), which is why lockless
 * walkers skip non-present SPTEs and only ever touch the A bit atomically.
 *
 * Writers all hold mmu_lock for write, so they are serialized among
 * themselves; the bit only orders them against lockless readers. That is why
 * an empty rmap is never locked: readers have nothing to walk in it, and the
 * only task that can fill it is the (single) write-lock holder.
 */

/**
 * The kernel's busy-wait (`while (old & KVM_RMAP_LOCKED) { cpu_relax(); old =
 * atomic_long_read(...); }`) as one blocking load: the task is disabled while
 * the bit is set, and its load sees the word once the bit is clear.
 */
export function* rmapWaitUnlocked(head: KvmRmapHead): Gen<number> {
  const a = head.val;
  yield op("wait", a, "cpu_relax() while KVM_RMAP_LOCKED", () => (a.v & KVM_RMAP_LOCKED) === 0);
  touch(a, "atomic_long_read");
  return a.v;
}

/**
 * The head store that ends a critical section (atomic_long_set_release). Hand
 * written rather than WRITE_ONCE only so the observer can see the word it
 * replaced in the same atomic step.
 */
function* rmapHeadStore(head: KvmRmapHead, val: number): Gen<void> {
  const a = head.val;
  // A release store: a plain store on x86, buffered under TSO (kernel/memory.ts).
  yield* plain_store(a, "write", "atomic_long_set_release", val, () => {
    const before = a.v;
    a.v = val;
    head.ctx.observer?.headStored(head, before, val);
  });
}

/**
 * __kvm_rmap_lock(), 6.15 (4834eaded91e): pin the chain. Returns
 * the head word without the LOCKED bit, or 0 without locking anything when the
 * rmap is (or became, while we waited) empty. A non-zero return always means
 * the caller now owns the bit.
 */
export const __kvm_rmap_lock = modelFn("__kvm_rmap_lock", function* (head: KvmRmapHead): Gen<number> {
  // Spinning on the bit while preemptible could leave a write-lock holder
  // spinning behind a descheduled reader: lockers run with preemption off.
  lockdep_assert_preemption_disabled();
  let old = yield* READ_ONCE(head.val);
  if (old === 0) return 0;
  for (;;) {
    if ((old & KVM_RMAP_LOCKED) !== 0) old = yield* rmapWaitUnlocked(head);
    // The holder we waited for may have emptied the rmap; an empty rmap is never locked.
    if (old === 0) return 0;
    // try_cmpxchg_acquire: on failure it hands back the value it saw, and we go round again.
    const r = yield* try_cmpxchg(head.val, old, old | KVM_RMAP_LOCKED);
    if (r.ok) break;
    old = r.old;
  }
  head.ctx.observer?.locked(head, old);
  return old;
});

/** __kvm_rmap_unlock(), 6.15 (4834eaded91e): publish `val` and drop the bit in one release store. */
export const __kvm_rmap_unlock = modelFn(
  "__kvm_rmap_unlock",
  function* (head: KvmRmapHead, val: number): Gen<void> {
    KVM_MMU_WARN_ON((val & KVM_RMAP_LOCKED) !== 0, "val & KVM_RMAP_LOCKED", { head: head.name, val });
    yield* rmapHeadStore(head, val);
  },
);

/**
 * kvm_rmap_lock(), 6.15 (4834eaded91e; the seed-004 TODO made real in v9): the
 * writers' lock, legal only under the write mmu_lock. Before 6.15 writers
 * read the head word directly and relied on mmu_lock alone.
 */
export const kvm_rmap_lock = modelFn("kvm_rmap_lock", function* (kvm: Kvm, head: KvmRmapHead): Gen<number> {
  if (!kvm.features.locklessAging) return yield* READ_ONCE(head.val);
  lockdep_assert_held_write(kvm.mmu_lock);
  return yield* __kvm_rmap_lock(head);
});

/**
 * kvm_rmap_unlock(), 6.15 (4834eaded91e): the writers' publish. A writer that
 * found the rmap empty never set the bit and publishes through here all the
 * same: fine, because no one else could have locked an empty rmap and no
 * other writer can run. Before 6.15: a plain store of the new head word.
 */
export const kvm_rmap_unlock = modelFn(
  "kvm_rmap_unlock",
  function* (kvm: Kvm, head: KvmRmapHead, val: number): Gen<void> {
    if (!kvm.features.locklessAging) return yield* rmapHeadStore(head, val);
    lockdep_assert_held_write(kvm.mmu_lock);
    yield* __kvm_rmap_unlock(head, val);
  },
);

/** kvm_rmap_get(), 6.15 (4834eaded91e): the head word as a chain pointer, LOCKED masked off. */
export function* kvm_rmap_get(head: KvmRmapHead): Gen<number> {
  const v = yield* READ_ONCE(head.val);
  return v & ~KVM_RMAP_LOCKED;
}

/**
 * kvm_rmap_lock_readonly(), 6.15 (4834eaded91e, preemption added in its v9): the
 * lockless walkers' lock. Preemption stays off for as long as the bit is held,
 * so a reader is never scheduled out while a writer spins on it.
 */
export const kvm_rmap_lock_readonly = modelFn(
  "kvm_rmap_lock_readonly",
  function* (head: KvmRmapHead): Gen<number> {
    preempt_disable();
    const v = yield* __kvm_rmap_lock(head);
    if (v === 0) preempt_enable();
    return v;
  },
);

/**
 * kvm_rmap_unlock_readonly(), 6.15 (4834eaded91e): a no-op when the lock
 * returned 0, because then nothing was locked and a writer may meanwhile have
 * put the first entry in; storing the 0 back would erase it (seed 004).
 * Otherwise put back exactly the word we locked.
 */
export const kvm_rmap_unlock_readonly = modelFn(
  "kvm_rmap_unlock_readonly",
  function* (head: KvmRmapHead, old: number): Gen<void> {
    if (old === 0) return;
    // KVM_MMU_WARN_ON compiles to nothing (not even the load) without CONFIG_KVM_PROVE_MMU.
    if (machine().config.proveMmu) {
      const cur = yield* kvm_rmap_get(head);
      KVM_MMU_WARN_ON(old !== cur, "old_val != kvm_rmap_get(rmap_head)", { head: head.name, old, cur });
    }
    yield* __kvm_rmap_unlock(head, old);
    preempt_enable();
  },
);
