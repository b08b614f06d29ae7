import type { Gen } from "../../engine/op.js";
import { bitfield_load } from "../../kernel/atomic.js";
import { read_lock, read_unlock } from "../../kernel/rwlock.js";
import { ROLE } from "../../mmu/role.js";
import { KVM_VALID_ROOTS, tdp_mmu_next_root } from "../../mmu/tdp_mmu_iter_roots.js";
import type { Kvm, KvmMmuPage } from "../../mmu/types.js";

/**
 * The first step of a read-side walk over valid roots (for_each_valid_tdp_mmu_root_yield_safe):
 * take a reference on the first valid root, then drop mmu_lock as a yield would. Returns the
 * root the walker holds; resumeRootWalk() continues from it.
 */
export function* startRootWalk(kvm: Kvm): Gen<KvmMmuPage | null> {
  yield* read_lock(kvm.mmu_lock);
  const root = yield* tdp_mmu_next_root(kvm, null, KVM_VALID_ROOTS, true);
  yield* read_unlock(kvm.mmu_lock);
  return root;
}

/** The rest of a read-side walk from a root it holds: look at it, move on (putting it), to the end. */
export function* resumeRootWalk(kvm: Kvm, held: KvmMmuPage | null): Gen<void> {
  yield* read_lock(kvm.mmu_lock);
  let root = held;
  while (root !== null) {
    yield* bitfield_load(root.role, ROLE.invalid);
    root = yield* tdp_mmu_next_root(kvm, root, KVM_VALID_ROOTS, true);
  }
  yield* read_unlock(kvm.mmu_lock);
}

export { check_walk_complete, validRootsNow } from "../../mmu/invariants/walk_complete.js";
