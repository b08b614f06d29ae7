import type { Gen } from "../../engine/op.js";
import { bitfield_load, bitfield_store } from "../../kernel/atomic.js";
import { refcount_dec_and_test, refcount_dec_not_one, refcount_set } from "../../kernel/refcount.js";
import { ROLE } from "../../mmu/role.js";
import {
  kvm_tdp_mmu_put_root,
  kvm_tdp_root_mark_invalid,
  tdp_mmu_unlink_and_free_root,
} from "../../mmu/tdp_mmu_root.js";
import { tdp_mmu_zap_root } from "../../mmu/tdp_mmu_zap.js";
import type { Kvm, KvmMmuPage } from "../../mmu/types.js";
import { defineVariant } from "../define.js";

/**
 * Paolo's first proposal (seed 003, 1 Mar 2022): "decrement unless one", mark invalid
 * with xchg, zap, "decrement unless one" again, then force the count to 0 and free.
 * Sean: a get_root() can succeed between the last refcount_dec_not_one() and
 * refcount_set(0), and the root is freed under the new holder.
 */
export const decNotOneSetZero = defineVariant({
  name: "put-root-dec-not-one-set-zero",
  thread: "003",
  description:
    "kvm_tdp_mmu_put_root(): refcount_dec_not_one(), xchg(invalid), zap, refcount_dec_not_one(), refcount_set(0), free",
  features: { asyncZapWorker: false, defunctRoots: true },
  overrides: {
    kvm_tdp_mmu_put_root: function* (_orig: unknown, kvm: Kvm, root: KvmMmuPage, shared = false): Gen<void> {
      if (yield* refcount_dec_not_one(root.tdp_mmu_root_count)) return;
      if (!(yield* kvm_tdp_root_mark_invalid(root))) {
        yield* tdp_mmu_zap_root(kvm, root, shared);
        if (yield* refcount_dec_not_one(root.tdp_mmu_root_count)) return;
      }
      yield* refcount_set(root.tdp_mmu_root_count, 0);
      yield* tdp_mmu_unlink_and_free_root(kvm, root, false, shared);
    },
  },
});

/**
 * Paolo's corrected shape (seed 003, 3 Mar 2022): dec_and_test; if the xchg says the
 * root was valid, give the count back to 1, zap, and dec_and_test again; then free.
 */
export const paoloDecAndTest = defineVariant({
  name: "put-root-dec-and-test-open-coded",
  thread: "003",
  description:
    "kvm_tdp_mmu_put_root(): dec_and_test, xchg(invalid), refcount_set(1), zap, dec_and_test, free",
  features: { asyncZapWorker: false, defunctRoots: true },
  overrides: {
    kvm_tdp_mmu_put_root: function* (_orig: unknown, kvm: Kvm, root: KvmMmuPage, shared = false): Gen<void> {
      if (!(yield* refcount_dec_and_test(root.tdp_mmu_root_count))) return;
      if (!(yield* kvm_tdp_root_mark_invalid(root))) {
        yield* refcount_set(root.tdp_mmu_root_count, 1);
        yield* tdp_mmu_zap_root(kvm, root, shared);
        if (!(yield* refcount_dec_and_test(root.tdp_mmu_root_count))) return;
      }
      yield* tdp_mmu_unlink_and_free_root(kvm, root, false, shared);
    },
  },
});

/**
 * Sean's preference (seed 003, 4 Mar 2022): the same, but recurse into
 * kvm_tdp_mmu_put_root() after the zap so the xchg path is exercised.
 */
export const seanRecursive = defineVariant({
  name: "put-root-recursive",
  thread: "003",
  description:
    "kvm_tdp_mmu_put_root(): dec_and_test, xchg(invalid), refcount_set(1), zap, recurse into put_root",
  features: { asyncZapWorker: false, defunctRoots: true },
  overrides: {
    kvm_tdp_mmu_put_root: function* (_orig: unknown, kvm: Kvm, root: KvmMmuPage, shared = false): Gen<void> {
      if (!(yield* refcount_dec_and_test(root.tdp_mmu_root_count))) return;
      if (!(yield* kvm_tdp_root_mark_invalid(root))) {
        yield* refcount_set(root.tdp_mmu_root_count, 1);
        yield* tdp_mmu_zap_root(kvm, root, shared);
        yield* kvm_tdp_mmu_put_root(kvm, root, shared);
        return;
      }
      yield* tdp_mmu_unlink_and_free_root(kvm, root, false, shared);
    },
  },
});

/**
 * The open-coded test-then-set Sean describes ("a weirdly open coded xchg()"): load
 * role.invalid, return if set, store it with a plain bitfield store. Two steps, no atomic.
 */
export const openCodedMarkInvalid = defineVariant({
  name: "mark-invalid-open-coded",
  thread: "003",
  description:
    "kvm_tdp_root_mark_invalid(): if (root->role.invalid) return; root->role.invalid = true; (no atomic)",
  overrides: {
    kvm_tdp_root_mark_invalid: function* (_orig: unknown, root: KvmMmuPage): Gen<boolean> {
      if ((yield* bitfield_load(root.role, ROLE.invalid)) === 1) return true;
      yield* bitfield_store(root.role, ROLE.invalid, 1);
      return false;
    },
  },
});
