import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { bitfield_load, bitfield_store, READ_ONCE } from "../kernel/atomic.js";
import {
  lockdep_assert_held,
  lockdep_assert_held_read,
  lockdep_assert_held_write,
} from "../kernel/lockdep.js";
import { rcu_barrier, rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { type ListHead, type ListWalk, list_empty, list_next_entry } from "../kernel/rculist.js";
import { refcount_inc_not_zero, refcount_read } from "../kernel/refcount.js";
import { read_lock, read_unlock, write_lock, write_unlock } from "../kernel/rwlock.js";
import { KVM_BUG_ON, WARN_ON, WARN_ON_ONCE } from "../kernel/warn.js";
import { alloc_workqueue, destroy_workqueue, flush_workqueue } from "../kernel/workqueue.js";
import {
  check_fast_zap_complete,
  check_work_drained,
  ghost_fast_zap_begin,
  ghost_gift,
  ghost_gift_put,
  ghost_invalidation_begin,
  ghost_invalidation_end,
  ghost_scheduled_consumed,
  ghost_scheduled_set,
  ghost_work_snapshot,
  INV,
} from "./invariants/roots.js";
import { ROLE } from "./role.js";
import {
  __for_each_tdp_mmu_root_yield_safe,
  for_each_tdp_mmu_root_yield_safe,
  KVM_ALL_ROOTS,
  KVM_DIRECT_ROOTS,
  KVM_INVALID_ROOTS,
  KVM_VALID_ROOTS,
} from "./tdp_mmu_iter_roots.js";
import { kvm_tdp_mmu_get_root, kvm_tdp_mmu_put_root, tdp_mmu_schedule_zap_root } from "./tdp_mmu_root.js";
import { tdp_mmu_zap_root } from "./tdp_mmu_zap.js";
import { kvm_flush_remote_tlbs } from "./tlb.js";
import type { Kvm, KvmMmuPage } from "./types.js";
import { kvm_make_all_cpus_request, obsoleteRootsRequest } from "./vcpu.js";

export { tdp_mmu_schedule_zap_root, tdp_mmu_zap_root_work } from "./tdp_mmu_root.js";

/**
 * Fast invalidation of every root and the zapping that must follow it before
 * the caller may go on: kvm_mmu_zap_all_fast() (memslot deletion), the
 * mmu_notifier release path, and VM teardown (kvm_mmu_uninit_tdp_mmu()), each
 * in the shape of the era selected by kvm.features.
 */

/**
 * kvm_mmu_init_tdp_mmu() (tdp_mmu.c): the root list and tdp_mmu_pages_lock are part of
 * kvm_create_vm(); in 5.18-6.5 (22b94c4b63eb until 0df9dab891ff) the VM also gets its own
 * workqueue for zapping roots. Call from program setup.
 */
export function kvm_mmu_init_tdp_mmu(kvm: Kvm, maxActive = 0): void {
  if (kvm.features.asyncZapWorker && kvm.tdp_mmu_zap_wq === null) {
    // alloc_workqueue("kvm", WQ_UNBOUND | WQ_MEM_RECLAIM | WQ_CPU_INTENSIVE, 0). A scenario may
    // limit max_active to ask how the protocol fares with fewer concurrent zaps.
    kvm.tdp_mmu_zap_wq = alloc_workqueue("kvm", maxActive);
  }
}

/** list_for_each_entry() / list_for_each_entry_rcu() over tdp_mmu_roots, as a callback loop. */
function* walk_roots(kvm: Kvm, walk: ListWalk, body: (root: KvmMmuPage) => Gen<void>): Gen<void> {
  const head: ListHead<KvmMmuPage> = kvm.tdp_mmu_roots;
  for (
    let n = yield* list_next_entry(head, head, walk);
    n !== null;
    n = yield* list_next_entry(head, n, walk)
  ) {
    yield* body(n.container!);
  }
}

/**
 * The lock assertion of invalidate_all_roots from 6.4 (edbdb43fc96b, as squashed after the syzbot
 * report): the write lock is required unless the VM is being destroyed (users_count == 0) or was
 * never given a vCPU (the KVM_CREATE_VM error path), when mmu_lock is not taken at all.
 */
function* assert_write_unless_teardown(kvm: Kvm): Gen<void> {
  const users = yield* READ_ONCE(kvm.users_count);
  if (users !== 0 && kvm.created_vcpus !== 0) lockdep_assert_held_write(kvm.mmu_lock);
}

/**
 * kvm_tdp_mmu_invalidate_all_roots() (tdp_mmu.c, 5.13 b7cccd397f31 to 6.13). Per era:
 * - E2 (5.13-5.17): write lock; every root whose count can be raised (already-invalid ones too)
 *   gets an extra reference gifted to kvm_tdp_mmu_zap_invalidated_roots() and is marked invalid;
 * - E3 (5.18 22b94c4b63eb): write lock; already-invalid roots are skipped (their work item is
 *   queued already, seed 002); the rest get a reference (WARN if that fails), are marked invalid
 *   and are queued on the worker, which owns the gifted reference;
 * - E4 (6.4 edbdb43fc96b): no new reference, the TDP MMU's own is gifted to the worker; at
 *   teardown mmu_lock is not held and the worker may unlink roots concurrently, so the walk runs
 *   under rcu_read_lock() (seed 000, features.teardownInvalidateUnderRcu);
 * - E5+ (6.6 0df9dab891ff): mark scheduled_root_to_zap together with invalid; nothing else.
 * Marking a root invalid is a plain bitfield store: `root->role.invalid = true`.
 */
export const kvm_tdp_mmu_invalidate_all_roots = modelFn(
  "kvm_tdp_mmu_invalidate_all_roots",
  function* (kvm: Kvm): Gen<void> {
    yield* invalidate_roots(kvm, KVM_VALID_ROOTS);
  },
);

/**
 * kvm_tdp_mmu_invalidate_roots() (tdp_mmu.c, 6.14 a89ecbb56bc7): the E5+ invalidation limited to
 * the roots of `root_types`; asking for invalid roots makes no sense and WARNs.
 */
export const kvm_tdp_mmu_invalidate_roots = modelFn(
  "kvm_tdp_mmu_invalidate_roots",
  function* (kvm: Kvm, root_types: number): Gen<void> {
    if (WARN_ON_ONCE((root_types & KVM_INVALID_ROOTS) !== 0, "root_types & KVM_INVALID_ROOTS")) {
      root_types &= ~KVM_INVALID_ROOTS;
    }
    yield* invalidate_roots(kvm, root_types);
  },
);

/** Every root is a direct root in the model (no TDX mirror roots), so only DIRECT matters. */
function root_type_matches(root_types: number): boolean {
  return (root_types & KVM_DIRECT_ROOTS) !== 0;
}

function* invalidate_roots(kvm: Kvm, root_types: number): Gen<void> {
  const f = kvm.features;

  if (f.scheduledRootToZap) {
    yield* assert_write_unless_teardown(kvm);
    // At teardown nothing else can touch the list: a plain walk.
    yield* walk_roots(kvm, { rcu: false }, function* (root) {
      if (!root_type_matches(root_types)) return;
      // Invalid roots can outlive a memslot update (others hold references); they must only be
      // zapped before it completes, which the scheduled flag of their own invalidation ensures.
      if ((yield* bitfield_load(root.role, ROLE.invalid)) === 0) {
        // tdp_mmu_scheduled_root_to_zap is protected by slots_lock (or single-threaded teardown).
        root.tdp_mmu_scheduled_root_to_zap = true;
        ghost_scheduled_set(kvm, root);
        ghost_gift(kvm, root);
        yield* bitfield_store(root.role, ROLE.invalid, 1);
      }
    });
    return;
  }

  if (f.asyncZapWorker && f.persistentRoots) {
    yield* assert_write_unless_teardown(kvm);
    const rcu = f.teardownInvalidateUnderRcu;
    if (rcu) yield* rcu_read_lock();
    yield* walk_roots(kvm, { rcu }, function* (root) {
      if ((yield* bitfield_load(root.role, ROLE.invalid)) === 0) {
        yield* bitfield_store(root.role, ROLE.invalid, 1);
        // The TDP MMU's own reference is what the worker will put.
        ghost_gift(kvm, root);
        yield* tdp_mmu_schedule_zap_root(kvm, root);
      }
    });
    if (rcu) yield* rcu_read_unlock();
    return;
  }

  lockdep_assert_held_write(kvm.mmu_lock);
  if (f.asyncZapWorker) {
    yield* walk_roots(kvm, { rcu: false }, function* (root) {
      if ((yield* bitfield_load(root.role, ROLE.invalid)) !== 0) return;
      const got = yield* kvm_tdp_mmu_get_root(root);
      if (WARN_ON_ONCE(!got, "!kvm_tdp_mmu_get_root(root)", { root: root.kobj.name })) return;
      ghost_gift(kvm, root);
      yield* bitfield_store(root.role, ROLE.invalid, 1);
      yield* tdp_mmu_schedule_zap_root(kvm, root);
    });
    return;
  }

  // E2: a count of 0 means the root is being torn down by its last put; skip it.
  yield* walk_roots(kvm, { rcu: false }, function* (root) {
    if (yield* refcount_inc_not_zero(root.tdp_mmu_root_count)) {
      ghost_gift(kvm, root);
      yield* bitfield_store(root.role, ROLE.invalid, 1);
    }
  });
}

/**
 * next_invalidated_root() (tdp_mmu.c, 5.13-5.17): under RCU, the next root after `prev` (or the
 * first) that is invalid and still referenced. It assumes every such root holds a reference gifted
 * by invalidate_all_roots: the "latent issue" of seed 002.
 */
export const next_invalidated_root = modelFn(
  "next_invalidated_root",
  function* (kvm: Kvm, prev: KvmMmuPage | null): Gen<KvmMmuPage | null> {
    const head = kvm.tdp_mmu_roots;
    const walk = { rcu: true };
    let n = yield* list_next_entry(head, prev !== null ? prev.link : head, walk);
    while (n !== null) {
      const r = n.container!;
      if (
        (yield* bitfield_load(r.role, ROLE.invalid)) === 1 &&
        (yield* refcount_read(r.tdp_mmu_root_count)) !== 0
      ) {
        return r;
      }
      n = yield* list_next_entry(head, n, walk);
    }
    return null;
  },
);

/**
 * kvm_tdp_mmu_zap_invalidated_roots() (tdp_mmu.c). Per era:
 * - E2 (5.13-5.17): the caller holds the read lock; walk next_invalidated_root() (the next root is
 *   found before the current one is zapped), zap each with yielding, put the gifted reference,
 *   flush at the end if anything was zapped;
 * - E3-E4 (5.18-6.5): flush_workqueue(tdp_mmu_zap_wq): the queued items are the list;
 * - E5+ (6.6 0df9dab891ff): take the read lock (write when !shared: the 6.14+ teardown), walk all
 *   roots yield-safe, and for each root whose scheduled flag is set: clear it, KVM_BUG_ON unless
 *   invalid, zap it, and only then put the TDP MMU's reference, so that mmu_notifiers can reach the
 *   root while the zap yields. The iterator's own reference keeps the root alive across the put.
 */
export const kvm_tdp_mmu_zap_invalidated_roots = modelFn(
  "kvm_tdp_mmu_zap_invalidated_roots",
  function* (kvm: Kvm, shared: boolean = true): Gen<void> {
    const f = kvm.features;

    if (f.scheduledRootToZap) {
      if (shared) yield* read_lock(kvm.mmu_lock);
      else yield* write_lock(kvm.mmu_lock);
      yield* for_each_tdp_mmu_root_yield_safe(kvm, shared, function* (root) {
        if (!root.tdp_mmu_scheduled_root_to_zap) return undefined;
        root.tdp_mmu_scheduled_root_to_zap = false;
        ghost_scheduled_consumed(kvm, root);
        const invalid = (yield* bitfield_load(root.role, ROLE.invalid)) === 1;
        KVM_BUG_ON(!invalid, kvm, "!root->role.invalid", { root: root.kobj.name });
        // No TLB flush: a root is flushed locally when a vCPU loads it (kvm_mmu_load()).
        yield* tdp_mmu_zap_root(kvm, root, shared);
        ghost_gift_put(kvm, root, INV.zapOnce);
        yield* kvm_tdp_mmu_put_root(kvm, root, shared);
        return undefined;
      });
      if (shared) yield* read_unlock(kvm.mmu_lock);
      else yield* write_unlock(kvm.mmu_lock);
      return;
    }

    if (f.asyncZapWorker) {
      const wq = kvm.tdp_mmu_zap_wq;
      if (wq === null) throw new Error("no tdp_mmu_zap_wq: call kvm_mmu_init_tdp_mmu() in setup");
      const before = ghost_work_snapshot(kvm);
      yield* flush_workqueue(wq);
      check_work_drained(kvm, "kvm_tdp_mmu_zap_invalidated_roots", before);
      return;
    }

    lockdep_assert_held_read(kvm.mmu_lock);
    let flush = false;
    yield* rcu_read_lock();
    let root = yield* next_invalidated_root(kvm, null);
    while (root !== null) {
      const next_root = yield* next_invalidated_root(kvm, root);
      yield* rcu_read_unlock();
      flush = (yield* tdp_mmu_zap_root(kvm, root, true)) || flush;
      // The reference kvm_tdp_mmu_invalidate_all_roots() took.
      ghost_gift_put(kvm, root, INV.zapOnce);
      yield* kvm_tdp_mmu_put_root(kvm, root, true);
      root = next_root;
      yield* rcu_read_lock();
    }
    yield* rcu_read_unlock();
    if (flush) yield* kvm_flush_remote_tlbs(kvm);
  },
);

/**
 * kvm_mmu_zap_all_fast() (mmu.c, TDP MMU part). With slots_lock held (so one fast zap at a time):
 * under the write mmu_lock invalidate the roots (6.14+: direct roots only) and, in the same
 * critical section, make every vCPU drop obsolete roots (KVM_REQ_MMU_FREE_OBSOLETE_ROOTS; 5.17:
 * KVM_REQ_MMU_RELOAD), so that no vCPU enters the guest on an invalidated root. Then zap them
 * before returning (E2 under the read lock taken here; later zap_invalidated_roots takes care of
 * it): after the memslot update the notifiers could no longer reach the old slot's SPTEs.
 */
export const kvm_mmu_zap_all_fast = modelFn("kvm_mmu_zap_all_fast", function* (kvm: Kvm): Gen<void> {
  const f = kvm.features;
  lockdep_assert_held(kvm.slots_lock);

  yield* write_lock(kvm.mmu_lock);
  ghost_invalidation_begin(kvm);
  if (f.rootTypes) yield* kvm_tdp_mmu_invalidate_roots(kvm, KVM_DIRECT_ROOTS);
  else yield* kvm_tdp_mmu_invalidate_all_roots(kvm);
  const serial = ghost_fast_zap_begin(kvm);
  yield* kvm_make_all_cpus_request(kvm, obsoleteRootsRequest(f));
  ghost_invalidation_end(kvm);
  yield* write_unlock(kvm.mmu_lock);

  if (!f.asyncZapWorker && !f.scheduledRootToZap) {
    yield* read_lock(kvm.mmu_lock);
    yield* kvm_tdp_mmu_zap_invalidated_roots(kvm);
    yield* read_unlock(kvm.mmu_lock);
  } else {
    yield* kvm_tdp_mmu_zap_invalidated_roots(kvm, true);
  }
  check_fast_zap_complete(kvm, serial);
});

/**
 * kvm_tdp_mmu_zap_all() (tdp_mmu.c): with mmu_lock held for write, zap every root, invalid ones
 * included (6.14+: direct and invalid), even if a fast zap or the worker is zapping it too. No
 * flush: only the mmu_notifier release and VM destruction get here, and no vCPU runs again.
 */
export const kvm_tdp_mmu_zap_all = modelFn("kvm_tdp_mmu_zap_all", function* (kvm: Kvm): Gen<void> {
  lockdep_assert_held_write(kvm.mmu_lock);
  const types = kvm.features.rootTypes ? KVM_DIRECT_ROOTS | KVM_INVALID_ROOTS : KVM_ALL_ROOTS;
  yield* __for_each_tdp_mmu_root_yield_safe(kvm, -1, types, false, function* (root) {
    yield* tdp_mmu_zap_root(kvm, root, false);
    return undefined;
  });
});

/** kvm_mmu_zap_all() (mmu.c): the shadow MMU's pages (none in the model), then every TDP root. */
export const kvm_mmu_zap_all = modelFn("kvm_mmu_zap_all", function* (kvm: Kvm): Gen<void> {
  yield* write_lock(kvm.mmu_lock);
  yield* kvm_tdp_mmu_zap_all(kvm);
  yield* write_unlock(kvm.mmu_lock);
});

/**
 * kvm_mmu_uninit_tdp_mmu() (tdp_mmu.c), in each era's teardown order (kernel-protocol 3.16):
 * - E2: only the checks, then rcu_barrier();
 * - E3 (5.18): destroy_workqueue() runs every queued zap (vCPU unload made every root defunct and
 *   queued it), then the checks, then rcu_barrier();
 * - E4 (6.4): invalidate every root without mmu_lock (seed 000), then destroy_workqueue();
 * - E5+ (6.6): invalidate every root without mmu_lock, zap them (read lock; 6.14+ write lock via
 *   shared=false), so each root's last reference is put.
 * Then WARN if a page table or a root is left, and wait for the RCU callbacks that free them.
 */
export const kvm_mmu_uninit_tdp_mmu = modelFn("kvm_mmu_uninit_tdp_mmu", function* (kvm: Kvm): Gen<void> {
  const f = kvm.features;
  if (f.scheduledRootToZap) {
    if (f.rootTypes) yield* kvm_tdp_mmu_invalidate_roots(kvm, KVM_VALID_ROOTS);
    else yield* kvm_tdp_mmu_invalidate_all_roots(kvm);
    yield* kvm_tdp_mmu_zap_invalidated_roots(kvm, !f.rootTypes);
  } else if (f.asyncZapWorker) {
    if (f.persistentRoots) yield* kvm_tdp_mmu_invalidate_all_roots(kvm);
    const wq = kvm.tdp_mmu_zap_wq;
    if (wq === null) throw new Error("no tdp_mmu_zap_wq: call kvm_mmu_init_tdp_mmu() in setup");
    // Destroying the workqueue flushes it first.
    yield* destroy_workqueue(wq);
    check_work_drained(kvm, "kvm_mmu_uninit_tdp_mmu");
  }
  WARN_ON((yield* READ_ONCE(kvm.tdp_mmu_pages)) !== 0, "atomic64_read(&kvm->arch.tdp_mmu_pages)");
  WARN_ON(!(yield* list_empty(kvm.tdp_mmu_roots)), "!list_empty(&kvm->arch.tdp_mmu_roots)");
  // Putting the last reference to a zapped root queued an RCU callback; let them all run.
  yield* rcu_barrier();
});
