import type { Gen } from "../../engine/op.js";
import { bitfield_load, READ_ONCE } from "../../kernel/atomic.js";
import { lockdep_assert_held_write } from "../../kernel/lockdep.js";
import { list_add_tail_rcu } from "../../kernel/rculist.js";
import { refcount_set } from "../../kernel/refcount.js";
import { spin_lock, spin_unlock } from "../../kernel/spinlock.js";
import { ghost_root_published } from "../../mmu/invariants/roots.js";
import { tdp_mmu_alloc_sp } from "../../mmu/kvm.js";
import { ROLE, roleAsId } from "../../mmu/role.js";
import { for_each_tdp_mmu_root } from "../../mmu/tdp_mmu_iter_roots.js";
import { kvm_tdp_mmu_get_root, kvm_tdp_mmu_put_root, vcpu_root_role } from "../../mmu/tdp_mmu_root.js";
import type { Kvm, KvmMmuPage, Vcpu } from "../../mmu/types.js";
import { defineVariant } from "../define.js";

type NextRoot = (kvm: Kvm, prev: KvmMmuPage | null, types: number, shared: boolean) => Gen<KvmMmuPage | null>;

/**
 * Sean's patch 17/28 (seed 001): if the previous root was invalidated while the
 * walker yielded, put it and end the walk.
 */
export const terminateOnInvalid = defineVariant({
  name: "next-root-terminate-on-invalid",
  thread: "001",
  description:
    "tdp_mmu_next_root(): if prev_root became invalid while the caller yielded, put it and end the walk",
  overrides: {
    tdp_mmu_next_root: function* (
      orig: NextRoot,
      kvm: Kvm,
      prev: KvmMmuPage | null,
      types: number,
      shared: boolean,
    ) {
      if (prev !== null && (yield* bitfield_load(prev.role, ROLE.invalid)) === 1) {
        yield* kvm_tdp_mmu_put_root(kvm, prev, shared);
        return null;
      }
      return yield* orig(kvm, prev, types, shared);
    },
  },
});

/** The code before patch 17 (5.16): restart the walk from the head when prev_root became invalid. */
export const restartOnInvalid = defineVariant({
  name: "next-root-restart-on-invalid",
  thread: "001",
  description:
    "tdp_mmu_next_root(): if prev_root became invalid while the caller yielded, put it and restart from the head",
  overrides: {
    tdp_mmu_next_root: function* (
      orig: NextRoot,
      kvm: Kvm,
      prev: KvmMmuPage | null,
      types: number,
      shared: boolean,
    ) {
      if (prev !== null && (yield* bitfield_load(prev.role, ROLE.invalid)) === 1) {
        yield* kvm_tdp_mmu_put_root(kvm, prev, shared);
        return yield* orig(kvm, null, types, shared);
      }
      return yield* orig(kvm, prev, types, shared);
    },
  },
});

/**
 * Ben Gardon's suggestion (seed 001): walk the list FIFO, so roots created during
 * the walk are met after the ones that existed when it started, and keep walking
 * past an invalid previous root. kvm_tdp_mmu_get_vcpu_root_hpa() (5.18) with the
 * new root published at the tail (list_add_tail_rcu) instead of the head.
 */
export const fifoWalk = defineVariant({
  name: "root-list-fifo",
  thread: "001",
  description:
    "new roots are published at the tail of tdp_mmu_roots (list_add_tail_rcu); walks continue past invalid roots",
  overrides: {
    kvm_tdp_mmu_get_vcpu_root_hpa: function* (_orig: unknown, vcpu: Vcpu): Gen<KvmMmuPage> {
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
      const root = tdp_mmu_alloc_sp(kvm, role, 0, null, true);
      yield* refcount_set(root.tdp_mmu_root_count, kvm.features.persistentRoots ? 2 : 1);
      yield* spin_lock(kvm.tdp_mmu_pages_lock);
      yield* list_add_tail_rcu(root.link, kvm.tdp_mmu_roots);
      ghost_root_published(kvm, root);
      yield* spin_unlock(kvm.tdp_mmu_pages_lock);
      return root;
    },
  },
});
