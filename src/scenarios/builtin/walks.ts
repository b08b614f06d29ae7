import { host } from "../../engine/host.js";
import { currentFn } from "../../engine/model-fn.js";
import type { Gen } from "../../engine/op.js";
import { bitfield_load } from "../../kernel/atomic.js";
import { peekEntries } from "../../kernel/rculist.js";
import { read_lock, read_unlock } from "../../kernel/rwlock.js";
import { ROLE, roleInvalid } from "../../mmu/role.js";
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

/** The roots a walk starting now must visit: the valid ones on the list (seed 001's property). */
export function validRootsNow(kvm: Kvm): KvmMmuPage[] {
  return peekEntries(kvm.tdp_mmu_roots).filter((r) => !roleInvalid(r.role.v));
}

/**
 * Seed 001's completeness property, checked when a walk ends: every root valid when it started
 * that is still valid and still referenced was visited. Roots created meanwhile need no visit
 * (they were built after the state change the walk publishes), and a root whose count already
 * reached 0 is dying (being unlinked, or going defunct), so no update is owed to it either.
 */
export function check_walk_complete(before: readonly KvmMmuPage[], visited: ReadonlySet<KvmMmuPage>): void {
  for (const r of before) {
    if (!visited.has(r) && !roleInvalid(r.role.v) && r.kobj.freed === null && r.tdp_mmu_root_count.v > 0) {
      host().report({
        invariant: "walk-complete",
        message: `the root walk ended without visiting ${r.kobj.name}, valid from start to end (in ${currentFn()})`,
        details: { root: r.kobj.name, visited: [...visited].map((v) => v.kobj.name) },
      });
    }
  }
}
