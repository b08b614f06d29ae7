import { host } from "../engine/host.js";
import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { bitfield_load, READ_ONCE, xchg } from "../kernel/atomic.js";
import { lockdep_assert_held_write } from "../kernel/lockdep.js";
import { call_rcu } from "../kernel/rcu.js";
import { list_add_rcu, list_del_rcu, list_next_entry } from "../kernel/rculist.js";
import { refcount_dec_and_test, refcount_inc_not_zero, refcount_set } from "../kernel/refcount.js";
import { read_lock, read_unlock } from "../kernel/rwlock.js";
import { spin_lock, spin_unlock } from "../kernel/spinlock.js";
import { KVM_BUG_ON, WARN_ON_ONCE } from "../kernel/warn.js";
import { INIT_WORK, queue_work, type WorkStruct } from "../kernel/workqueue.js";
import {
  ghost_gift,
  ghost_root_free_queued,
  ghost_root_published,
  ghost_work_queued,
  ghost_work_started,
  ghost_worker_put,
} from "./invariants/roots.js";
import { alloc_root_frame, tdp_mmu_alloc_sp } from "./kvm.js";
import { ROLE, roleAsId, tdpRootRole } from "./role.js";
import { for_each_tdp_mmu_root, for_each_valid_tdp_mmu_root_yield_safe } from "./tdp_mmu_iter_roots.js";
import { kvm_lockdep_assert_mmu_lock_held, tdp_mmu_free_sp_rcu_callback } from "./tdp_mmu_spte.js";
import { tdp_mmu_zap_root } from "./tdp_mmu_zap.js";
import type { Kvm, KvmMmuPage, Vcpu } from "./types.js";

/**
 * The life of one TDP MMU root: taking and dropping references, marking it
 * invalid, allocating or reusing it for a vCPU, and (E3-E4) the asynchronous
 * worker that zaps it. Each era's shape is selected by kvm.features:
 * - E2 (neither defunctRoots nor persistentRoots): the last put unlinks the
 *   root and zaps it on the spot, without yielding;
 * - E3 (defunctRoots): the last put on a valid root marks it invalid, gives
 *   the count back to 1 and hands the zap to the worker (seed 003's shape);
 * - E4+ (persistentRoots): the TDP MMU owns a reference on every valid root,
 *   so the last put always finds an invalid, already zapped root.
 */

/** kvm_mmu_page_as_id(): the address space of a page; smm never changes in a role word, so no access. */
export function kvm_mmu_page_as_id(sp: KvmMmuPage): number {
  return roleAsId(sp.role.v);
}

/**
 * kvm_tdp_mmu_get_root() (tdp_mmu.h): take a reference unless the count is 0. Before
 * 04dc4e6ce274 (5.16-rc) it also refused invalid roots; since then callers filter those.
 */
export const kvm_tdp_mmu_get_root = modelFn(
  "kvm_tdp_mmu_get_root",
  function* (root: KvmMmuPage): Gen<boolean> {
    const kvm = rootKvm(root);
    if (kvm !== null && !kvm.features.getRootIgnoresInvalid) {
      if ((yield* bitfield_load(root.role, ROLE.invalid)) === 1) return false;
    }
    return yield* refcount_inc_not_zero(root.tdp_mmu_root_count);
  },
);

/**
 * The VM a root belongs to. The kernel passes kvm (E2) or needs none (later); the model needs it
 * only to read the feature set, so it remembers the owner at allocation, falling back to the VM
 * the program created.
 */
const rootOwner = new WeakMap<KvmMmuPage, Kvm>();

function rootKvm(root: KvmMmuPage): Kvm | null {
  return rootOwner.get(root) ?? (host().env.get("mmu.kvm") as Kvm | undefined) ?? null;
}

/**
 * kvm_tdp_root_mark_invalid() (tdp_mmu.c, 5.18 efd995dae5eb to 6.3): set role.invalid and return
 * its old value in one atomic step. role.invalid is one bit of a word and cannot be xchg'ed on its
 * own (seed 003), so the whole role word is exchanged: only the invalid bit can change, hence a
 * plain load of the word followed by xchg() of the word with the bit set is enough.
 */
export const kvm_tdp_root_mark_invalid = modelFn(
  "kvm_tdp_root_mark_invalid",
  function* (root: KvmMmuPage): Gen<boolean> {
    const word = yield* READ_ONCE(root.role);
    const old = yield* xchg(root.role, ROLE.invalid.set(word, 1));
    return ROLE.invalid.get(old) === 1;
  },
);

/**
 * The tail of kvm_tdp_mmu_put_root() once the count reached 0 (all eras): unlink the root from
 * tdp_mmu_roots (readers may still stand on it) and free it after a grace period.
 */
export function* tdp_mmu_unlink_and_free_root(
  kvm: Kvm,
  root: KvmMmuPage,
  zapFirst: boolean,
  shared: boolean,
): Gen<void> {
  // The list may be changed under the read mmu_lock, so writers serialize on tdp_mmu_pages_lock.
  yield* spin_lock(kvm.tdp_mmu_pages_lock);
  yield* list_del_rcu(root.link);
  yield* spin_unlock(kvm.tdp_mmu_pages_lock);
  if (zapFirst) {
    // E2: zap_gfn_range(kvm, root, 0, -1ull, can_yield=false, flush=false, shared). The root is
    // unreachable now, so nobody else will zap it; the putter does, without yielding: mmu_lock
    // stays held throughout, which is why a vCPU could block for minutes (seed 002).
    yield* tdp_mmu_zap_root(kvm, root, shared, false);
  }
  ghost_root_free_queued(kvm, root);
  yield* call_rcu(root.rcu_head, () => tdp_mmu_free_sp_rcu_callback(root, kvm), `free ${root.kobj.name}`);
}

/**
 * kvm_tdp_mmu_put_root() (tdp_mmu.c). Drop a reference; the last one ends the root's life:
 * - E2 (5.13-5.17): unlink under tdp_mmu_pages_lock, zap the whole tree without yielding, call_rcu;
 * - E3 (5.18 efd995dae5eb, to 6.3): if the root was still valid ("defunct"), mark it invalid with
 *   an xchg of the role word, resurrect the count to 1 as the worker's reference and queue the
 *   worker; if it was already invalid, unlink and call_rcu;
 * - E4+ (6.4 edbdb43fc96b): KVM_BUG_ON unless invalid (the TDP MMU's own reference protects valid
 *   roots), unlink, call_rcu. From 6.9 (576a15de8d29) there is no `shared` and no lock assertion.
 */
export const kvm_tdp_mmu_put_root = modelFn(
  "kvm_tdp_mmu_put_root",
  function* (kvm: Kvm, root: KvmMmuPage, shared: boolean = false): Gen<void> {
    const f = kvm.features;
    if (!f.rootFreeUnderReadLock) kvm_lockdep_assert_mmu_lock_held(kvm, shared);

    if (!(yield* refcount_dec_and_test(root.tdp_mmu_root_count))) return;

    if (f.defunctRoots) {
      // Readers take references on valid roots only, so nobody can get this one now; writers may
      // (they walk invalid roots too), which is why the worker's put need not be the last one.
      if (!(yield* kvm_tdp_root_mark_invalid(root))) {
        yield* refcount_set(root.tdp_mmu_root_count, 1);
        ghost_gift(kvm, root);
        // Queued before mmu_lock is released: invalidate_all_roots skips invalid roots, so this
        // queue is what makes zap_all_fast wait for the root (seed 002).
        yield* tdp_mmu_schedule_zap_root(kvm, root);
        return;
      }
      yield* tdp_mmu_unlink_and_free_root(kvm, root, false, shared);
      return;
    }

    if (f.persistentRoots) {
      const invalid = (yield* bitfield_load(root.role, ROLE.invalid)) === 1;
      KVM_BUG_ON(!root.isRoot || !invalid, kvm, "!is_tdp_mmu_page(root) || !root->role.invalid", {
        root: root.kobj.name,
      });
      yield* tdp_mmu_unlink_and_free_root(kvm, root, false, shared);
      return;
    }

    yield* tdp_mmu_unlink_and_free_root(kvm, root, true, shared);
  },
);

/**
 * tdp_mmu_zap_root_work() (tdp_mmu.c, 5.18 22b94c4b63eb to 6.5): the worker zaps the root it was
 * gifted under the read lock, without a TLB flush (a root is flushed locally when loaded), then
 * drops the gift through kvm_tdp_mmu_put_root() so the "already invalid -> free" branch runs.
 */
export const tdp_mmu_zap_root_work = modelFn(
  "tdp_mmu_zap_root_work",
  function* (work: WorkStruct): Gen<void> {
    const data = asyncData.get(work);
    if (data === undefined) throw new Error(`tdp_mmu_zap_root_work: ${work.name} has no root`);
    const { kvm, root } = data;
    ghost_work_started(kvm, root);
    yield* read_lock(kvm.mmu_lock);
    yield* tdp_mmu_zap_root(kvm, root, true);
    // The reference the worker was given is still held until the put below runs: the ghost
    // records the put with it, so no check in between can see the root as abandoned.
    yield* kvm_tdp_mmu_put_root(kvm, root, true);
    ghost_worker_put(kvm, root);
    yield* read_unlock(kvm.mmu_lock);
  },
);

/** container_of(work) + root->tdp_mmu_async_data: the root and VM a work item belongs to. */
const asyncData = new WeakMap<WorkStruct, { kvm: Kvm; root: KvmMmuPage }>();

/**
 * tdp_mmu_schedule_zap_root() (tdp_mmu.c, 5.18 to 6.5): record the VM in the root, initialise its
 * work item and queue it on tdp_mmu_zap_wq. Called with mmu_lock held (write from invalidation,
 * any mode from put_root).
 */
export const tdp_mmu_schedule_zap_root = modelFn(
  "tdp_mmu_schedule_zap_root",
  function* (kvm: Kvm, root: KvmMmuPage): Gen<void> {
    const work = root.tdp_mmu_async_work;
    const wq = kvm.tdp_mmu_zap_wq;
    if (work === null || wq === null) {
      throw new Error(
        "tdp_mmu_schedule_zap_root without a zap workqueue: call kvm_mmu_init_tdp_mmu() in setup",
      );
    }
    asyncData.set(work, { kvm, root });
    ghost_work_queued(kvm, root);
    yield* INIT_WORK(work, tdp_mmu_zap_root_work);
    yield* queue_work(wq, work);
  },
);

/** The root role a vCPU asks for: direct TDP root of the VM's level in the vCPU's address space. */
export function vcpu_root_role(vcpu: Vcpu): number {
  return tdpRootRole(vcpu.kvm.geometry.rootLevel, vcpu.smm);
}

/** Allocate a root page for `role` (not yet visible to anyone). */
function* alloc_root(kvm: Kvm, role: number): Gen<KvmMmuPage> {
  yield* alloc_root_frame(kvm);
  const root = tdp_mmu_alloc_sp(kvm, role, 0, null, true);
  rootOwner.set(root, kvm);
  return root;
}

/** Publish a new root on tdp_mmu_roots (newest first), under tdp_mmu_pages_lock. */
function* publish_root(kvm: Kvm, root: KvmMmuPage, takeLock: boolean): Gen<void> {
  if (takeLock) yield* spin_lock(kvm.tdp_mmu_pages_lock);
  yield* list_add_rcu(root.link, kvm.tdp_mmu_roots);
  ghost_root_published(kvm, root);
  if (takeLock) yield* spin_unlock(kvm.tdp_mmu_pages_lock);
}

/**
 * kvm_tdp_mmu_get_vcpu_root_hpa() (tdp_mmu.c, 5.13 to 6.8), with mmu_lock held for write: reuse a
 * listed root whose whole role word matches (so never an invalid one) and whose count can still be
 * raised; else allocate one with count 1 (2 from 6.4: the TDP MMU keeps its own reference) and
 * publish it under tdp_mmu_pages_lock.
 */
export const kvm_tdp_mmu_get_vcpu_root_hpa = modelFn(
  "kvm_tdp_mmu_get_vcpu_root_hpa",
  function* (vcpu: Vcpu): Gen<KvmMmuPage> {
    const kvm = vcpu.kvm;
    const role = vcpu_root_role(vcpu);
    lockdep_assert_held_write(kvm.mmu_lock);

    let found: KvmMmuPage | null = null;
    yield* for_each_tdp_mmu_root(kvm, roleAsId(role), function* (root) {
      if ((yield* READ_ONCE(root.role)) === role && (yield* kvm_tdp_mmu_get_root(root))) {
        found = root;
        return "break";
      }
      return undefined;
    });
    if (found !== null) return found;

    const root = yield* alloc_root(kvm, role);
    yield* refcount_set(root.tdp_mmu_root_count, kvm.features.persistentRoots ? 2 : 1);
    yield* publish_root(kvm, root, true);
    return root;
  },
);

/**
 * kvm_tdp_mmu_alloc_root() (tdp_mmu.c, 6.9 f5238c2a60f1 + dab285e4ec73), taking the read lock
 * itself: (1) a yield-safe walk of valid roots; on a role match keep the iterator's reference as
 * the vCPU's; (2) else under tdp_mmu_pages_lock walk the list by hand again, since another vCPU may
 * have just added one, WARNing if its count cannot be raised (a last put needs invalidation, which
 * needs the write lock); (3) else allocate with count 2 and publish. Sets the vCPU's root.
 */
export const kvm_tdp_mmu_alloc_root = modelFn(
  "kvm_tdp_mmu_alloc_root",
  function* (vcpu: Vcpu): Gen<KvmMmuPage> {
    const kvm = vcpu.kvm;
    const role = vcpu_root_role(vcpu);
    const as_id = roleAsId(role);

    yield* read_lock(kvm.mmu_lock);
    let root: KvmMmuPage | null = yield* for_each_valid_tdp_mmu_root_yield_safe(
      kvm,
      as_id,
      true,
      function* (r) {
        return (yield* READ_ONCE(r.role)) === role ? "keep" : undefined;
      },
    );

    if (root === null) {
      yield* spin_lock(kvm.tdp_mmu_pages_lock);
      // A plain walk: the standard iterators assume tdp_mmu_pages_lock is not held.
      root = yield* find_root_locked(kvm, role);
      if (root === null) {
        root = yield* alloc_root(kvm, role);
        yield* refcount_set(root.tdp_mmu_root_count, 2);
        yield* publish_root(kvm, root, false);
      }
      yield* spin_unlock(kvm.tdp_mmu_pages_lock);
    }
    yield* read_unlock(kvm.mmu_lock);
    // If the root is invalidated from here on, the FREE_OBSOLETE_ROOTS request keeps the vCPU out of
    // the guest, and the vCPU's reference keeps the root alive.
    vcpu.root = root;
    return root;
  },
);

/** Step (2) of kvm_tdp_mmu_alloc_root(): list_for_each_entry under tdp_mmu_pages_lock. */
function* find_root_locked(kvm: Kvm, role: number): Gen<KvmMmuPage | null> {
  const head = kvm.tdp_mmu_roots;
  for (let n = yield* list_next_entry(head, head, { rcu: false }); n !== null; ) {
    const r = n.container!;
    if ((yield* READ_ONCE(r.role)) === role) {
      const got = yield* kvm_tdp_mmu_get_root(r);
      if (!WARN_ON_ONCE(!got, "!kvm_tdp_mmu_get_root(root)", { root: r.kobj.name })) return r;
    }
    n = yield* list_next_entry(head, n, { rcu: false });
  }
  return null;
}

/** Record a root's owner when the model meets one it did not allocate (tests that build roots by hand). */
export function tdp_mmu_root_set_owner(kvm: Kvm, root: KvmMmuPage): void {
  rootOwner.set(root, kvm);
}
