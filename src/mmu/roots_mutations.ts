import type { Gen } from "../engine/op.js";
import { bitfield_load, bitfield_store } from "../kernel/atomic.js";
import { lockdep_assert_held_write } from "../kernel/lockdep.js";
import { call_rcu } from "../kernel/rcu.js";
import { list_del_rcu, list_next_entry } from "../kernel/rculist.js";
import { refcount_dec_and_test, refcount_dec_not_one, refcount_set } from "../kernel/refcount.js";
import { spin_lock, spin_unlock } from "../kernel/spinlock.js";
import { ghost_gift } from "./invariants/roots.js";
import { ROLE } from "./role.js";
import {
  kvm_tdp_mmu_get_root,
  kvm_tdp_root_mark_invalid,
  tdp_mmu_schedule_zap_root,
} from "./tdp_mmu_root.js";
import { tdp_mmu_free_sp_rcu_callback } from "./tdp_mmu_spte.js";
import { tdp_mmu_zap_root } from "./tdp_mmu_zap.js";
import type { Kvm, KvmMmuPage } from "./types.js";

/*
 * The root-lifecycle designs the seed threads rule out (seed-variants.md B10, B11), as per-run
 * overrides of the model functions: pass one of these maps as `overrides` to runProgram or an
 * explorer. Each override receives the original implementation first.
 */

type Overrides = ReadonlyMap<string, Function>;

/**
 * B11 (seed 003), Paolo's proposal for kvm_tdp_mmu_put_root(): leave early with
 * refcount_dec_not_one(); xchg the invalid bit; zap; refcount_dec_not_one() again; then force
 * the count to 0 and free. Between the second dec_not_one (count 1) and refcount_set(0), a walker
 * that saw the root valid can take a reference; the root is freed under it (use-after-free).
 */
export const seed003DecNotOnePutRoot: Overrides = new Map<string, Function>([
  [
    "kvm_tdp_mmu_put_root",
    function* (_orig: unknown, kvm: Kvm, root: KvmMmuPage, shared = false): Gen<void> {
      const count = root.tdp_mmu_root_count;
      if (yield* refcount_dec_not_one(count)) return;
      if (!(yield* kvm_tdp_root_mark_invalid(root))) {
        yield* tdp_mmu_zap_root(kvm, root, shared);
        if (yield* refcount_dec_not_one(count)) return;
      }
      yield* refcount_set(count, 0);
      yield* spin_lock(kvm.tdp_mmu_pages_lock);
      yield* list_del_rcu(root.link);
      yield* spin_unlock(kvm.tdp_mmu_pages_lock);
      yield* call_rcu(root.rcu_head, () => tdp_mmu_free_sp_rcu_callback(root, kvm));
    },
  ],
]);

/**
 * B10 (a) (seed 002), 5.18: kvm_tdp_mmu_invalidate_all_roots() does not skip roots that are
 * already invalid, so a defunct root whose work item is still pending is gifted a second
 * reference and queued again: queue_work() on a pending item does nothing, the item runs once,
 * one reference leaks (invariant 13; the root is never freed).
 */
export const seed002RequeueInvalidRoots: Overrides = new Map<string, Function>([
  [
    "kvm_tdp_mmu_invalidate_all_roots",
    function* (_orig: unknown, kvm: Kvm): Gen<void> {
      lockdep_assert_held_write(kvm.mmu_lock);
      const head = kvm.tdp_mmu_roots;
      for (let n = yield* list_next_entry(head, head, { rcu: false }); n !== null; ) {
        const root = n.container!;
        if (yield* kvm_tdp_mmu_get_root(root)) {
          ghost_gift(kvm, root);
          if ((yield* bitfield_load(root.role, ROLE.invalid)) === 0)
            yield* bitfield_store(root.role, ROLE.invalid, 1);
          yield* tdp_mmu_schedule_zap_root(kvm, root);
        }
        n = yield* list_next_entry(head, n, { rcu: false });
      }
    },
  ],
]);

/**
 * B10 (b) (seed 002), 5.18: the last put of a valid root marks it invalid and keeps it alive, but
 * does not queue the worker. invalidate_all_roots skips it (it is invalid already), so
 * kvm_mmu_zap_all_fast() returns with the root still mapping the old memslot (invariant 10).
 */
export const seed002DefunctNotQueued: Overrides = new Map<string, Function>([
  [
    "kvm_tdp_mmu_put_root",
    function* (
      orig: (kvm: Kvm, root: KvmMmuPage, shared?: boolean) => Gen<void>,
      kvm: Kvm,
      root: KvmMmuPage,
      shared = false,
    ): Gen<void> {
      if ((yield* bitfield_load(root.role, ROLE.invalid)) === 1) {
        yield* orig(kvm, root, shared);
        return;
      }
      if (!(yield* refcount_dec_and_test(root.tdp_mmu_root_count))) return;
      yield* kvm_tdp_root_mark_invalid(root);
      yield* refcount_set(root.tdp_mmu_root_count, 1);
    },
  ],
]);
