import type { Gen } from "../../engine/op.js";
import { bitfield_load, bitfield_store } from "../../kernel/atomic.js";
import { lockdep_assert_held, lockdep_assert_held_read, lockdep_is_held } from "../../kernel/lockdep.js";
import { rcu_read_lock, rcu_read_unlock } from "../../kernel/rcu.js";
import { list_next_entry } from "../../kernel/rculist.js";
import { read_lock, read_unlock, write_lock, write_unlock } from "../../kernel/rwlock.js";
import {
  check_fast_zap_complete,
  ghost_fast_zap_begin,
  ghost_gift,
  ghost_invalidation_begin,
  ghost_invalidation_end,
} from "../../mmu/invariants/roots.js";
import { ROLE } from "../../mmu/role.js";
import { kvm_tdp_mmu_zap_invalidated_roots } from "../../mmu/tdp_mmu_invalidate.js";
import { tdp_mmu_schedule_zap_root } from "../../mmu/tdp_mmu_root.js";
import type { Kvm } from "../../mmu/types.js";
import { kvm_make_all_cpus_request, obsoleteRootsRequest } from "../../mmu/vcpu.js";
import { defineVariant } from "../define.js";

/** David Matlack's alternative (seed 000): kvm_mmu_uninit_tdp_mmu() takes mmu_lock around the invalidation. */
export const uninitUnderMmuLock = defineVariant({
  name: "uninit-invalidate-under-mmu-lock",
  thread: "000",
  description: "teardown invalidates roots holding mmu_lock for write (a plain walk), not under RCU",
  features: { teardownInvalidateUnderRcu: false },
  overrides: {
    kvm_tdp_mmu_invalidate_all_roots: function* (orig: (kvm: Kvm) => Gen<void>, kvm: Kvm): Gen<void> {
      if (lockdep_is_held(kvm.mmu_lock)) return yield* orig(kvm);
      yield* write_lock(kvm.mmu_lock);
      yield* orig(kvm);
      yield* write_unlock(kvm.mmu_lock);
    },
  },
});

/** The walk with neither RCU nor mmu_lock (the v1 of the seed-000 patch without rcu_read_lock()). */
export const uninitUnprotected = defineVariant({
  name: "uninit-invalidate-unprotected",
  thread: "000",
  description:
    "teardown walks the root list with neither rcu_read_lock() nor mmu_lock while the worker unlinks roots",
  features: { teardownInvalidateUnderRcu: false },
});

/**
 * Sean's "I _think_ we could get away with holding mmu_lock for read. Maybe." (seed 000):
 * kvm_mmu_zap_all_fast() invalidates the roots under the read mmu_lock, relying on
 * slots_lock to serialise invalidators. The E4 invalidation itself is unchanged.
 */
export const invalidateUnderReadLock = defineVariant({
  name: "zap-all-fast-invalidate-read-lock",
  thread: "000",
  description:
    "kvm_mmu_zap_all_fast() marks roots invalid under read_lock(mmu_lock), slots_lock serialising invalidators",
  // The rule this design drops; the verdict must come from what breaks without it.
  waives: ["inv15-lock-discipline", "inv6-invalid-monotone"],
  overrides: {
    kvm_mmu_zap_all_fast: function* (_orig: unknown, kvm: Kvm): Gen<void> {
      lockdep_assert_held(kvm.slots_lock);
      yield* read_lock(kvm.mmu_lock);
      ghost_invalidation_begin(kvm);
      lockdep_assert_held_read(kvm.mmu_lock);
      yield* rcu_read_lock();
      const head = kvm.tdp_mmu_roots;
      for (
        let n = yield* list_next_entry(head, head, { rcu: true });
        n !== null;
        n = yield* list_next_entry(head, n, { rcu: true })
      ) {
        const root = n.container!;
        if ((yield* bitfield_load(root.role, ROLE.invalid)) === 0) {
          yield* bitfield_store(root.role, ROLE.invalid, 1);
          ghost_gift(kvm, root);
          yield* tdp_mmu_schedule_zap_root(kvm, root);
        }
      }
      yield* rcu_read_unlock();
      const serial = ghost_fast_zap_begin(kvm);
      yield* kvm_make_all_cpus_request(kvm, obsoleteRootsRequest(kvm.features));
      ghost_invalidation_end(kvm);
      yield* read_unlock(kvm.mmu_lock);
      yield* kvm_tdp_mmu_zap_invalidated_roots(kvm, true);
      check_fast_zap_complete(kvm, serial);
    },
  },
});
