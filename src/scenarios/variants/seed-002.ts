import type { Gen } from "../../engine/op.js";
import { bitfield_load, bitfield_store } from "../../kernel/atomic.js";
import { lockdep_assert_held_write } from "../../kernel/lockdep.js";
import { rcu_read_lock, rcu_read_unlock } from "../../kernel/rcu.js";
import { list_next_entry } from "../../kernel/rculist.js";
import { refcount_dec_and_test, refcount_read, refcount_set } from "../../kernel/refcount.js";
import { read_lock, read_unlock } from "../../kernel/rwlock.js";
import { WARN_ON_ONCE } from "../../kernel/warn.js";
import { queue_work } from "../../kernel/workqueue.js";
import { ghost_gift } from "../../mmu/invariants/roots.js";
import { ROLE } from "../../mmu/role.js";
import { for_each_tdp_mmu_root } from "../../mmu/tdp_mmu_iter_roots.js";
import {
  kvm_tdp_mmu_get_root,
  kvm_tdp_mmu_put_root,
  kvm_tdp_root_mark_invalid,
  tdp_mmu_schedule_zap_root,
  tdp_mmu_unlink_and_free_root,
} from "../../mmu/tdp_mmu_root.js";
import { tdp_mmu_zap_root } from "../../mmu/tdp_mmu_zap.js";
import type { Kvm, KvmMmuPage } from "../../mmu/types.js";
import { defineVariant } from "../define.js";

/**
 * Invalidation that does not skip roots already invalid (seed 002): it gifts
 * them another reference and queues their work item again, which is still
 * pending, so queue_work() does nothing and the gift is never put.
 */
export const invalidateRequeues = defineVariant({
  name: "invalidate-requeues-invalid-roots",
  thread: "002",
  description: "kvm_tdp_mmu_invalidate_all_roots() also gifts and queues roots that are already invalid",
  overrides: {
    kvm_tdp_mmu_invalidate_all_roots: function* (_orig: unknown, kvm: Kvm): Gen<void> {
      lockdep_assert_held_write(kvm.mmu_lock);
      yield* for_each_tdp_mmu_root(kvm, -1, function* (root) {
        const got = yield* kvm_tdp_mmu_get_root(root);
        if (WARN_ON_ONCE(!got, "!kvm_tdp_mmu_get_root(root)", { root: root.kobj.name })) return undefined;
        ghost_gift(kvm, root);
        if ((yield* bitfield_load(root.role, ROLE.invalid)) === 1) {
          // Already queued by put_root: queue the same item again.
          yield* queue_work(kvm.tdp_mmu_zap_wq!, root.tdp_mmu_async_work!);
          return undefined;
        }
        yield* bitfield_store(root.role, ROLE.invalid, 1);
        yield* tdp_mmu_schedule_zap_root(kvm, root);
        return undefined;
      });
    },
  },
});

/** put_root marking a defunct root invalid without queueing the worker (seed 002). */
export const putRootNoQueue = defineVariant({
  name: "put-root-invalid-without-queue",
  thread: "002",
  description: "kvm_tdp_mmu_put_root() marks a defunct root invalid and resets its count but queues no zap",
  overrides: {
    kvm_tdp_mmu_put_root: function* (_orig: unknown, kvm: Kvm, root: KvmMmuPage, _shared = false): Gen<void> {
      if (!(yield* refcount_dec_and_test(root.tdp_mmu_root_count))) return;
      if (!(yield* kvm_tdp_root_mark_invalid(root))) {
        yield* refcount_set(root.tdp_mmu_root_count, 1);
        return;
      }
      yield* tdp_mmu_unlink_and_free_root(kvm, root, false, _shared);
    },
  },
});

/**
 * The 5.17 zapper in a kernel with defunct roots (seed 002's "latent issue"): it
 * walks every invalid root that still has references and puts one, assuming
 * invalidation gifted it one, even when put_root invalidated the root itself.
 */
export const zapperPutsUngifted = defineVariant({
  name: "zapper-puts-ungifted-references",
  thread: "002",
  description:
    "kvm_tdp_mmu_zap_invalidated_roots() zaps and puts every invalid, referenced root (5.17 style) as well as flushing the worker",
  overrides: {
    kvm_tdp_mmu_zap_invalidated_roots: function* (
      orig: (kvm: Kvm, shared?: boolean) => Gen<void>,
      kvm: Kvm,
      shared = true,
    ): Gen<void> {
      yield* read_lock(kvm.mmu_lock);
      yield* rcu_read_lock();
      const head = kvm.tdp_mmu_roots;
      let n = yield* list_next_entry(head, head, { rcu: true });
      while (n !== null) {
        const root = n.container!;
        const next = yield* list_next_entry(head, n, { rcu: true });
        if (
          (yield* bitfield_load(root.role, ROLE.invalid)) === 1 &&
          (yield* refcount_read(root.tdp_mmu_root_count)) !== 0
        ) {
          yield* rcu_read_unlock();
          yield* tdp_mmu_zap_root(kvm, root, true);
          yield* kvm_tdp_mmu_put_root(kvm, root, true);
          yield* rcu_read_lock();
        }
        n = next;
      }
      yield* rcu_read_unlock();
      yield* read_unlock(kvm.mmu_lock);
      yield* orig(kvm, shared);
    },
  },
});

/** kvm_mmu_zap_all_fast() returning without waiting for the queued zaps (seed 002: the flush left out). */
export const zapAllFastNoFlush = defineVariant({
  name: "zap-all-fast-without-flush",
  thread: "002",
  description: "kvm_tdp_mmu_zap_invalidated_roots() does not flush tdp_mmu_zap_wq",
  overrides: {
    kvm_tdp_mmu_zap_invalidated_roots: function* (): Gen<void> {},
  },
});
