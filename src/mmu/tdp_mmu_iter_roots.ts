import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { bitfield_load } from "../kernel/atomic.js";
import { lockdep_assert_held, lockdep_is_held } from "../kernel/lockdep.js";
import { ktask } from "../kernel/machine.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import { type ListHead, list_next_entry } from "../kernel/rculist.js";
import { ROLE } from "./role.js";
import { kvm_mmu_page_as_id, kvm_tdp_mmu_get_root, kvm_tdp_mmu_put_root } from "./tdp_mmu_root.js";
import { kvm_lockdep_assert_mmu_lock_held } from "./tdp_mmu_spte.js";
import type { Kvm, KvmMmuPage } from "./types.js";

/**
 * Walks over kvm->arch.tdp_mmu_roots, as the kernel's iterator macros do them.
 * C `for` macros become functions taking the loop body as a generator; the
 * body's return value plays the part of `break`.
 */

/** enum kvm_tdp_mmu_root_types (tdp_mmu.h, 6.14 a89ecbb56bc7); before 6.14 only valid/all existed. */
export const KVM_DIRECT_ROOTS = 1;
export const KVM_MIRROR_ROOTS = 2;
export const KVM_VALID_ROOTS = KVM_DIRECT_ROOTS | KVM_MIRROR_ROOTS;
export const KVM_INVALID_ROOTS = 4;
export const KVM_ALL_ROOTS = KVM_VALID_ROOTS | KVM_INVALID_ROOTS;

/**
 * What a yield-safe loop body returns: nothing to go on; "break" to leave the loop, dropping the
 * reference on the current root (the by-hand put the kernel's callers write before `break`);
 * "keep" to leave the loop keeping the reference (the caller now owns it).
 */
export type RootLoopCtl = undefined | "break" | "keep";

/** A body of the reference-free walks: return "break" to stop. */
export type RootWalkCtl = undefined | "break";

/**
 * tdp_mmu_root_match() (tdp_mmu.c, 6.14): does the root belong to `types`? Before 6.14 the test
 * was `!only_valid || !root->role.invalid`; both read role.invalid only when invalid roots are not
 * wanted. Mirror roots (TDX) are never created by the model, so every root is a direct root.
 */
function* tdp_mmu_root_match(root: KvmMmuPage, types: number): Gen<boolean> {
  if ((types & KVM_INVALID_ROOTS) === 0 && (yield* bitfield_load(root.role, ROLE.invalid)) === 1)
    return false;
  return (types & KVM_DIRECT_ROOTS) !== 0;
}

/**
 * tdp_mmu_next_root() (tdp_mmu.c, 5.13+; `only_valid` 5.16, `types` 6.14): inside an RCU section,
 * take the first root (or the one after `prev_root`, reachable even if prev_root was unlinked
 * meanwhile, since list_del_rcu keeps ->next) that matches `types` and whose count can be raised.
 * Only after the RCU section, put prev_root: the next reference is taken before the previous one
 * is dropped. `shared` is the lock mode the put must assert (E2-E5).
 */
export const tdp_mmu_next_root = modelFn(
  "tdp_mmu_next_root",
  function* (kvm: Kvm, prev_root: KvmMmuPage | null, types: number, shared: boolean): Gen<KvmMmuPage | null> {
    // The roots are RCU-protected, but role.invalid is protected by mmu_lock.
    lockdep_assert_held(kvm.mmu_lock);
    const head = kvm.tdp_mmu_roots;
    yield* rcu_read_lock();
    let n = yield* list_next_entry(head, prev_root !== null ? prev_root.link : head, { rcu: true });
    let next_root: KvmMmuPage | null = null;
    while (n !== null) {
      const r = n.container!;
      if ((yield* tdp_mmu_root_match(r, types)) && (yield* kvm_tdp_mmu_get_root(r))) {
        next_root = r;
        break;
      }
      n = yield* list_next_entry(head, n, { rcu: true });
    }
    yield* rcu_read_unlock();
    if (prev_root !== null) yield* kvm_tdp_mmu_put_root(kvm, prev_root, shared);
    return next_root;
  },
);

/**
 * Leave a yield-safe walk early: drop the reference the iterator holds on `root`, as the kernel's
 * callers do by hand before `break` (e.g. kvm_tdp_mmu_try_split_huge_pages on error).
 */
export function* tdp_mmu_root_iter_break(kvm: Kvm, root: KvmMmuPage, shared: boolean): Gen<void> {
  yield* kvm_tdp_mmu_put_root(kvm, root, shared);
}

/**
 * __for_each_tdp_mmu_root_yield_safe() (tdp_mmu.c): the body runs holding a reference on the root,
 * so it may drop mmu_lock. `as_id` < 0 means every address space (6.6+). mmu_lock must be held in
 * some mode at every step (the macro's lockdep assertion, 6.6+). Returns the root the body kept
 * ("keep"), else null.
 */
export function* __for_each_tdp_mmu_root_yield_safe(
  kvm: Kvm,
  as_id: number,
  types: number,
  shared: boolean,
  body: (root: KvmMmuPage) => Gen<RootLoopCtl>,
): Gen<KvmMmuPage | null> {
  let root = yield* tdp_mmu_next_root(kvm, null, types, shared);
  for (;;) {
    lockdep_assert_held(kvm.mmu_lock);
    if (root === null) return null;
    if (as_id < 0 || kvm_mmu_page_as_id(root) === as_id) {
      const ctl = yield* body(root);
      if (ctl === "keep") return root;
      if (ctl === "break") {
        yield* tdp_mmu_root_iter_break(kvm, root, shared);
        return null;
      }
    }
    root = yield* tdp_mmu_next_root(kvm, root, types, shared);
  }
}

/** for_each_valid_tdp_mmu_root_yield_safe(): valid roots of `as_id` (all address spaces if < 0). */
export function* for_each_valid_tdp_mmu_root_yield_safe(
  kvm: Kvm,
  as_id: number,
  shared: boolean,
  body: (root: KvmMmuPage) => Gen<RootLoopCtl>,
): Gen<KvmMmuPage | null> {
  return yield* __for_each_tdp_mmu_root_yield_safe(kvm, as_id, KVM_VALID_ROOTS, shared, body);
}

/** for_each_tdp_mmu_root_yield_safe(): every root, invalid ones included (all address spaces since 6.6). */
export function* for_each_tdp_mmu_root_yield_safe(
  kvm: Kvm,
  shared: boolean,
  body: (root: KvmMmuPage) => Gen<RootLoopCtl>,
): Gen<KvmMmuPage | null> {
  return yield* __for_each_tdp_mmu_root_yield_safe(kvm, -1, KVM_ALL_ROOTS, shared, body);
}

/**
 * __for_each_tdp_mmu_root() (tdp_mmu.c): a plain walk without references under mmu_lock held for
 * write, which keeps the list stable; the body must not drop the lock (asserted for every entry,
 * 5.18+). In 5.13-5.17 it was list_for_each_entry_rcu(), legal with the write lock or
 * tdp_mmu_pages_lock held.
 */
export function* __for_each_tdp_mmu_root(
  kvm: Kvm,
  as_id: number,
  types: number,
  body: (root: KvmMmuPage) => Gen<RootWalkCtl>,
): Gen<void> {
  const head: ListHead<KvmMmuPage> = kvm.tdp_mmu_roots;
  const e2 = !kvm.features.defunctRoots && !kvm.features.persistentRoots;
  const walk = e2
    ? {
        rcu: true,
        cond: () => lockdep_is_held_write(kvm.mmu_lock) || lockdep_is_held(kvm.tdp_mmu_pages_lock),
      }
    : { rcu: false };
  for (
    let n = yield* list_next_entry(head, head, walk);
    n !== null;
    n = yield* list_next_entry(head, n, walk)
  ) {
    const root = n.container!;
    if (!e2) kvm_lockdep_assert_mmu_lock_held(kvm, false);
    if (as_id >= 0 && kvm_mmu_page_as_id(root) !== as_id) continue;
    if (!(yield* tdp_mmu_root_match(root, types))) continue;
    if ((yield* body(root)) === "break") return;
  }
}

/** for_each_tdp_mmu_root(): every root of `as_id`, write lock held, no references. */
export function* for_each_tdp_mmu_root(
  kvm: Kvm,
  as_id: number,
  body: (root: KvmMmuPage) => Gen<RootWalkCtl>,
): Gen<void> {
  yield* __for_each_tdp_mmu_root(kvm, as_id, KVM_ALL_ROOTS, body);
}

/** for_each_valid_tdp_mmu_root(): valid roots of `as_id`, write lock held, no references. */
export function* for_each_valid_tdp_mmu_root(
  kvm: Kvm,
  as_id: number,
  body: (root: KvmMmuPage) => Gen<RootWalkCtl>,
): Gen<void> {
  yield* __for_each_tdp_mmu_root(kvm, as_id, KVM_VALID_ROOTS, body);
}

/**
 * for_each_tdp_mmu_root_rcu() (tdp_mmu.c, 6.15 b146a9b34aed): no mmu_lock and no references, for
 * lockless aging. Every step is an rcu_dereference, so the caller must be inside an RCU read-side
 * section; a root found on the list stays allocated until the caller leaves it, even if its count
 * is already 0 and it has been unlinked since.
 */
export function* for_each_tdp_mmu_root_rcu(
  kvm: Kvm,
  as_id: number,
  types: number,
  body: (root: KvmMmuPage) => Gen<RootWalkCtl>,
): Gen<void> {
  const head = kvm.tdp_mmu_roots;
  const walk = { rcu: true };
  for (
    let n = yield* list_next_entry(head, head, walk);
    n !== null;
    n = yield* list_next_entry(head, n, walk)
  ) {
    const root = n.container!;
    if (as_id >= 0 && kvm_mmu_page_as_id(root) !== as_id) continue;
    if (!(yield* tdp_mmu_root_match(root, types))) continue;
    if ((yield* body(root)) === "break") return;
  }
}

/** lockdep_is_held_type(lock, 0): held exclusively (for write) by the running task. */
function lockdep_is_held_write(lock: { readonly id: number }): boolean {
  for (const h of ktask().held) if (h.lock.id === lock.id && h.mode === "write") return true;
  return false;
}
