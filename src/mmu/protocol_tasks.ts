import type { Gen } from "../engine/op.js";
import { read_lock, read_unlock } from "../kernel/rwlock.js";
import { check_walk_complete, validRootsNow } from "./invariants/walk_complete.js";
import { reuse_root_frames } from "./kvm.js";
import { kvm_get_kvm_at_spawn, kvm_put_kvm } from "./kvm_destroy.js";
import { for_each_valid_tdp_mmu_root_yield_safe } from "./tdp_mmu_iter_roots.js";
import { kvm_tdp_mmu_page_fault } from "./tdp_mmu_map.js";
import type { Kvm, KvmMmuPage, Vcpu } from "./types.js";
import { kvm_mmu_load, kvm_mmu_unload, vcpu_exit_guest, vcpu_mode } from "./vcpu.js";
import { guestAccess } from "./workloads.js";

/**
 * The tasks of the whole-protocol configuration (the one SPIN models of the root lifecycle use),
 * shared by the built-in protocol scenarios and scenario files.
 */

/**
 * A vCPU thread in rounds: kvm_mmu_load(), a write fault on the round's gfn, kvm_mmu_unload().
 * With `hardware`, the round's write is a guest access through the CPU (a walk, the TLB, and a
 * fault only on an EPT violation; see guestAccess()).
 */
export function* vcpuRoundsTask(
  vcpu: Vcpu,
  gfns: readonly number[],
  opts: { readonly hardware?: boolean } = {},
): Gen<void> {
  kvm_get_kvm_at_spawn(vcpu.kvm);
  // The mode word exists from the start, so its object id does not depend on the schedule.
  if (opts.hardware) {
    vcpu_mode(vcpu);
    reuse_root_frames(vcpu.kvm);
  }
  for (const gfn of gfns) {
    yield* kvm_mmu_load(vcpu);
    if (opts.hardware) {
      if (yield* guestAccess(vcpu, { gfn, write: true }, false, 2)) yield* vcpu_exit_guest(vcpu);
    } else {
      yield* kvm_tdp_mmu_page_fault(vcpu, gfn, true);
    }
    yield* kvm_mmu_unload(vcpu);
  }
  yield* kvm_put_kvm(vcpu.kvm);
}

/**
 * A shared-mode walk over the valid roots (for_each_valid_tdp_mmu_root_yield_safe, as dirty
 * logging and the notifiers' range walks use it) that drops and retakes mmu_lock after every root:
 * the worst case of a yield, which is where roots can change under the walker. When it ends it
 * checks seed 001's completeness property: every root valid and referenced from start to end was
 * visited.
 */
export function* yieldingRootWalkTask(kvm: Kvm): Gen<void> {
  kvm_get_kvm_at_spawn(kvm);
  const before = validRootsNow(kvm);
  const visited = new Set<KvmMmuPage>();
  yield* read_lock(kvm.mmu_lock);
  yield* for_each_valid_tdp_mmu_root_yield_safe(kvm, -1, true, function* (root) {
    visited.add(root);
    yield* read_unlock(kvm.mmu_lock);
    yield* read_lock(kvm.mmu_lock);
    return undefined;
  });
  yield* read_unlock(kvm.mmu_lock);
  check_walk_complete(before, visited);
  yield* kvm_put_kvm(kvm);
}
